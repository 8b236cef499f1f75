"""Fixtures for the LangChain adapter: a fake server, and each behaviour run sync and async."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from langchain_selfhosted import ChatSelfHosted
from selfhosted_core import Config, Provider
from tests.core.harness import ENDPOINTS, FakeServer
from tests.lc_driver import lc  # noqa: F401 - the parity fixture


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
