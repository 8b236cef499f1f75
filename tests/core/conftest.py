"""Fixtures for core tests: a fake server, and each test run through the sync and async API."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from selfhosted_core import Config, Provider
from tests.core.harness import ENDPOINTS, FakeServer
from tests.driver import Driver
from tests.redis_server import RedisServer


@pytest.fixture
def server() -> FakeServer:
    return FakeServer()


@pytest.fixture(params=["sync", "async"])
async def driver(request: pytest.FixtureRequest, server: FakeServer) -> AsyncIterator[Driver]:
    transport = server.transport
    provider = Provider(Config(endpoints=ENDPOINTS), transport=transport, async_transport=transport)
    async with provider:
        yield Driver(request.param, provider)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One real redis-server for the session; each test keeps to a key prefix of its own."""
    with RedisServer() as server:
        yield server


@pytest.fixture
def redis_prefix(request: pytest.FixtureRequest) -> str:
    return f"test-{request.node.name}-{uuid.uuid4().hex[:8]}"
