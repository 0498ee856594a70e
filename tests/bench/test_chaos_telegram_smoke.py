"""Smoke test of ``python -m bench.chaos --channel telegram`` with tiny numbers.

Real redis-server, real ``botcore worker`` processes, the real Telegram adapter against the
bench's fake Bot API, one worker SIGKILLed every 2 s. Asserts only what must hold under any
timing: every message is answered (nothing lost) and in order. Duplicates depend on where
the kills land, so they are not asserted; nor is any timing.
"""

from __future__ import annotations

import pytest

from bench.chaos.__main__ import main

pytestmark = pytest.mark.integration


def test_telegram_chaos_loses_nothing() -> None:
    results = main(["--channel", "telegram", "--no-baseline", "--tg-messages", "24",
                    "--tg-long-messages", "6", "--conversations", "6", "--kill-every", "3",
                    "--stall", "60", "--settle", "1"])
    assert set(results) == {"telegram", "telegram-3part"}
    for name, outcome in results.items():
        assert outcome.stopped_by == "all replied", name
        assert outcome.lost == 0, (name, outcome.lost_examples)
        assert outcome.reordered == 0, name
    assert results["telegram-3part"].replies >= 18  # each answer really went out in 3 messages
