"""Clients close themselves: sync ones with their provider, async ones with their event loop."""

from __future__ import annotations

import asyncio
import gc

import httpx2

from selfhosted_core import ChatRequest, Config, Provider
from tests.core import payloads
from tests.core.harness import ENDPOINTS, FakeServer, user

CHAT = "/v1/chat/completions"


def _provider(server: FakeServer) -> Provider:
    server.on("POST", CHAT, payloads.VLLM_REASONING)
    return Provider(
        Config(endpoints=ENDPOINTS), transport=server.transport, async_transport=server.transport
    )


def test_async_clients_close_when_their_loop_shuts_down() -> None:
    provider = _provider(FakeServer())
    clients: list[httpx2.AsyncClient] = []

    async def ask() -> None:
        await provider.achat(ChatRequest(model="tiny", messages=user()))
        clients.append(provider._aclient(0))
        assert not clients[-1].is_closed

    asyncio.run(ask())
    asyncio.run(ask())
    assert clients[0] is not clients[1]
    assert [client.is_closed for client in clients] == [True, True]


async def test_aclose_closes_the_running_loops_clients_at_once() -> None:
    provider = _provider(FakeServer())
    await provider.achat(ChatRequest(model="tiny", messages=user()))
    client = provider._aclient(0)
    await provider.aclose()
    assert client.is_closed
    assert provider._aclient(0) is not client


def test_sync_clients_close_when_the_provider_is_collected() -> None:
    provider = _provider(FakeServer())
    provider.chat(ChatRequest(model="tiny", messages=user()))
    client = provider._client(0)
    del provider
    gc.collect()
    assert client.is_closed
