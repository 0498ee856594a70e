"""A small FAQ-style support bot: the first bot a newcomer runs.

Answers common questions from a table, remembers the customer's order number, and hands
anything else to the "chat" flow (a language model, once one is configured in
``[llm]``); without a model it lists what it can answer.
"""

from __future__ import annotations

from botcore import BotApp, PromptRequest, PromptResult, TurnContext
from botcore.prompts import CallNext

app = BotApp("support")

FAQ: dict[tuple[str, ...], str] = {
    ("营业时间", "opening hours", "hours", "几点"):
        "我们的客服时间是每天 9:00–21:00。/ Support is open daily, 9:00–21:00.",
    ("退货", "退款", "return", "refund"):
        "签收后 7 天内可无理由退货，在“我的订单”里点“申请退货”即可。"
        "/ Returns are free within 7 days of delivery: open My Orders → Request a return.",
    ("运费", "shipping", "delivery"):
        "订单满 99 元包邮，其余订单运费 8 元。/ Shipping is free over ¥99, otherwise ¥8.",
    ("发票", "invoice"):
        "下单后可在订单详情里申请电子发票。/ Request an e-invoice from the order page.",
}


@app.command("start", "help")
async def start(ctx: TurnContext) -> None:
    """Greet and list what the bot knows."""
    await ctx.reply("你好！我是客服助手，可以回答：营业时间、退货、运费、发票。\n"
                    "Hi! Ask me about opening hours, returns, shipping or invoices.\n"
                    "/order <号码> 记住你的订单号 · /reset 清空会话")


@app.command("order")
async def remember_order(ctx: TurnContext) -> None:
    """``/order 12345``: remember the order number for this conversation."""
    assert ctx.command is not None
    if not ctx.command.args:
        saved = await ctx.session.get("order_id")
        await ctx.reply(f"当前订单号 / current order: {saved or '未设置 (not set)'}")
        return
    order_id = ctx.command.args[0]
    await ctx.session.set("order_id", order_id)
    await ctx.reply(f"好的，已记住订单号 {order_id}。/ Noted: order {order_id}.")


@app.command("reset")
async def reset(ctx: TurnContext) -> None:
    """Forget this conversation."""
    await ctx.session.clear()
    await ctx.reply("会话已重置。/ Conversation reset.")


@app.message()
async def faq(ctx: TurnContext) -> None:
    """Answer from the FAQ table, else hand over to the chat flow."""
    text = ctx.text.lower()
    for words, answer in FAQ.items():
        if any(word in text for word in words):
            await ctx.reply(answer)
            return
    await ctx.flow("chat")


@app.prompt(order=10)
async def persona(req: PromptRequest, call_next: CallNext) -> PromptResult:
    """Every model call speaks as the shop's assistant and knows the FAQ."""
    req.system.append("你是一家网店的客服助手，回答简洁、礼貌。You are a concise, polite "
                      "support assistant for an online shop.")
    req.data.extend(FAQ.values())
    return await call_next(req)
