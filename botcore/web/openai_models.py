"""The request side of ``/v1/chat/completions``: the body's models, its size cap and the
errors answered in OpenAI's format."""

from __future__ import annotations

import json
from typing import Any, Literal

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = ["MAX_REQUEST_BYTES", "ApiError", "ChatRequest", "parse_request", "read_json"]

#: Request bodies above this size are answered 413.
MAX_REQUEST_BYTES = 1024 * 1024


class _ContentPart(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: str
    text: str | None = None


class _Message(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[_ContentPart] | None = None

    @property
    def text(self) -> str:
        """The text of the message (text parts joined; images and the like are ignored)."""
        if isinstance(self.content, list):
            return "\n".join(p.text for p in self.content if p.type == "text" and p.text)
        return self.content or ""


class _StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    include_usage: bool = False


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1, max_length=128)
    messages: list[_Message] = Field(min_length=1)
    stream: bool = False
    stream_options: _StreamOptions | None = None
    user: str | None = Field(None, max_length=256)


class ApiError(Exception):
    """A client or server error, answered in the OpenAI error format."""

    def __init__(self, status: int, message: str, type_: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"error": {"message": message, "type": type_, "param": param,
                               "code": code}}

    def response(self) -> JSONResponse:
        """The error as a JSON response."""
        return JSONResponse(self.body, status_code=self.status)


def _param(loc: tuple[int | str, ...]) -> str:
    """``("messages", 0, "role")`` → ``messages[0].role``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


async def read_json(request: Request) -> dict[str, Any]:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_REQUEST_BYTES:
        raise ApiError(413, f"request body larger than {MAX_REQUEST_BYTES} bytes",
                       code="request_too_large")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_REQUEST_BYTES:
            raise ApiError(413, f"request body larger than {MAX_REQUEST_BYTES} bytes",
                           code="request_too_large")
    try:
        data = json.loads(body)
    except RecursionError:
        raise ApiError(400, "the body is nested too deeply", param="body") from None
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "the body is not valid JSON", param="body") from None
    if not isinstance(data, dict):
        raise ApiError(400, "the body must be a JSON object", param="body")
    return data


def parse_request(data: dict[str, Any]) -> ChatRequest:
    try:
        return ChatRequest.model_validate(data)
    except RecursionError:
        raise ApiError(400, "the body is nested too deeply", param="body") from None
    except ValidationError as exc:
        first = exc.errors(include_input=False, include_url=False)[0]
        param = _param(tuple(first["loc"]))
        raise ApiError(400, f"invalid '{param}': {first['msg']}", param=param) from None
