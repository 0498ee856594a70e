"""A person opens /chat in a real browser and talks to the example bot.

Real headless Chromium (Debian's), the real app served by uvicorn, a real Celery worker and
a real redis-server. A screenshot is saved to tests/artifacts/chat.png.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as redis_sync
from playwright.sync_api import Browser, sync_playwright

from botcore.message import ConversationKey
from botcore.testing.serve import serve_in_thread
from botcore.testing.stack import BotStack
from botcore.web.app import create_app

pytestmark = pytest.mark.integration

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), "install Debian's chromium: apt-get install -y chromium"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        yield launched
        launched.close()


def test_chat_page_answers_a_question(clean_redis: str, tmp_path: Path,
                                      browser: Browser) -> None:
    stack = BotStack(clean_redis, tmp_path, {"bots": {"support": {
        "channel": "web", "app": "examples.support_bot:app", "name": "Support"}}})
    stack.start_worker()
    try:
        with serve_in_thread(create_app(stack.settings, redis_url=clean_redis)) as base:
            page = browser.new_page(viewport={"width": 390, "height": 760})  # a phone
            page.goto(f"{base}/chat?bot=support")
            page.fill("#input", "退货怎么办？")
            page.click("#send")
            page.wait_for_selector(".msg.user", timeout=10_000)
            answer = page.wait_for_selector(".msg.bot:has-text('7 天')", timeout=30_000)
            assert answer is not None
            assert "申请退货" in answer.inner_text()
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "chat.png"), full_page=True)
            page.close()
    finally:
        for worker in list(stack.workers):
            stack.kill_worker(worker)


def test_chat_page_shows_citations_as_safe_links(clean_redis: str, tmp_path: Path,
                                                 browser: Browser) -> None:
    stack = BotStack(clean_redis, tmp_path, {"bots": {"support": {
        "channel": "web", "app": "examples.support_bot:app"}}})
    with serve_in_thread(create_app(stack.settings, redis_url=clean_redis)) as base:
        page = browser.new_page()
        page.goto(f"{base}/chat?bot=support")
        page.wait_for_function("localStorage.getItem('botcore:support:conversation')")
        conv = page.evaluate("localStorage.getItem('botcore:support:conversation')")
        key = stack.keys.web_outbox(ConversationKey(channel="web", bot_id="support",
                                                    chat_id=conv).id)
        cites = [{"title": "退货政策", "source": "returns.md", "url": "https://shop.example/r"},
                 {"title": "evil", "source": "x", "url": "javascript:alert(1)"}]
        redis_sync.Redis.from_url(clean_redis).xadd(key, {
            "type": "message", "id": "m1", "text": "见 [1]", "format": "markdown",
            "reply_to": "", "buttons": "[]", "citations": json.dumps(cites)})
        items = page.wait_for_selector(".msg.bot .citations", timeout=10_000)
        assert items is not None
        links = page.locator(".msg.bot .citations a")
        assert links.count() == 1  # only the http(s) source became a link
        assert links.first.get_attribute("href") == "https://shop.example/r"
        assert "evil" in items.inner_text()
        page.close()
