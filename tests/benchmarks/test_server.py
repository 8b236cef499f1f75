from __future__ import annotations

import json
from collections.abc import Iterator

import httpx2
import pytest

from benchmarks import payloads
from benchmarks.run import Server


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with Server() as server:
        yield server.base_url


@pytest.fixture
def client() -> Iterator[httpx2.Client]:
    with httpx2.Client() as client:
        yield client


def test_chat_is_the_canned_completion(base_url: str, client: httpx2.Client) -> None:
    reply = client.post(f"{base_url}/chat/completions", json={"model": "bench", "messages": []})
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "application/json"
    body = reply.json()
    assert body["choices"][0]["message"]["content"] == payloads.CHAT_TEXT
    assert body["usage"] == payloads.USAGE


def test_stream_is_server_sent_events_of_every_delta(base_url: str, client: httpx2.Client) -> None:
    request = {"model": "bench", "messages": [], "stream": True}
    with client.stream("POST", f"{base_url}/chat/completions", json=request) as reply:
        assert reply.headers["content-type"] == "text/event-stream"
        lines = [line for line in reply.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line.removeprefix("data: ")) for line in lines[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == payloads.STREAM_TEXT
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["usage"] == payloads.USAGE


def test_embeddings_are_the_canned_vectors(base_url: str, client: httpx2.Client) -> None:
    request = {"model": "bench", "input": payloads.EMBEDDING_INPUTS}
    body = client.post(f"{base_url}/embeddings", json=request).json()
    assert [row["index"] for row in body["data"]] == list(range(payloads.EMBEDDING_ROWS))
    assert [row["embedding"] for row in body["data"]] == payloads.EMBEDDING_ROWS_DATA


def test_keep_alive_serves_many_requests_on_one_connection(
    base_url: str, client: httpx2.Client
) -> None:
    for _ in range(50):
        assert client.get(f"{base_url}/models").json()["data"][0]["id"] == "bench"
    assert client.get(f"{base_url}/nowhere").status_code == 404


def test_server_cpu_is_read_from_the_kernel() -> None:
    with Server() as server, httpx2.Client() as client:
        before = server.cpu()
        for _ in range(20):
            client.post(f"{server.base_url}/embeddings", json={"input": ["x"]})
        assert server.cpu() > before
