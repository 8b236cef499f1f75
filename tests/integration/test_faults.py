"""The fault proxy itself, driven with plain httpx2 against a real llama-server.

Each test asserts what the fault looks like on the wire to an httpx2 client, so the robustness
tests that use the proxy can rely on it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest

from selfhosted_core.local import LlamaServer
from tests import faults
from tests.faults import FaultProxy
from tests.integration.conftest import API_KEY

CHAT: dict[str, Any] = {
    "model": "tiny",
    "messages": [{"role": "user", "content": "hi"}],
    "max_tokens": 8,
}
AUTH = {"Authorization": f"Bearer {API_KEY}"}
PATH = "/v1/chat/completions"


@pytest.fixture(autouse=True)
def no_asyncio_complaints(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """The proxy's loop logs what it cannot raise (a failed callback, a task never awaited)."""
    yield
    records = [r for when in ("setup", "call", "teardown") for r in caplog.get_records(when)]
    assert [
        r.getMessage() for r in records if r.name == "asyncio" and r.levelno >= logging.WARNING
    ] == []


@pytest.fixture
def proxy(chat_server: LlamaServer) -> Iterator[FaultProxy]:
    with FaultProxy(chat_server.url) as proxy:
        yield proxy


@pytest.fixture
def client(proxy: FaultProxy) -> Iterator[httpx2.Client]:
    with httpx2.Client(base_url=proxy.url, timeout=10) as client:
        yield client


def chat(client: httpx2.Client, **extra: Any) -> httpx2.Response:
    return client.post(PATH, json={**CHAT, **extra}, headers=AUTH)


def wait_until(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


def test_pass_through_relays_the_real_answer_and_records_the_request(
    proxy: FaultProxy, client: httpx2.Client, chat_server: LlamaServer
) -> None:
    direct = httpx2.post(f"{chat_server.url}{PATH}", json=CHAT, headers=AUTH, timeout=10)
    response = chat(client)
    assert response.status_code == 200
    assert response.headers["connection"] == "close"
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["model"] == "tiny"
    assert body["choices"][0]["message"] == direct.json()["choices"][0]["message"]
    [seen] = proxy.seen
    assert (seen.method, seen.path, seen.fault) == ("POST", PATH, faults.PASS)
    assert seen.headers["authorization"] == f"Bearer {API_KEY}"
    assert seen.json() == CHAT


def test_pass_through_relays_upstream_errors_unchanged(client: httpx2.Client) -> None:
    response = client.post(PATH, json=CHAT, headers={"Authorization": "Bearer wrong"})
    assert response.status_code == 401
    assert response.content == (
        b'{"error":{"message":"Invalid API Key","type":"authentication_error","code":401}}'
    )


async def test_async_clients_are_served_concurrently(proxy: FaultProxy) -> None:
    proxy.inject(faults.delay(0.5), times=2)
    async with httpx2.AsyncClient(base_url=proxy.url, timeout=10) as client:
        started = time.monotonic()
        first, second = await asyncio.gather(
            client.post(PATH, json=CHAT, headers=AUTH), client.post(PATH, json=CHAT, headers=AUTH)
        )
        elapsed = time.monotonic() - started
    assert (first.status_code, second.status_code) == (200, 200)
    assert 0.5 <= elapsed < 0.95
    assert [s.fault for s in proxy.seen] == [faults.delay(0.5)] * 2


def test_refuse_then_accept_on_the_same_port(proxy: FaultProxy, client: httpx2.Client) -> None:
    port = proxy.port
    proxy.refuse()
    with pytest.raises(httpx2.ConnectError, match="Connection refused"):
        chat(client)
    proxy.accept()
    assert proxy.port == port
    assert chat(client).status_code == 200
    assert len(proxy.seen) == 1


def test_reset_is_a_read_error(proxy: FaultProxy, client: httpx2.Client) -> None:
    proxy.inject(faults.RESET)
    with pytest.raises(httpx2.ReadError, match="Connection reset by peer"):
        chat(client)
    assert [s.fault for s in proxy.seen] == [faults.RESET]


def test_drop_is_a_disconnect_without_response(proxy: FaultProxy, client: httpx2.Client) -> None:
    proxy.inject(faults.DROP)
    with pytest.raises(
        httpx2.RemoteProtocolError, match=r"^Server disconnected without sending a response"
    ):
        chat(client)
    assert [s.fault for s in proxy.seen] == [faults.DROP]


def test_delay_answers_after_the_delay(client: httpx2.Client, proxy: FaultProxy) -> None:
    proxy.inject(faults.delay(0.4))
    started = time.monotonic()
    response = chat(client)
    assert time.monotonic() - started >= 0.4
    assert response.json()["object"] == "chat.completion"


def test_stall_times_out_and_the_connection_is_released(proxy: FaultProxy) -> None:
    proxy.inject(faults.STALL)
    with httpx2.Client(base_url=proxy.url, timeout=httpx2.Timeout(5, read=0.3)) as client:
        started = time.monotonic()
        with pytest.raises(httpx2.ReadTimeout):
            chat(client)
        assert 0.3 <= time.monotonic() - started < 2
    wait_until(lambda: proxy.connections == 0)
    assert [s.fault for s in proxy.seen] == [faults.STALL]


def test_cut_breaks_a_stream_off_after_some_events(
    proxy: FaultProxy, client: httpx2.Client
) -> None:
    proxy.inject(faults.cut(700))
    lines: list[str] = []
    with client.stream("POST", PATH, json={**CHAT, "stream": True}, headers=AUTH) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream"
        with pytest.raises(httpx2.RemoteProtocolError, match="incomplete chunked read"):
            lines.extend(response.iter_lines())
    events = [line for line in lines if line.startswith("data: ")]
    assert len(events) >= 2
    assert "data: [DONE]" not in lines
    assert json.loads(events[0][6:])["object"] == "chat.completion.chunk"
    assert [s.fault for s in proxy.seen] == [faults.cut(700)]


def test_loading_is_llama_servers_own_503(
    proxy: FaultProxy, client: httpx2.Client, chat_server: LlamaServer
) -> None:
    proxy.inject(faults.LOADING)
    response = chat(client)
    assert response.status_code == 503
    assert response.content == (
        b'{"error":{"message":"Loading model","type":"unavailable_error","code":503}}'
    )
    # the same content type as the errors the real server writes
    real = httpx2.post(f"{chat_server.url}{PATH}", json=CHAT, headers={"Authorization": "x"})
    assert response.headers["content-type"] == real.headers["content-type"]
    assert response.headers["content-type"] == "application/json; charset=utf-8"


def test_other_statuses_get_an_openai_error(proxy: FaultProxy, client: httpx2.Client) -> None:
    proxy.inject(faults.status(500))
    response = chat(client)
    assert response.status_code == 500
    assert response.json() == {
        "error": {
            "message": "Internal Server Error",
            "type": "server_error",
            "param": None,
            "code": None,
        }
    }


@pytest.mark.parametrize("retry_after", [None, 2])
def test_rate_limited(proxy: FaultProxy, client: httpx2.Client, retry_after: int | None) -> None:
    proxy.inject(faults.status(429, retry_after=retry_after))
    response = chat(client)
    assert response.status_code == 429
    assert response.headers.get("retry-after") == (None if retry_after is None else "2")
    assert response.json() == {
        "error": {
            "message": "Rate limit reached for requests",
            "type": "requests",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    }


def test_garbage_html(proxy: FaultProxy, client: httpx2.Client) -> None:
    proxy.inject(faults.HTML)
    response = chat(client)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.text.startswith("<!DOCTYPE html>")
    with pytest.raises(json.JSONDecodeError):
        response.json()


def test_garbage_json(proxy: FaultProxy, client: httpx2.Client) -> None:
    proxy.inject(faults.NOT_JSON)
    response = chat(client)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    with pytest.raises(json.JSONDecodeError):
        response.json()


def test_endless_stream_keeps_going_until_the_client_leaves(
    proxy: FaultProxy, client: httpx2.Client
) -> None:
    proxy.inject(faults.ENDLESS)
    events: list[dict[str, Any]] = []
    started = time.monotonic()
    with client.stream("POST", PATH, json={**CHAT, "stream": True}, headers=AUTH) as response:
        assert response.headers["content-type"] == "text/event-stream"
        for line in response.iter_lines():
            if line:
                assert line.startswith("data: {")
                events.append(json.loads(line[6:]))
            if len(events) == 8:
                break
    assert time.monotonic() - started >= 7 * faults.TICK
    assert {e["object"] for e in events} == {"chat.completion.chunk"}
    assert {e["model"] for e in events} == {"tiny"}
    assert events[0]["choices"][0]["delta"]["role"] == "assistant"
    assert all(e["choices"][0]["delta"]["content"] for e in events[1:])
    wait_until(lambda: proxy.connections == 0)


def test_stale_connection_fails_the_next_request(proxy: FaultProxy, client: httpx2.Client) -> None:
    proxy.inject(faults.STALE)
    with client.stream("POST", PATH, json={**CHAT, "stream": True}, headers=AUTH) as response:
        assert "connection" not in response.headers
        lines = list(response.iter_lines())
    assert lines[-2:] == ["data: [DONE]", ""]
    with pytest.raises(
        httpx2.RemoteProtocolError, match=r"^Server disconnected without sending a response"
    ):
        chat(client)
    assert [s.fault for s in proxy.seen] == [faults.STALE, faults.STALE_NEXT]
    # the pool dropped the dead connection: the next request gets a fresh one
    assert chat(client).status_code == 200
    assert [s.fault for s in proxy.seen][2:] == [faults.PASS]


def test_fault_queue_counts_down_then_passes(proxy: FaultProxy, client: httpx2.Client) -> None:
    proxy.inject(faults.DROP, times=2)
    proxy.inject(faults.LOADING)
    for _ in range(2):
        with pytest.raises(httpx2.RemoteProtocolError):
            chat(client)
    assert chat(client).status_code == 503
    assert chat(client).status_code == 200
    assert [s.fault for s in proxy.seen] == [faults.DROP, faults.DROP, faults.LOADING, faults.PASS]


def test_permanent_fault_until_cleared(proxy: FaultProxy, client: httpx2.Client) -> None:
    proxy.inject(faults.LOADING, times=None)
    assert [chat(client).status_code for _ in range(3)] == [503, 503, 503]
    proxy.clear()
    assert chat(client).status_code == 200
    assert [s.fault for s in proxy.seen] == [faults.LOADING] * 3 + [faults.PASS]


def test_stop_ends_open_connections_and_leaves_no_thread(chat_server: LlamaServer) -> None:
    before = set(threading.enumerate())
    outcome: list[BaseException] = []

    def stalled(url: str) -> None:
        with httpx2.Client(base_url=url, timeout=30) as client:
            try:
                chat(client)
            except httpx2.HTTPError as exc:
                outcome.append(exc)

    with FaultProxy(chat_server.url) as proxy:
        proxy.inject(faults.STALL)
        waiter = threading.Thread(target=stalled, args=(proxy.url,))
        waiter.start()
        wait_until(lambda: len(proxy.seen) == 1)
        assert proxy.connections == 1
        started = time.monotonic()
    waiter.join(timeout=5)
    assert time.monotonic() - started < 2
    assert not waiter.is_alive()
    [error] = outcome
    assert isinstance(error, httpx2.RemoteProtocolError)
    assert set(threading.enumerate()) == before


def test_a_bug_in_the_proxy_fails_the_test(chat_server: LlamaServer) -> None:
    """A request line the proxy cannot parse raises in its handler: ``with`` re-raises it."""
    with (  # noqa: PT012
        pytest.raises(ValueError, match="not enough values to unpack"),
        FaultProxy(chat_server.url) as proxy,
        socket.create_connection(("127.0.0.1", proxy.port)) as raw,
    ):
        raw.sendall(b"NONSENSE\r\n\r\n")
        assert raw.recv(100) == b""  # the handler failed and closed the connection
