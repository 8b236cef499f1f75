"""Fixtures for the LiteLLM adapter: a fake server, a provider on it, and the handler registered.

Every behaviour that is a call runs through `litellm.completion` and `litellm.acompletion` (the
`ll` fixture); `litellm_state` puts LiteLLM's provider registry back after each test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from litellm_selfhosted import SelfHostedLLM, register
from selfhosted_core import Config, Provider
from tests.core.harness import ENDPOINTS, FakeServer
from tests.litellm_driver import litellm_state, ll  # noqa: F401 - fixtures


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
def registered(provider: Provider, litellm_state: None) -> SelfHostedLLM:  # noqa: F811
    """The handler for `selfhosted/...`, registered with LiteLLM for this test only."""
    return register(provider=provider)
