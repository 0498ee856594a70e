"""WeCom (企业微信) channel: self-built app and AI bot callbacks, app API, group robot."""

from .adapter import WeComAdapter
from .api import AiBotReplier, WeComClient, WeComGroupRobot
from .crypto import WXBizMsgCrypt
from .errors import (
    WeComApiError,
    WeComAuthError,
    WeComDeliveryUnknown,
    WeComError,
    WeComRateLimited,
)
from .models import WeComConfig

__all__ = [
    "AiBotReplier",
    "WXBizMsgCrypt",
    "WeComAdapter",
    "WeComApiError",
    "WeComAuthError",
    "WeComClient",
    "WeComConfig",
    "WeComDeliveryUnknown",
    "WeComError",
    "WeComGroupRobot",
    "WeComRateLimited",
]
