"""A customer-service bot without a model, for the handoff restart test."""

from __future__ import annotations

from botcore import BotApp
from botcore.retrieval import Passage


class _Retriever:
    async def retrieve(self, query: str, *, k: int = 5) -> list[Passage]:
        return [Passage(text="满 99 元包邮。", score=1.0, source="ship.md", chunk_id="1",
                        kb="faq")]


app = BotApp("cs")
app.default_flow("flows.customer_service:build_cs_graph", retriever=_Retriever())
