"""BotConfig's repr/str never show a channel credential (they are plain extra keys)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from botcore.settings import BotConfig, load_settings

SECRETS = {
    "token": "123:abc-telegram",
    "secret": "wecom-corp-secret",
    "encoding_aes_key": "AESKEYAESKEYAESKEYAESKEYAESKEYAESKEYAESKEY1",
    "app_secret": "feishu-app-secret",
    "client_secret": "dingtalk-client-secret",
    "verification_token": "feishu-verify",
    "password": "hunter2",
    "aes": "raw-aes",
}


def _bot() -> BotConfig:
    return BotConfig(id="b", channel="wecom", app="examples.support_bot:app",
                     corp_id="ww-corp-1", agent_id=1000002, **SECRETS,
                     web={"access_key": "web-key-1", "allowed_origins": ["https://a.example"]},
                     mcp={"files": {"url": "http://mcp",
                                    "headers": {"Authorization": "Bearer m1"}}})


@pytest.mark.parametrize("render", [repr, str])
def test_secret_looking_extras_are_masked(render: Callable[[object], str]) -> None:
    text = render(_bot())
    for value in [*SECRETS.values(), "web-key-1", "Bearer m1"]:
        assert value not in text
    for key in SECRETS:
        assert f"{key}='**********'" in text
    # what is not secret stays readable (it is what one debugs with)
    assert "corp_id='ww-corp-1'" in text
    assert "agent_id=1000002" in text
    assert "https://a.example" in text


def test_options_keep_the_real_values() -> None:
    bot = _bot()
    assert bot.options["token"] == "123:abc-telegram"
    assert bot.model_dump()["secret"] == "wecom-corp-secret"


def test_settings_repr_masks_bots_from_a_toml_file(tmp_path: Path) -> None:
    path = tmp_path / "botcore.toml"
    path.write_text('[bots.tg]\nchannel = "telegram"\napp = "examples.support_bot:app"\n'
                    'token = "123456:SECRET-TOKEN"\n', "utf-8")
    settings = load_settings(path)
    assert "SECRET-TOKEN" not in repr(settings)
    assert "SECRET-TOKEN" not in str(settings.bots["tg"])
    assert settings.bots["tg"].options["token"] == "123456:SECRET-TOKEN"
