"""The terminal client against the chat app served by uvicorn in a thread."""

from __future__ import annotations

import io
import socket
from collections.abc import Callable

import pytest

from botcore.chatcli import main_chat, run_terminal_chat


def scripted(*lines: str) -> Callable[[str], str]:
    """An input function that types ``lines``, then Ctrl-D."""
    pending = list(lines)
    prompts: list[str] = []

    def fake_input(prompt: str) -> str:
        prompts.append(prompt)
        if not pending:
            raise EOFError
        return pending.pop(0)

    return fake_input


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_a_line_is_answered_and_printed_once(server_url: str) -> None:
    out = io.StringIO()
    code = await run_terminal_chat(server_url, "demo", "term-1", None,
                                   scripted("hello", "", "again"), out, reply_timeout=5)
    text = out.getvalue()
    assert code == 0
    assert text.count("Demo> echo: hello\n") == 1
    assert text.count("Demo> echo: again\n") == 1
    assert text.index("echo: hello") < text.index("echo: again")
    assert "echo: h\n" not in text       # deltas are not printed when output is not a tty
    assert text.endswith("bye\n")


async def test_key_is_sent_and_first_bot_is_the_default(server_url: str,
                                                        access_key: str) -> None:
    out = io.StringIO()
    code = await run_terminal_chat(server_url, "locked", None, access_key,
                                   scripted("hi"), out, reply_timeout=5)
    assert code == 0
    assert "locked> echo: hi\n" in out.getvalue()

    out = io.StringIO()
    assert await run_terminal_chat(server_url, None, None, None, scripted(), out) == 0
    assert out.getvalue().startswith("chatting with Demo ")


async def test_wrong_key_is_reported(server_url: str) -> None:
    out = io.StringIO()
    code = await run_terminal_chat(server_url, "locked", None, "wrong", scripted("hi"), out)
    assert code == 1
    assert "HTTP 401" in out.getvalue()


async def test_unknown_bot_is_reported(server_url: str) -> None:
    out = io.StringIO()
    code = await run_terminal_chat(server_url, "nope", None, None, scripted("hi"), out)
    assert code == 1
    assert out.getvalue() == (f"unknown bot 'nope'; web chat bots at {server_url}: "
                              "demo, locked\n")


async def test_no_server_gives_a_clear_error() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    out = io.StringIO()
    code = await run_terminal_chat(url, "demo", None, None, scripted("hi"), out)
    assert code == 1
    assert out.getvalue() == f"no botcore server at {url}: start one with `botcore serve`\n"


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


async def test_on_a_terminal_deltas_show_live_and_the_answer_once(server_url: str) -> None:
    out = _Tty()
    code = await run_terminal_chat(server_url, "demo", None, None, scripted("hello"), out,
                                   reply_timeout=5)
    assert code == 0
    assert out.getvalue().count("Demo> echo: hello\n") == 1
    assert out.getvalue().count("Demo> ") == 1


def test_main_chat_reports_a_missing_server(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    assert main_chat(url, "demo") == 1
    assert "no botcore server at" in capsys.readouterr().out
