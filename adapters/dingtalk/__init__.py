"""DingTalk (钉钉) channel: app robot over HTTP or Stream; see docs/channels/dingtalk.md."""

from adapters.dingtalk.adapter import DingTalkAdapter
from adapters.dingtalk.api import DingTalkClient, DingTalkGroupRobot
from adapters.dingtalk.errors import DingTalkApiError, DingTalkError
from adapters.dingtalk.models import DingTalkConfig

__all__ = [
    "DingTalkAdapter",
    "DingTalkApiError",
    "DingTalkClient",
    "DingTalkConfig",
    "DingTalkError",
    "DingTalkGroupRobot",
]
