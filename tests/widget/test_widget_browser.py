"""The website widget in a real headless Chromium: a page on another origin embeds
``/widget.js`` from a running botcore (uvicorn, real Redis, a real worker)."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis as redis_sync
from playwright.sync_api import Browser, Page, expect, sync_playwright
from playwright.sync_api import Route as BrowserRoute
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from botcore.redis_server import free_port
from botcore.testing.stack import BotStack
from tests.openai.live_server import running_stack, serve

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
HOST_PORT = free_port()
HOST = f"http://127.0.0.1:{HOST_PORT}"


def _config() -> dict[str, object]:
    return {"bots": {
        "mem": {"channel": "web", "app": "tests.openai.memory_bot:app",
                "allowed_origins": [HOST]},
        "private": {"channel": "web", "app": "tests.openai.memory_bot:app"},
    }, "ingress": {"lease_ttl": 2.0, "schedule_ttl": 3.0, "sweep_interval": 0.2}}


def _host_app(botcore_url: str) -> Starlette:
    async def page(request: Request) -> HTMLResponse:
        bot = request.path_params.get("bot", "mem")
        return HTMLResponse(
            "<!doctype html><html><head><meta name='viewport' content='width=device-width'>"
            "<title>Shop</title></head><body><h1>A shop</h1>"
            f"<script src='{botcore_url}/widget.js' data-bot='{bot}' data-title='Help' "
            "data-color='#0f766e'>"
            "</script></body></html>")
    return Starlette(routes=[Route("/", page), Route("/{bot}", page)])


@pytest.fixture(scope="module")
def botcore(redis_url: str, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[tuple[BotStack, str]]:
    with running_stack(redis_url, tmp_path_factory.mktemp("widget"), _config()) as running:
        yield running


@pytest.fixture(scope="module")
def host(botcore: tuple[BotStack, str]) -> Iterator[str]:
    with serve(_host_app(botcore[1]), port=HOST_PORT) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: `apt-get install -y chromium` (Debian's package) "
                    "is needed for the widget tests")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        yield launched
        launched.close()


def _open_chat(page: Page, url: str) -> None:
    page.goto(url)
    launcher = page.get_by_role("button", name=re.compile("^Open chat"))
    expect(launcher.locator("svg")).to_have_count(1)      # an icon with no emoji font needed
    expect(launcher).to_have_css("background-color", "rgb(15, 118, 110)")
    launcher.click()


def test_streamed_markdown_answer_is_shown_safely(host: str, botcore: tuple[BotStack, str],
                                                  browser: Browser) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    _open_chat(page, host)
    chat = page.frame_locator('iframe[data-botcore-frame="mem"]')
    # data-color reaches the frame (set by its script, so wait for it rather than race it)
    expect(chat.locator("#bc-head")).to_have_css("background-color", "rgb(15, 118, 110)")
    chat.locator("#bc-input").fill("stream **bold** and <img src=x onerror=alert(1)> `<b>` end")
    chat.locator("#bc-input").press("Enter")
    assert chat.locator(".bc-user").inner_text() == \
        "stream **bold** and <img src=x onerror=alert(1)> `<b>` end"
    chat.locator(".bc-bot.bc-streaming").wait_for(timeout=15_000)  # a partial answer shown
    done = chat.locator(".bc-bot:not(.bc-streaming)")
    done.wait_for(timeout=15_000)
    assert done.inner_text().startswith("bold and <img src=x onerror=alert(1)> <b> end")
    assert done.locator("strong").inner_text() == "bold"
    assert done.locator("code").inner_text() == "<b>"
    assert done.locator("img, b").count() == 0  # model output never becomes HTML
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "widget-desktop.png"))

    expect(done.get_by_role("button", name="Helpful", exact=True).locator("svg")).to_have_count(1)
    done.get_by_role("button", name="Helpful", exact=True).click()
    frame = next(f for f in page.frames if "/widget/frame" in f.url)
    conv = frame.evaluate("localStorage.getItem('botcore:mem:conversation')")
    stack = botcore[0]
    client = redis_sync.Redis.from_url(stack.redis_url)
    try:
        pattern = stack.keys.feedback("mem", conv, "*")
        for _ in range(100):  # the click's POST is asynchronous: poll up to ~5 s
            stored = [json.loads(client.get(k) or b"{}")
                      for k in client.scan_iter(match=pattern)]
            if stored:
                break
            page.wait_for_timeout(50)
        assert [s["rating"] for s in stored] == ["up"]
        assert 0 < client.ttl(next(iter(client.scan_iter(match=pattern)))) <= 90 * 86_400

        # A message event carrying citations (field `citations`, JSON) is shown with them.
        outbox = stack.keys.web_outbox(f"web:mem:{conv}")
        cites = [{"title": "Manual", "url": "https://example.com/m"},
                 {"title": "<b>x</b>", "url": "javascript:alert(1)"}]
        client.xadd(outbox, {"type": "message", "id": "cite1", "text": "See **sources**",
                             "format": "markdown", "reply_to": "", "buttons": "[]",
                             "citations": json.dumps(cites)})
    finally:
        client.close()
    cited = chat.locator(".bc-bot", has_text="See sources")
    cited.locator(".bc-cites li").nth(1).wait_for(timeout=10_000)
    assert cited.locator(".bc-cites a").get_attribute("href") == "https://example.com/m"
    assert cited.locator(".bc-cites li").nth(1).inner_text() == "<b>x</b>"
    assert cited.locator(".bc-cites li").nth(1).locator("a, b").count() == 0
    page.close()


def test_mobile_width_takes_the_whole_screen(host: str, browser: Browser) -> None:
    page = browser.new_page(viewport={"width": 375, "height": 667}, is_mobile=True,
                            has_touch=True)
    _open_chat(page, host)
    frame = page.locator('iframe[data-botcore-frame="mem"]')
    page.frame_locator('iframe[data-botcore-frame="mem"]').locator("#bc-input").wait_for()
    box = frame.bounding_box()
    assert box is not None
    assert (box["width"], box["height"]) == (375, 667)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "widget-mobile.png"))
    chat = page.frame_locator('iframe[data-botcore-frame="mem"]')
    chat.get_by_role("button", name="Close chat").click()
    page.get_by_role("button", name=re.compile("^Open chat")).wait_for()
    assert not frame.is_visible()
    page.close()


def test_a_site_not_in_allowed_origins_cannot_embed_the_chat(host: str,
                                                             browser: Browser) -> None:
    page = browser.new_page()
    _open_chat(page, f"{host}/private")
    page.wait_for_timeout(1000)
    frame = next(f for f in page.frames if f != page.main_frame)
    # Chromium refuses the frame (CSP frame-ancestors): the chat never loads.
    assert frame.locator("#bc-input").count() == 0
    page.close()


def test_frame_csp_and_origin_checks(botcore: tuple[BotStack, str], host: str) -> None:
    base = botcore[1]
    csp = httpx.get(f"{base}/widget/frame?bot=mem").headers["content-security-policy"]
    assert f"frame-ancestors 'self' {HOST}" in csp
    csp = httpx.get(f"{base}/widget/frame?bot=private").headers["content-security-policy"]
    assert csp.endswith("frame-ancestors 'self'")
    assert httpx.get(f"{base}/widget/frame?bot=nobody").status_code == 404
    script = httpx.get(f"{base}/widget.js")
    assert script.headers["content-type"].startswith("text/javascript")
    evil = {"Origin": "https://evil.example"}
    message = {"conversation_id": "c1", "user_id": "u", "text": "hi", "client_msg_id": "m1"}
    assert httpx.post(f"{base}/webhooks/web/mem", json=message, headers=evil).status_code == 403
    rating = {"conversation_id": "c1", "message_id": "m1", "rating": "up"}
    assert httpx.post(f"{base}/widget/api/mem/feedback", json=rating,
                      headers=evil).status_code == 403
    assert httpx.post(f"{base}/widget/api/mem/feedback", json=rating,
                      headers={"Origin": HOST}).status_code == 200


@pytest.mark.parametrize(("body", "status", "field"), [
    (b"{", 400, None),
    (b"[" * 5000, 400, None),   # deeper than json's recursion limit: not a 500
    (b'{"conversation_id": "c1", "message_id": "m1", "rating": "meh"}', 400, "rating"),
    (b'{"conversation_id": "c 1", "message_id": "m1", "rating": "up"}', 400,
     "conversation_id"),
    (b'{"conversation_id": "c1", "rating": "up"}', 400, "message_id"),
    (b'{"conversation_id": "c1", "message_id": "m1", "rating": "up", "comment": "' +
     b"x" * 9000 + b'"}', 413, None),
])
def test_bad_feedback_is_refused(botcore: tuple[BotStack, str], body: bytes, status: int,
                                 field: str | None) -> None:
    response = httpx.post(f"{botcore[1]}/widget/api/mem/feedback", content=body)
    assert response.status_code == status
    if field:
        assert field in response.json()["error"]
    assert httpx.post(f"{botcore[1]}/widget/api/nobody/feedback",
                      content=body).status_code == 404


def test_composer_is_disabled_until_the_frame_script_runs(host: str, browser: Browser
                                                         ) -> None:
    """The frame's script is held back: meanwhile the composer is disabled, so nothing can
    be typed into a textarea with no handler (Enter there was a newline and the message
    was never sent); once the script runs, the message goes out."""
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    held: list[BrowserRoute] = []

    def hold_frame_script(route: BrowserRoute) -> None:
        if route.request.frame.parent_frame is not None:   # the iframe's copy, not the loader
            held.append(route)
        else:
            route.continue_()

    page.route("**/widget.js", hold_frame_script)
    _open_chat(page, host)
    chat = page.frame_locator('iframe[data-botcore-frame="mem"]')
    chat.locator("#bc-input").wait_for(state="attached")
    deadline = time.monotonic() + 10
    while not held:
        assert time.monotonic() < deadline, "the frame never asked for /widget.js"
        page.wait_for_timeout(50)
    assert chat.locator("#bc-input").is_disabled()
    assert chat.locator("#bc-send").is_disabled()
    held[0].continue_()
    chat.locator("#bc-input").fill("typed after the script")   # waits until enabled
    chat.locator("#bc-input").press("Enter")
    assert chat.locator(".bc-user").last.inner_text() == "typed after the script"
    assert chat.locator(".bc-bot:not(.bc-streaming)").last.inner_text(timeout=15_000)
