"""Config validation: ConfigError names the key, never echoes a secret."""

from __future__ import annotations

import pytest
from feishu_helpers import APP_SECRET, ENCRYPT_KEY, TOKEN, MakeAdapter

from adapters.feishu import FeishuAdapter, FeishuConfig
from botcore.channel import ChannelAdapter
from botcore.errors import ConfigError


@pytest.mark.parametrize(("options", "key"), [
    ({"app_id": None}, "bots.fs.app_id"),
    ({"unknown_key": "x"}, "bots.fs.unknown_key"),
    ({"mode": "polling"}, "bots.fs.mode"),
    ({"verification_token": None}, "bots.fs.verification_token"),
])
def test_bad_config(make_adapter: MakeAdapter, options: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        make_adapter(**options)
    assert err.value.key == key
    for value in (APP_SECRET, TOKEN, ENCRYPT_KEY):  # no configured secret is echoed
        assert value not in str(err.value)


def test_defaults_and_protocol(make_adapter: MakeAdapter) -> None:
    adapter = make_adapter(mode="long_connection", verification_token=None, encrypt_key=None,
                           app_secret="s3cr3t-value")
    assert isinstance(adapter, ChannelAdapter)
    assert FeishuAdapter.config_model is FeishuConfig
    assert adapter.config.api_base == "https://open.feishu.cn"
    assert adapter.config.replay_window == 300
    assert "s3cr3t-value" not in repr(adapter.config)
