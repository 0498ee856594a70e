"""Smoke test of ``python -m bench.chaos --channel wecom`` with tiny numbers.

Real redis-server, real ``botcore worker`` processes, encrypted XML callbacks through the
real route, the real WeCom adapter against the bench's fake message/send, one worker SIGKILLed
every second. Asserts only what must hold under any timing: every message is answered
(nothing lost) and in order. Duplicates depend on where the kills land, so they are not
asserted; nor is any timing.
"""

from __future__ import annotations

import pytest

from bench.chaos.__main__ import main

pytestmark = pytest.mark.integration


def test_wecom_chaos_loses_nothing() -> None:
    results = main(["--channel", "wecom", "--no-baseline", "--app-messages", "150",
                    "--app-conversations", "15", "--kill-every", "3", "--stall", "60",
                    "--settle", "1"])
    assert set(results) == {"wecom"}
    outcome = results["wecom"]
    assert outcome.stopped_by == "all replied"
    assert outcome.lost == 0, outcome.lost_examples
    assert outcome.reordered == 0
    assert outcome.replies >= 150  # every answer was created on the (fake) platform
