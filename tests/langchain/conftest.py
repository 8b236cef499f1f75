"""Fixtures for the LangChain adapter: a fake server, and each behaviour run sync and async."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.runnables import Runnable

from langchain_selfhosted import ChatSelfHosted
from selfhosted_core import Config, Provider
from tests.core.harness import ENDPOINTS, FakeServer


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


def merged(chunks: list[AIMessageChunk]) -> AIMessage:
    total = chunks[0]
    for chunk in chunks[1:]:
        total = total + chunk
    return total


@pytest.fixture
def server() -> FakeServer:
    return FakeServer()


@pytest.fixture
async def provider(server: FakeServer) -> AsyncIterator[Provider]:
    transport = server.transport
    async with Provider(
        Config(endpoints=ENDPOINTS), transport=transport, async_transport=transport
    ) as provider:
        yield provider


@pytest.fixture
def chat(provider: Provider) -> ChatSelfHosted:
    return ChatSelfHosted(model="tiny", provider=provider, max_retries=0)


@pytest.fixture(params=["sync", "async"])
def lc(request: pytest.FixtureRequest) -> LCDriver:
    return LCDriver(request.param)
