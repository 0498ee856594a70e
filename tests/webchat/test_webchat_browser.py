"""A person opens /chat in a real browser and talks to the example bot.

Real headless Chromium (Debian's), the real app served by uvicorn, a real Celery worker and
a real redis-server. A screenshot is saved to tests/artifacts/chat.png.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

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
