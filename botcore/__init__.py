"""botcore: LLM chatbots inside WeCom, DingTalk, Feishu/Lark, Telegram and the web.

The public API::

    from botcore import BotApp, TurnContext

    app = BotApp("support")

    @app.command("reset")
    async def reset(ctx: TurnContext) -> None:
        await ctx.session.clear()
        await ctx.reply("会话已重置")
"""

from botcore.app import BotApp
from botcore.context import TurnContext
from botcore.matchers import Matcher, command, event, group, keyword, mentioned, private, regex
from botcore.message import ConversationKey, InboundMessage, OutboundMessage, Segment, Sender
from botcore.prompts import PromptRequest, PromptResult
from botcore.sessions import HistoryEntry

__version__ = "0.1.0"

__all__ = [
    "BotApp",
    "ConversationKey",
    "HistoryEntry",
    "InboundMessage",
    "Matcher",
    "OutboundMessage",
    "PromptRequest",
    "PromptResult",
    "Segment",
    "Sender",
    "TurnContext",
    "__version__",
    "command",
    "event",
    "group",
    "keyword",
    "mentioned",
    "private",
    "regex",
]
