"""DingTalk settings and payload models, and the one parser from a robot message to
:class:`~botcore.message.InboundMessage` (shared by HTTP and Stream mode)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from botcore.message import ConversationKey, InboundMessage, Segment, Sender

__all__ = [
    "AtUser", "DingTalkConfig", "RobotMessage", "event_to_inbound", "platform_data", "to_inbound",
]

CHANNEL = "dingtalk"


class DingTalkConfig(BaseModel):
    """The ``[bots.<id>]`` keys of a DingTalk bot (see docs/channels/dingtalk.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    client_id: str = Field(min_length=1, description="AppKey (Client ID)")
    client_secret: SecretStr = Field(description="AppSecret (Client Secret)")
    robot_code: str | None = Field(None, description="robotCode; default client_id")
    mode: Literal["http", "stream"] = "http"
    aes_key: SecretStr | None = Field(None, description="event-callback EncodingAESKey")
    token: SecretStr | None = Field(None, description="event-callback token")
    api_base: str = "https://api.dingtalk.com"
    card_template_id: str | None = Field(None, description="AI card template for streaming")
    card_content_key: str = Field("content", min_length=1)
    sign_window: int = Field(3600, ge=1, le=3600, description="seconds a signature is valid")
    unsupported: Literal["reply", "event", "ignore"] = "reply"
    unsupported_text: str = Field(
        "抱歉，我暂时只能看懂文字消息，请用文字描述你的问题。", min_length=1, max_length=500,
        description="the polite answer to a message the bot cannot read")
    readable_types: tuple[str, ...] = Field(
        ("text", "richText", "audio"),
        description="msgtypes handed to the app; others are 'unsupported'")
    api_qps: float = Field(20.0, gt=0, description="org OpenAPI calls per second")
    stream_idle_timeout: float = Field(120.0, gt=0, description="seconds without a frame")
    stream_retry_for: float = Field(120.0, gt=0, le=3600,
                                    description="seconds a failed durable write is retried")

    @model_validator(mode="after")
    def _crypto_pair(self) -> DingTalkConfig:
        if (self.aes_key is None) != (self.token is None):
            raise ValueError("aes_key and token go together: set both or neither")
        if self.aes_key is not None and len(self.aes_key.get_secret_value()) != 43:
            raise ValueError("aes_key must be the 43-character EncodingAESKey")
        return self

    @property
    def robot(self) -> str:
        """The robotCode used in OpenAPI calls."""
        return self.robot_code or self.client_id


class AtUser(BaseModel):
    """One entry of ``atUsers``."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    dingtalkId: str | None = None
    staffId: str | None = None


class RobotMessage(BaseModel):
    """A robot message: the HTTP callback body and the Stream frame's ``data``."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    msgId: str = Field(min_length=1)
    msgtype: str = "text"
    conversationId: str = Field(min_length=1)
    conversationType: Literal["1", "2"] = "1"
    conversationTitle: str | None = None
    senderId: str | None = None
    senderStaffId: str | None = None
    senderNick: str | None = None
    senderCorpId: str | None = None
    isAdmin: bool | None = None
    chatbotUserId: str | None = None
    chatbotCorpId: str | None = None
    robotCode: str | None = None
    atUsers: tuple[AtUser, ...] = ()
    isInAtList: bool | None = None
    sessionWebhook: str | None = None
    sessionWebhookExpiredTime: int | None = None
    createAt: int | None = None
    text: Mapping[str, Any] | None = None
    content: Mapping[str, Any] | str | None = None


#: DingTalk event types → botcore's common names (botcore.message.EventType).
_COMMON_EVENTS = {"chat_add_member": "member_joined", "chat_remove_member": "member_left",
                  "chat_quit": "member_left"}


def _content(msg: RobotMessage) -> Mapping[str, Any]:
    return msg.content if isinstance(msg.content, Mapping) else {}


def _media(kind: Literal["image", "voice", "video", "file"], content: Mapping[str, Any]
           ) -> Segment:
    code = content.get("downloadCode") or content.get("pictureDownloadCode")
    extra = {k: v for k, v in content.items() if k in ("duration", "videoType", "spaceId",
                                                         "fileId", "pictureDownloadCode")}
    return Segment(type=kind, file_id=str(code) if code else None,
                   name=content.get("fileName"), data=extra)


def _rich_text(content: Mapping[str, Any]) -> tuple[str, list[Segment]]:
    texts: list[str] = []
    segments: list[Segment] = []
    items = content.get("richText")
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, Mapping):
            continue
        if "text" in item:
            texts.append(str(item["text"]))
        elif item.get("downloadCode") or item.get("pictureDownloadCode"):
            segments.append(_media("image", item))
    return "".join(texts), segments


def _body(msg: RobotMessage) -> tuple[str, list[Segment]] | None:
    """Text and segments by ``msgtype``; None for a type we do not understand."""
    content = _content(msg)
    match msg.msgtype:
        case "text":
            return str((msg.text or {}).get("content", "")), []
        case "richText":
            return _rich_text(content)
        case "picture":
            return "", [_media("image", content)]
        case "audio":
            return str(content.get("recognition") or ""), [_media("voice", content)]
        case "file":
            return "", [_media("file", content)]
        case "video":
            return "", [_media("video", content)]
    return None


def platform_data(msg: RobotMessage) -> dict[str, Any]:
    """What ``send()`` needs later (JSON-able): reply webhook, ids, chat type."""
    return {
        "conversationId": msg.conversationId,
        "conversationType": msg.conversationType,
        "senderStaffId": msg.senderStaffId,
        "senderId": msg.senderId,
        "senderNick": msg.senderNick,
        "robotCode": msg.robotCode,
        "sessionWebhook": msg.sessionWebhook,
        "sessionWebhookExpiredTime": msg.sessionWebhookExpiredTime,
    }


def _readable(msg: RobotMessage, body: tuple[str, list[Segment]] | None,
              readable: Collection[str] | None) -> bool:
    if body is None:
        return False
    if readable is not None and msg.msgtype not in readable:
        return False
    return msg.msgtype != "audio" or bool(body[0].strip())  # a voice note without transcript


def to_inbound(payload: Mapping[str, Any], bot_id: str, *,
               unsupported: Literal["event", "ignore"] = "event",
               readable: Collection[str] | None = None) -> InboundMessage | None:
    """Turn a robot message into an InboundMessage.

    Args:
        payload: the decoded JSON body (HTTP) or frame ``data`` (Stream).
        bot_id: the botcore bot id.
        unsupported: a message the bot cannot read (an unknown ``msgtype``, a type not in
            ``readable``, a voice note without transcript) becomes an ``unsupported`` event
            (``event``: ``event_data.msgtype``, media kept in ``segments``) or is dropped
            (``ignore``: returns None).
        readable: the msgtypes delivered as messages; None: every type we understand.

    Raises:
        pydantic.ValidationError: the payload is not a robot message.
    """
    msg = RobotMessage.model_validate(payload)
    body = _body(msg)
    ok = _readable(msg, body, readable)
    if not ok and unsupported == "ignore":
        return None
    text, segments = body if body is not None else ("", [])
    group = msg.conversationType == "2"
    mentions = [Segment(type="mention", user_id=u.staffId or u.dingtalkId)
                for u in msg.atUsers if u.dingtalkId != msg.chatbotUserId]
    return InboundMessage(
        channel=CHANNEL, bot_id=bot_id,
        conversation=ConversationKey(channel=CHANNEL, bot_id=bot_id, chat_id=msg.conversationId),
        event_id=msg.msgId, message_id=msg.msgId,
        kind="message" if ok else "event",
        event_type=None if ok else "unsupported",
        event_data={} if ok else {"msgtype": msg.msgtype},
        chat_type="group" if group else "private",
        sender=Sender(id=msg.senderStaffId or msg.senderId or "", name=msg.senderNick),
        # In groups DingTalk removes the @robot but leaves the space after it.
        text=text.strip(),
        segments=(*mentions, *segments),
        mentioned=(not group) or bool(msg.isInAtList),
        platform=platform_data(msg),
        raw=dict(payload),
        **({"timestamp": msg.createAt / 1000} if msg.createAt else {}),
    )


def event_to_inbound(data: Mapping[str, Any], bot_id: str, digest: str) -> InboundMessage:
    """An encrypted event callback (other than ``check_url``) as an ``event`` message.

    Args:
        data: the decrypted event JSON (``EventType``, ...).
        bot_id: the botcore bot id.
        digest: a hash of the plaintext, the dedupe id when DingTalk gives no ``EventId``.
    """
    chat = data.get("OpenConversationId") or data.get("ChatId") or "events"
    operator = data.get("Operator") or data.get("StaffId") or data.get("UserId") or "dingtalk"
    return InboundMessage(
        channel=CHANNEL, bot_id=bot_id,
        conversation=ConversationKey(channel=CHANNEL, bot_id=bot_id, chat_id=str(chat)),
        event_id=str(data.get("EventId") or digest), kind="event",
        event_type=_COMMON_EVENTS.get(str(data.get("EventType")),
                                      str(data.get("EventType") or "unknown")),
        chat_type="group" if data.get("OpenConversationId") or data.get("ChatId") else "private",
        sender=Sender(id=str(operator) if not isinstance(operator, list) else "dingtalk"),
        event_data={**data, "native": data.get("EventType")},
        platform={"eventType": data.get("EventType")},
    )
