"""Run one LangChain call through the sync or the async API: the adapter's parity harness."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.embeddings import Embeddings
from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.runnables import Runnable


class LCDriver:
    """Runs one LangChain call through the sync or the async API."""

    def __init__(self, mode: str) -> None:
        self.mode = mode

    async def invoke(
        self, runnable: Runnable[LanguageModelInput, Any], value: LanguageModelInput, **kw: Any
    ) -> Any:
        if self.mode == "sync":
            return runnable.invoke(value, **kw)
        return await runnable.ainvoke(value, **kw)

    async def stream(
        self, runnable: Runnable[LanguageModelInput, BaseMessage], value: LanguageModelInput
    ) -> list[AIMessageChunk]:
        if self.mode == "sync":
            chunks = list(runnable.stream(value))
        else:
            chunks = [chunk async for chunk in runnable.astream(value)]
        assert all(isinstance(chunk, AIMessageChunk) for chunk in chunks)
        return chunks  # type: ignore[return-value]

    async def documents(self, embeddings: Embeddings, texts: list[str]) -> list[list[float]]:
        if self.mode == "sync":
            return embeddings.embed_documents(texts)
        return await embeddings.aembed_documents(texts)

    async def query(self, embeddings: Embeddings, text: str) -> list[float]:
        if self.mode == "sync":
            return embeddings.embed_query(text)
        return await embeddings.aembed_query(text)


def merged(chunks: list[AIMessageChunk]) -> AIMessage:
    total = chunks[0]
    for chunk in chunks[1:]:
        total = total + chunk
    return total


@pytest.fixture(params=["sync", "async"])
def lc(request: pytest.FixtureRequest) -> LCDriver:
    return LCDriver(request.param)
