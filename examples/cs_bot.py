"""A customer-service bot: FAQ from the knowledge base, order lookups, human handoff.

Run ``botcore kb ingest --kb faq docs/`` first; configure ``[llm]`` for model answers (without
one the bot answers with the best passages, labelled as such).
"""

from __future__ import annotations

from botcore import BotApp, PromptRequest, PromptResult
from botcore.prompts import CallNext

app = BotApp("cs")

ORDERS = {"1001": "已发货 / shipped", "1002": "待付款 / awaiting payment"}


@app.tool
async def order_status(order_id: str) -> str:
    """Look up an order's status by its id."""
    return ORDERS.get(order_id, "no such order")


@app.tool(changes_state=True, timeout=10)
async def cancel_order(order_id: str) -> str:
    """Cancel an order (the user confirms first)."""
    return f"order {order_id} cancelled"


@app.prompt(order=10)
async def persona(req: PromptRequest, call_next: CallNext) -> PromptResult:
    """Keep answers short and polite."""
    req.system.append("你是礼貌、简洁的客服助手。/ You are a polite, concise support agent.")
    return await call_next(req)


app.default_flow("customer_service", kb="faq", satisfaction=True)
