"""Token counting through each server's own tokenizer API, sync and async, on a fake server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2
import pytest

from selfhosted_core import (
    AuthenticationError,
    Config,
    EndpointConnectionError,
    EndpointTimeoutError,
    InvalidRequestError,
    Message,
    NotFoundError,
    NotSupportedError,
    Provider,
    ResponseError,
    SelfHostedError,
    ServerError,
    UnknownModelError,
)
from tests.core import payloads
from tests.core.harness import FakeServer, user
from tests.driver import Driver

ENDPOINT = {"url": "http://gpu-1:8080/v1", "id": "qwen3", "served_model": "Qwen/Qwen3-8B"}
HISTORY = [
    Message(role="user", content="2 + 2?"),
    Message(role="assistant", content="4", reasoning="Two and two make four."),
    Message(role="user", content="And 3 + 3?"),
]


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@asynccontextmanager
async def counting(mode: str, fake: FakeServer, **endpoint: Any) -> AsyncIterator[Driver]:
    config = Config(endpoints=[{**ENDPOINT, **endpoint}])
    transport = fake.transport
    async with Provider(config, transport=transport, async_transport=transport) as provider:
        yield Driver(mode, provider)


def sent(server: FakeServer) -> list[tuple[str, Any]]:
    """Each request as (URL, JSON body or None)."""
    return [
        (str(request.url), json.loads(request.content) if request.content else None)
        for request in server.requests
    ]


async def test_llama_text_is_tokenized_at_the_server_root(mode: str, server: FakeServer) -> None:
    server.on("POST", "/tokenize", payloads.LLAMA_TOKENIZE)
    async with counting(mode, server, server="llama.cpp") as driver:
        count = await driver.count_tokens("qwen3", text="Hello world!")
    assert count == len(json.loads(payloads.LLAMA_TOKENIZE)["tokens"])
    # No BOS for text: add_special keeps its documented default, false (tools/server/README.md).
    assert sent(server) == [("http://gpu-1:8080/tokenize", {"content": "Hello world!"})]


async def test_llama_messages_are_templated_then_tokenized_with_special_tokens(
    mode: str, server: FakeServer
) -> None:
    server.on("POST", "/apply-template", payloads.LLAMA_APPLY_TEMPLATE)
    server.on("POST", "/tokenize", payloads.LLAMA_TOKENIZE)
    async with counting(mode, server, server="llama.cpp") as driver:
        count = await driver.count_tokens("qwen3", messages=user())
    assert count == len(json.loads(payloads.LLAMA_TOKENIZE)["tokens"])
    prompt = json.loads(payloads.LLAMA_APPLY_TEMPLATE)["prompt"]
    # add_special as the server's own chat path tokenizes the prompt (server-context.cpp
    # handle_completions_impl: tokenize_input_prompts(..., add_special=true, parse_special=true)).
    assert sent(server) == [
        ("http://gpu-1:8080/apply-template", {"messages": [{"role": "user", "content": "Hi"}]}),
        ("http://gpu-1:8080/tokenize", {"content": prompt, "add_special": True}),
    ]


async def test_vllm_text_and_messages(mode: str, server: FakeServer) -> None:
    server.on("POST", "/tokenize", payloads.VLLM_TOKENIZE)
    async with counting(mode, server, server="vllm") as driver:
        assert await driver.count_tokens("qwen3", text="Hello") == 4
        assert await driver.count_tokens("qwen3", messages=user()) == 4
    # vllm/entrypoints/serve/tokenize/protocol.py: TokenizeCompletionRequest adds special tokens
    # unless told not to; TokenizeChatRequest's defaults are the chat request's.
    assert sent(server) == [
        (
            "http://gpu-1:8080/tokenize",
            {"model": "Qwen/Qwen3-8B", "prompt": "Hello", "add_special_tokens": False},
        ),
        (
            "http://gpu-1:8080/tokenize",
            {"model": "Qwen/Qwen3-8B", "messages": [{"role": "user", "content": "Hi"}]},
        ),
    ]


@pytest.mark.parametrize(
    ("server_kind", "field", "path", "reply"),
    [
        ("llama.cpp", "reasoning_content", "/apply-template", payloads.LLAMA_TOKENIZE),
        ("vllm", "reasoning", "/tokenize", payloads.VLLM_TOKENIZE),
    ],
)
async def test_messages_are_counted_as_the_chat_sends_them(
    mode: str, server: FakeServer, server_kind: str, field: str, path: str, reply: bytes
) -> None:
    server.on("POST", "/apply-template", payloads.LLAMA_APPLY_TEMPLATE)
    server.on("POST", "/tokenize", reply)
    capabilities = ["chat", "reasoning"]
    async with counting(mode, server, server=server_kind, capabilities=capabilities) as driver:
        await driver.count_tokens("qwen3", messages=HISTORY)
    (first_url, first_body), *_ = sent(server)
    assert first_url == f"http://gpu-1:8080{path}"
    assert first_body["messages"] == [
        {"role": "user", "content": "2 + 2?"},
        {"role": "assistant", "content": "4", field: "Two and two make four."},
        {"role": "user", "content": "And 3 + 3?"},
    ]


async def test_sglang_counts_text_but_not_messages(mode: str, server: FakeServer) -> None:
    server.on("POST", "/tokenize", payloads.SGLANG_TOKENIZE)
    async with counting(mode, server, server="sglang") as driver:
        assert await driver.count_tokens("qwen3", text="Hello") == 3
        with pytest.raises(NotSupportedError, match="takes text only") as caught:
            await driver.count_tokens("qwen3", messages=user())
    assert caught.value.endpoint == "qwen3@gpu-1:8080"
    assert sent(server) == [
        (
            "http://gpu-1:8080/tokenize",
            {"model": "Qwen/Qwen3-8B", "prompt": "Hello", "add_special_tokens": False},
        )
    ]


@pytest.mark.parametrize(
    ("kind", "says"),
    [
        ("ollama", "ollama servers offer no tokenizer API"),
        ("lmstudio", "lmstudio servers offer no tokenizer API"),
        ("localai", "localai servers offer no tokenizer API"),
        ("tgi", "tgi servers offer no tokenizer API"),
        ("generic", "token counting needs the server kind, which is unknown"),
    ],
)
async def test_servers_without_a_tokenizer_api_are_refused_before_any_io(
    mode: str, server: FakeServer, kind: str, says: str
) -> None:
    async with counting(mode, server, server=kind, label="box") as driver:
        with pytest.raises(NotSupportedError) as caught:
            await driver.count_tokens("qwen3", text="Hello")
    error = caught.value
    assert (error.model, error.endpoint) == ("qwen3", "box")
    assert says in error.message
    assert "llama.cpp, vllm, sglang" in error.message
    assert server.requests == []


async def test_unknown_kind_is_health_checked_first_and_adopted(
    mode: str, server: FakeServer
) -> None:
    server.on("GET", "/health", {"status": "ok"})
    server.on("GET", "/v1/models", payloads.LLAMA_MODELS)
    server.on("GET", "/props", payloads.LLAMA_PROPS)
    server.on("POST", "/tokenize", payloads.LLAMA_TOKENIZE)
    async with counting(mode, server, id="tiny", served_model=None) as driver:
        assert await driver.count_tokens("tiny", text="Hi") == 3
        assert await driver.count_tokens("tiny", text="Hi") == 3
    paths = [request.url.path for request in server.requests]
    assert paths == ["/health", "/v1/models", "/props", "/tokenize", "/tokenize"]


async def test_kind_still_unknown_after_the_health_check(mode: str, server: FakeServer) -> None:
    server.on("GET", "/health", {"status": "ok"})
    server.on("GET", "/v1/models", {"data": [{"id": "Qwen/Qwen3-8B", "owned_by": "someone"}]})
    async with counting(mode, server) as driver:
        with pytest.raises(NotSupportedError, match="its health check found it ok; declare"):
            await driver.count_tokens("qwen3", text="Hi")


async def test_endpoint_down_while_its_kind_is_unknown(mode: str, server: FakeServer) -> None:
    def refused(request: httpx2.Request) -> tuple[int, bytes, dict[str, str]]:
        raise httpx2.ConnectError("Connection refused")

    server.on("GET", "/health", refused)
    async with counting(mode, server) as driver:
        with pytest.raises(NotSupportedError, match=r"found it down \(.*Connection refused"):
            await driver.count_tokens("qwen3", text="Hi")


@pytest.mark.parametrize(
    ("kind", "path", "body"),
    [
        ("llama.cpp", "/tokenize", b'{"tokens":"123"}'),
        ("llama.cpp", "/tokenize", b"<html>proxy error</html>"),
        ("llama.cpp", "/apply-template", b'{"messages":[]}'),
        ("vllm", "/tokenize", b'{"tokens":[1,2]}'),
        ("vllm", "/tokenize", b'{"count":-1,"tokens":[]}'),
    ],
)
async def test_malformed_replies_are_response_errors(
    mode: str, server: FakeServer, kind: str, path: str, body: bytes
) -> None:
    server.on("POST", "/apply-template", payloads.LLAMA_APPLY_TEMPLATE)
    server.on("POST", path, body)
    async with counting(mode, server, server=kind) as driver:
        with pytest.raises(ResponseError, match=f"malformed {path} response") as caught:
            await driver.count_tokens("qwen3", messages=user())
    assert (caught.value.model, caught.value.endpoint) == ("qwen3", "qwen3@gpu-1:8080")


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (401, payloads.LLAMA_INVALID_KEY, AuthenticationError),
        (
            404,
            b'{"error":{"code":404,"message":"File Not Found","type":"not_found_error"}}',
            NotFoundError,
        ),
        (503, payloads.LLAMA_LOADING, ServerError),
    ],
)
async def test_error_statuses_are_typed(
    mode: str, server: FakeServer, status: int, body: bytes, error: type[Exception]
) -> None:
    server.on("POST", "/apply-template", body, status=status)
    async with counting(mode, server, server="llama.cpp") as driver:
        with pytest.raises(error):
            await driver.count_tokens("qwen3", messages=user())
    # A loading server cannot have counted: the engine resends within the budget (3 sends).
    assert len(server.requests) == (3 if status == 503 else 1)


@pytest.mark.parametrize(
    ("raised", "error"),
    [
        (httpx2.ConnectError("Connection refused"), EndpointConnectionError),
        (httpx2.ReadTimeout("timed out"), EndpointTimeoutError),
    ],
)
async def test_transport_errors_are_mapped(
    mode: str, server: FakeServer, raised: Exception, error: type[SelfHostedError]
) -> None:
    def failing(request: httpx2.Request) -> tuple[int, bytes, dict[str, str]]:
        raise raised

    server.on("POST", "/tokenize", failing)
    async with counting(mode, server, server="vllm") as driver:
        with pytest.raises(error) as caught:
            await driver.count_tokens("qwen3", text="Hi")
    assert caught.value.retryable


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "exactly one of text or messages"),
        ({"text": "Hi", "messages": user()}, "exactly one of text or messages"),
        ({"messages": []}, "at least one message"),
        ({"text": 5}, "text must be a string, not int"),
        ({"messages": "Hi"}, r"messages must be a list, not str 'Hi'"),
        ({"messages": [Message(role="user", content=5)]}, r"messages\[0\].content must be"),  # type: ignore[arg-type]
    ],
)
async def test_requests_no_server_could_answer_are_refused_before_any_io(
    mode: str, server: FakeServer, fields: dict[str, Any], message: str
) -> None:
    async with counting(mode, server, server="vllm") as driver:
        with pytest.raises(InvalidRequestError, match=message):
            await driver.count_tokens("qwen3", **fields)
        with pytest.raises(UnknownModelError):
            await driver.count_tokens("nope", text="Hi")
        with pytest.raises(InvalidRequestError, match="model must be a model id"):
            await driver.count_tokens(["qwen3"], text="Hi")  # type: ignore[arg-type]
    assert server.requests == []


async def test_any_capability_will_do(mode: str, server: FakeServer) -> None:
    server.on("POST", "/tokenize", payloads.LLAMA_TOKENIZE)
    embedder = {"server": "llama.cpp", "capabilities": ["embedding"], "dimension": 384}
    async with counting(mode, server, **embedder) as driver:
        assert await driver.count_tokens("qwen3", text="Hi") == 3
