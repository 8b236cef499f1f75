"""The aiohttp transport: httpx2's errors for aiohttp's, timeouts as httpx2 applies them, and
connections that are only reused when their answer was read to its end."""

from __future__ import annotations

import asyncio
import socket
import time
import warnings
from collections.abc import AsyncIterator, Iterator

import aiohttp
import httpx2
import pytest
from aiohttp import web

from selfhosted_core import ChatRequest, Config, Provider
from selfhosted_core._aiohttp import AiohttpTransport, _mapped
from selfhosted_core.errors import EndpointTimeoutError
from tests.core import payloads
from tests.core.harness import FakeServer, user


@pytest.mark.parametrize(
    ("raised", "body", "expected"),
    [
        (aiohttp.ConnectionTimeoutError("connecting"), False, httpx2.ConnectTimeout),
        (aiohttp.SocketTimeoutError("reading"), False, httpx2.ReadTimeout),
        (aiohttp.SocketTimeoutError("reading"), True, httpx2.ReadTimeout),
        (asyncio.TimeoutError(), True, httpx2.ReadTimeout),
        (aiohttp.ServerDisconnectedError(), False, httpx2.RemoteProtocolError),
        (aiohttp.ServerDisconnectedError(), True, httpx2.RemoteProtocolError),
        (aiohttp.ClientPayloadError("cut"), True, httpx2.RemoteProtocolError),
        (aiohttp.ClientOSError(104, "Connection reset by peer"), False, httpx2.ReadError),
        (aiohttp.ClientOSError(None, "Can not write request body"), False, httpx2.ReadError),
        (aiohttp.ClientOSError(104, "Connection reset by peer"), True, httpx2.ReadError),
    ],
)
def test_aiohttp_errors_become_the_httpx2_errors_the_core_maps(
    raised: Exception, body: bool, expected: type[httpx2.HTTPError]
) -> None:
    with pytest.raises(expected) as caught, _mapped(body=body):
        raise raised
    assert caught.value.__cause__ is raised


def test_a_hang_up_before_the_headers_reads_as_httpx2s_so_the_stale_connection_resend_applies() -> (
    None
):
    with (
        pytest.raises(httpx2.RemoteProtocolError, match="without sending a response"),
        _mapped(body=False),
    ):
        raise aiohttp.ServerDisconnectedError()


async def test_async_calls_go_through_aiohttp_unless_a_transport_is_given() -> None:
    config = Config(endpoints=[{"url": "http://127.0.0.1:9", "id": "tiny"}])
    async with Provider(config) as provider:
        client = provider._aclient(0)
        assert isinstance(
            client._transport_for_url(httpx2.URL(config.endpoints[0].api_base)), AiohttpTransport
        )
    fake = FakeServer()
    fake.on("POST", "/v1/chat/completions", payloads.VLLM_REASONING)
    async with Provider(config, async_transport=fake.transport) as provider:
        answer = await provider.achat(ChatRequest(model="tiny", messages=user()))
    assert answer.content
    assert len(fake.requests) == 1


TICK = b'data: {"choices":[{"index":0,"delta":{"content":"tick "}}]}\n\n'
DONE = b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n'


@pytest.fixture
async def ticking() -> AsyncIterator[tuple[str, list[object]]]:
    """A server streaming ten ticks 50 ms apart; it notes the connection of every request."""
    connections: list[object] = []

    async def chat(request: web.Request) -> web.StreamResponse:
        connections.append(request.transport)
        body = await request.json()
        if not body.get("stream"):
            return web.json_response(
                {
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": "Hi."},
                            "finish_reason": "stop",
                        }
                    ]
                }
            )
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        for _ in range(10):
            await response.write(TICK)
            await asyncio.sleep(0.05)
        await response.write(DONE)
        return response

    app = web.Application(client_max_size=8 * 1024 * 1024)
    app.router.add_post("/v1/chat/completions", chat)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}", connections
    await runner.cleanup()


async def test_a_stream_left_early_closes_its_connection_and_the_next_call_gets_a_fresh_one(
    ticking: tuple[str, list[object]],
) -> None:
    url, connections = ticking
    async with Provider(Config(endpoints=[{"url": url, "id": "tiny"}])) as provider:
        request = ChatRequest(model="tiny", messages=user())
        async with provider.astream(request) as stream:
            async for chunk in stream:
                assert chunk.content == "tick "
                break
        answer = await provider.achat(request)
        assert answer.content == "Hi."
        second = await provider.achat(request)
    assert second.content == "Hi."
    # The left stream's connection was not reused; the whole answers' connection was.
    assert connections[1] is not connections[0]
    assert connections[2] is connections[1]


async def test_the_idle_timeout_bounds_each_body_read_once_the_headers_arrived(
    ticking: tuple[str, list[object]],
) -> None:
    url, _ = ticking
    config = Config(endpoints=[{"url": url, "id": "tiny", "idle_timeout": 0.01}])
    async with Provider(config) as provider:
        stream = provider.astream(ChatRequest(model="tiny", messages=user()))
        with pytest.raises(EndpointTimeoutError, match="timed out") as caught:
            async for _ in stream:
                pass
    assert isinstance(caught.value.__cause__, httpx2.ReadTimeout)


async def test_an_environment_proxy_still_carries_the_requests_it_covers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    config = Config(endpoints=[{"url": "http://gpu-1.internal:8080", "id": "tiny"}])
    async with Provider(config) as provider:
        url = httpx2.URL(config.endpoints[0].api_base + "/chat/completions")
        sync_transport = provider._client(0)._transport_for_url(url)
        async_transport = provider._aclient(0)._transport_for_url(url)
    # httpx2 mounts a proxy transport for the URL; the direct dispatch uses it, not the pool.
    assert isinstance(sync_transport, httpx2.HTTPTransport)
    assert sync_transport is not provider._client(0)._transport
    assert isinstance(async_transport, httpx2.AsyncHTTPTransport)
    provider.close()


async def test_with_a_proxy_named_no_proxy_is_left_to_httpx2(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", ".internal")
    config = Config(endpoints=[{"url": "http://internal:8080", "id": "tiny"}])
    async with Provider(config) as provider:
        url = httpx2.URL(config.endpoints[0].api_base)
        transport = provider._aclient(0)._transport_for_url(url)
    # httpx2 and urllib read `.internal` differently; httpx2's transports decide, as sync.
    assert isinstance(transport, httpx2.AsyncHTTPTransport)


@pytest.fixture
def deaf() -> Iterator[socket.socket]:
    """A listening socket that never accepts: the kernel takes connections, nobody reads."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener


async def test_a_server_that_never_reads_a_large_body_times_out_at_the_timeout(
    deaf: socket.socket,
) -> None:
    port = deaf.getsockname()[1]
    config = Config(endpoints=[{"url": f"http://127.0.0.1:{port}", "id": "tiny"}])
    request = ChatRequest(model="tiny", messages=user("x" * 20_000_000), timeout=1.0)
    async with Provider(config) as provider:
        started = time.perf_counter()
        with pytest.raises(EndpointTimeoutError):
            await provider.achat(request)
        elapsed = time.perf_counter() - started
        # The abandoned connection cannot flush its 20 MB; closing the listener resets it, so
        # it is gone before the loop ends.
        deaf.close()
        await asyncio.sleep(0.2)
    assert elapsed < 5


async def test_a_header_line_longer_than_8_kib_is_read_as_the_sync_path_reads_it() -> None:
    cookie = "session=" + "a" * 10_000

    async def chat(request: web.Request) -> web.Response:
        return web.json_response(
            {
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "Hi."},
                        "finish_reason": "stop",
                    }
                ]
            },
            headers={"set-cookie": cookie},
        )

    app = web.Application(handler_args={"max_field_size": 65536})
    app.router.add_post("/v1/chat/completions", chat)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        async with Provider(Config(endpoints=[{"url": url, "id": "tiny"}])) as provider:
            answer = await provider.achat(ChatRequest(model="tiny", messages=user()))
        assert answer.content == "Hi."
    finally:
        await runner.cleanup()


async def test_a_body_over_a_mib_is_sent_without_aiohttps_resource_warning(
    ticking: tuple[str, list[object]],
) -> None:
    url, _ = ticking
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        async with Provider(Config(endpoints=[{"url": url, "id": "tiny"}])) as provider:
            answer = await provider.achat(ChatRequest(model="tiny", messages=user("x" * 2_000_000)))
    assert answer.content == "Hi."
