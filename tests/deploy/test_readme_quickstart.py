"""The README's quick start works on a fresh Debian 12 system Python (PEP 668)."""

from __future__ import annotations

from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def _quick_start() -> str:
    text = README.read_text("utf-8")
    return text[text.index("## Quick start"):text.index("## Write your first bot")]


def test_quick_start_keeps_its_two_commands() -> None:
    section = _quick_start()
    assert "pip install -e '.[dev]' && botcore serve" in section
    assert "apt-get install -y chromium && pip install -e '.[dev]' && pytest" in section


def test_quick_start_offers_a_venv_for_externally_managed_pythons() -> None:
    section = _quick_start()
    assert "externally-managed-environment" in section
    assert "python3 -m venv .venv && . .venv/bin/activate" in section
