"""Feishu / Lark (飞书) channel adapter: webhook or long connection, CardKit streaming."""

from .adapter import FeishuAdapter
from .errors import FeishuApiError, FeishuAuthError, FeishuError
from .models import FeishuConfig

__all__ = ["FeishuAdapter", "FeishuApiError", "FeishuAuthError", "FeishuConfig", "FeishuError"]
