"""Settings: TOML file, environment overrides, ConfigError naming the key, no secret echo."""

from __future__ import annotations

from pathlib import Path

import pytest

from botcore.errors import ConfigError
from botcore.settings import Settings, load_settings

TOML = """
redis_url = "redis://example:6379/3"
port = 9001
key_prefix = "acme"

[ingress]
max_attempts = 5

[llm]
model = "deepseek-chat"
api_key = "sk-file-secret"

[bots.support]
channel = "wecom"
app = "examples.support_bot:app"
corp_id = "ww123"
secret = "wecom-secret"
"""


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No botcore.toml or BOTCORE_* variable from the developer's shell in the way."""
    monkeypatch.chdir(tmp_path)
    for name in ("BOTCORE_CONFIG", "BOTCORE_REDIS_URL", "BOTCORE_PORT", "BOTCORE_LLM__MODEL"):
        monkeypatch.delenv(name, raising=False)


def _write(tmp_path: Path, text: str, name: str = "botcore.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


async def test_load_from_toml_file(tmp_path: Path) -> None:
    settings = load_settings(_write(tmp_path, TOML, "custom.toml"))
    assert isinstance(settings, Settings)
    assert settings.redis_url == "redis://example:6379/3"
    assert settings.port == 9001
    assert settings.key_prefix == "acme"
    assert settings.ingress.max_attempts == 5
    assert settings.ingress.lease_ttl == 30.0  # default kept
    assert settings.llm.model == "deepseek-chat"
    assert settings.llm.api_key is not None
    assert settings.llm.api_key.get_secret_value() == "sk-file-secret"
    bot = settings.bot("support")
    assert bot.id == "support"
    assert bot.channel == "wecom"
    assert bot.options == {"corp_id": "ww123", "secret": "wecom-secret"}


async def test_default_file_in_working_directory(tmp_path: Path) -> None:
    _write(tmp_path, TOML)
    assert load_settings().port == 9001


async def test_no_file_gives_defaults() -> None:
    settings = load_settings()
    assert settings.port == 8000
    assert settings.redis_url is None
    assert settings.bots == {}


async def test_botcore_config_env_points_to_file(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path, TOML, "elsewhere.toml")
    monkeypatch.setenv("BOTCORE_CONFIG", str(path))
    assert load_settings().key_prefix == "acme"


async def test_botcore_config_env_missing_file(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOTCORE_CONFIG", str(tmp_path / "nope.toml"))
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert info.value.key == "BOTCORE_CONFIG"
    assert "nope.toml" in str(info.value)


async def test_env_overrides_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path, TOML)
    monkeypatch.setenv("BOTCORE_PORT", "9100")
    monkeypatch.setenv("BOTCORE_BOTS__SUPPORT__CHANNEL", "feishu")
    monkeypatch.setenv("BOTCORE_LLM__MODEL", "qwen")
    settings = load_settings(path)
    assert settings.port == 9100
    assert settings.llm.model == "qwen"
    bot = settings.bot("support")
    assert bot.channel == "feishu"
    # the rest of the table still comes from the file
    assert bot.app == "examples.support_bot:app"
    assert bot.options["corp_id"] == "ww123"


async def test_env_defines_a_whole_bot(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOTCORE_BOTS__X__CHANNEL", "web")
    monkeypatch.setenv("BOTCORE_BOTS__X__APP", "examples.support_bot:app")
    bot = load_settings().bot("x")
    assert (bot.id, bot.channel) == ("x", "web")


async def test_keyword_overrides_win(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOTCORE_PORT", "9100")
    assert load_settings(_write(tmp_path, TOML), port=1234).port == 1234


async def test_unknown_bot_names_known_ones(tmp_path: Path) -> None:
    settings = load_settings(_write(tmp_path, TOML))
    with pytest.raises(ConfigError) as info:
        settings.bot("nope")
    assert info.value.key == "bots.nope"
    assert "support" in str(info.value)


async def test_bad_app_ref_names_the_key(tmp_path: Path) -> None:
    path = _write(tmp_path, '[bots.b1]\nchannel = "web"\napp = "not a ref"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert info.value.key == "bots.b1.app"
    assert "module:attribute" in str(info.value)


async def test_missing_channel_names_the_key(tmp_path: Path) -> None:
    path = _write(tmp_path, '[bots.b1]\napp = "m:app"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert info.value.key == "bots.b1.channel"
    assert info.value.got == "nothing"


async def test_bad_type_names_the_key(tmp_path: Path) -> None:
    path = _write(tmp_path, '[ingress]\nmax_attempts = "many"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert info.value.key == "ingress.max_attempts"
    assert "'many'" in str(info.value)


async def test_bad_env_value_names_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOTCORE_PORT", "eighty")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert info.value.key == "port"


async def test_unknown_top_level_key_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(_write(tmp_path, 'prot = 80\n'))
    assert info.value.key == "prot"


async def test_secret_not_echoed_in_error(tmp_path: Path) -> None:
    path = _write(tmp_path, '[llm]\napi_key = 12345678987654321\n')
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert info.value.key == "llm.api_key"
    assert "12345678987654321" not in str(info.value)
    assert info.value.got is None


async def test_bot_secret_not_echoed_in_error(tmp_path: Path) -> None:
    """A bad bot table must not leak the channel secret it holds."""
    path = _write(tmp_path, '[bots.b1]\nchannel = 7\napp = "m:app"\n'
                            'secret = "hunter2-very-secret"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert info.value.key == "bots.b1.channel"
    assert "hunter2-very-secret" not in str(info.value)


async def test_toml_syntax_error(tmp_path: Path) -> None:
    path = _write(tmp_path, 'port = = 1\napi_key = "sk-zzz"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert info.value.key == str(path)
    assert "sk-zzz" not in str(info.value)


async def test_explicit_missing_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "missing.toml")


async def test_range_checks(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(_write(tmp_path, "[ingress]\nmax_attempts = 0\n"))
    assert info.value.key == "ingress.max_attempts"


@pytest.mark.parametrize("table", ['[llm]\npassword = "hunter2"\n',
                                   '[llm]\nsk = "hunter2"\n',
                                   '[ingress]\nappsecret = "hunter2"\n'])
async def test_unknown_key_value_not_echoed(tmp_path: Path, table: str) -> None:
    """A mistyped key often holds a secret: name the key, never echo its value."""
    with pytest.raises(ConfigError) as info:
        load_settings(_write(tmp_path, table))
    assert info.value.key.split(".")[0] in {"llm", "ingress"}
    assert "hunter2" not in str(info.value)
