"""Build Feishu IM content from an OutboundMessage: text, markdown cards, buttons, media."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from botcore.message import OutboundMessage, Segment

from .api import FeishuClient
from .errors import FeishuError

__all__ = ["Part", "attachment_part", "body_parts"]

#: One IM message to send: (msg_type, content as a dict; it is JSON-encoded on the wire).
Part = tuple[str, dict[str, Any]]

_FILE_TYPES = {".opus": "opus", ".mp4": "mp4", ".pdf": "pdf", ".doc": "doc", ".docx": "doc",
               ".xls": "xls", ".xlsx": "xls", ".ppt": "ppt", ".pptx": "ppt"}


def markdown_card(text: str, buttons: tuple[tuple[str, str], ...] = ()) -> dict[str, Any]:
    """A JSON 2.0 card with one markdown element and optional callback buttons."""
    elements: list[dict[str, Any]] = [{"tag": "markdown", "content": text}] if text else []
    elements += [
        {"tag": "button", "text": {"tag": "plain_text", "content": label},
         "behaviors": [{"type": "callback", "value": {"action": value}}]}
        for label, value in buttons
    ]
    return {"schema": "2.0", "body": {"elements": elements}}


def body_parts(message: OutboundMessage) -> list[Part]:
    """The card or the text of ``message`` as IM content (attachments come separately)."""
    if message.card is not None:
        return [("interactive", dict(message.card))]
    if message.format == "markdown" or message.buttons:
        return [("interactive", markdown_card(message.text, message.buttons))]
    if message.text:
        return [("text", {"text": message.text})]
    return []


def _payload(segment: Segment) -> bytes | None:
    encoded = segment.data.get("base64") if isinstance(segment.data, Mapping) else None
    if not isinstance(encoded, str):
        return None
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise FeishuError("attachment data['base64'] is not valid base64") from None


async def attachment_part(client: FeishuClient, segment: Segment) -> Part:
    """Upload ``segment`` if it carries bytes (``data["base64"]``) and build its content.

    A ``file_id`` is used as an existing image_key / file_key; a bare ``url`` is sent as a
    link in a text message (the adapter does not fetch URLs: no SSRF from model output).
    """
    content = _payload(segment)
    name = segment.name or "file"
    if segment.type in ("image", "sticker"):
        if content is not None:
            return "image", {"image_key": await client.upload_image(content, name)}
        if segment.file_id:
            return "image", {"image_key": segment.file_id}
    elif content is not None:
        suffix = name[name.rfind("."):].lower() if "." in name else ""
        key = await client.upload_file(content, name, _FILE_TYPES.get(suffix, "stream"))
        return "file", {"file_key": key}
    elif segment.file_id:
        return ("audio" if segment.type == "voice" else "file"), {"file_key": segment.file_id}
    if segment.url:
        return "text", {"text": f"{segment.name or segment.text or ''} {segment.url}".strip()}
    raise FeishuError(f"cannot send a {segment.type} attachment without base64 data, "
                      "file_id or url")
