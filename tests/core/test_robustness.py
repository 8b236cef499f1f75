"""Regressions from review: hostile input never escapes as a raw exception or leaks a key."""

from __future__ import annotations

import asyncio
import gc
import pickle
import weakref
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx2
import pytest

from selfhosted_core import (
    APIStatusError,
    ChatRequest,
    Config,
    ConfigurationError,
    EndpointConnectionError,
    InvalidRequestError,
    ModelEndpoint,
    Provider,
    UnknownModelError,
)
from selfhosted_core._status import error_from_status
from tests.core import payloads
from tests.core.harness import ENDPOINTS, FakeServer, user
from tests.driver import Driver

CHAT = "/v1/chat/completions"


def chat() -> ChatRequest:
    return ChatRequest(model="tiny", messages=user())


def test_key_read_from_a_file_loses_its_newline() -> None:
    config = Config.from_env(
        {
            "SELFHOSTED_BASE_URL": "http://h:1",
            "SELFHOSTED_MODEL": "m",
            "SELFHOSTED_API_KEY": "sk-1\n",
        }
    )
    key = config.endpoints[0].api_key
    assert key is not None
    assert key.get_secret_value() == "sk-1"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("api_key", "sk-in\r\nside", "api_key: value contains control or non-ASCII characters"),
        (
            "headers",
            {"x-token": "tök-secret"},
            "headers: header 'x-token' contains control or non-ASCII characters",
        ),
        ("headers", {"bad name": "v"}, "headers: invalid header name 'bad name'"),
    ],
)
def test_unsendable_secrets_are_refused_without_repeating_them(
    field: str, value: object, message: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Config(endpoints=[{"url": "http://h:1", "id": "m", field: value}])
    assert (
        caught.value.problems[0] == f"endpoints[0].{message}" or message in caught.value.problems[0]
    )
    text = f"{caught.value!s}{caught.value!r}"
    assert "secret" not in text
    assert "in\r\nside" not in text
    # Neither chained nor kept as context: pydantic's error quotes the input.
    assert (caught.value.__cause__, caught.value.__context__) == (None, None)


@pytest.mark.parametrize(
    ("endpoint", "problem"),
    [
        (
            {"url": "http://h:abc", "id": "m"},
            "endpoints[0].url: has an invalid port: 'http://h:abc'",
        ),
        (
            {"url": "http://h:1", "id": "m", "capabilities": None},
            "endpoints[0].capabilities: must be a list of capabilities",
        ),
        (
            {"url": "http://h:1", "id": "m", "timeout": float("nan")},
            "endpoints[0].timeout: must be a finite number of seconds > 0",
        ),
        (
            {"url": "http://h:1", "id": "m", "capabilities": ["embedding"], "dimension": True},
            "endpoints[0].dimension: must be an integer",
        ),
    ],
)
def test_odd_values_are_configuration_errors(endpoint: dict[str, object], problem: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Config(endpoints=[endpoint])
    assert caught.value.problems == [problem]


def test_every_construction_path_raises_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="url: must be an http"):
        ModelEndpoint(url="nope", id="m")
    with pytest.raises(ConfigurationError, match="at least one endpoint"):
        Config.model_validate({"endpoints": []})
    with pytest.raises(ConfigurationError, match=r"endpoints\[0\]\.id"):
        Config.model_validate_json('{"endpoints": [{"url": "http://h:1"}]}')


def test_every_missing_variable_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("endpoints:\n  - url: ${A}\n    id: ${B}\n    api_key: ${C}\n")
    with pytest.raises(ConfigurationError) as caught:
        Config.load(path, environ={})
    assert caught.value.problems == [
        f"endpoints[0].{field}: environment variable {name} is not set"
        for field, name in (("url", "A"), ("id", "B"), ("api_key", "C"))
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\xff\xfe endpoints", "not UTF-8 text"),
        (b"1: [x]\n", "extra inputs are not permitted|Extra inputs"),
    ],
)
def test_unreadable_or_odd_files(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_bytes(content)
    with pytest.raises(ConfigurationError, match=message):
        Config.load(path)


def test_capability_list_from_env_ignores_blanks() -> None:
    config = Config.from_env(
        {
            "SELFHOSTED_BASE_URL": "http://h:1",
            "SELFHOSTED_MODEL": "m",
            "SELFHOSTED_CAPABILITIES": "chat, ",
        }
    )
    assert [c.value for c in config.endpoints[0].capabilities] == ["chat"]


@pytest.mark.parametrize(
    "error",
    [
        error_from_status(429, b"busy", retry_after="2", model="m", endpoint="e"),
        error_from_status(
            400, payloads.LLAMA_CONTEXT_OVERFLOW, retry_after=None, model="m", endpoint="e"
        ),
        UnknownModelError("x", known=["a"]),
        ConfigurationError(["a: b", "c: d"]),
    ],
)
def test_errors_survive_pickling(error: Exception) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert copy.__dict__ == error.__dict__


async def test_unserialisable_request_is_refused_before_io(
    driver: Driver, server: FakeServer
) -> None:
    request = ChatRequest(model="tiny", messages=user(), extra_body={"when": object()})
    with pytest.raises(InvalidRequestError, match="not JSON-serialisable"):
        await driver.chat(request)
    assert server.requests == []


class _BreaksMidBody(httpx2.SyncByteStream, httpx2.AsyncByteStream):
    """A body that sends its first bytes and then loses the connection."""

    def __init__(self, first: bytes) -> None:
        self.first = first

    def __iter__(self) -> Iterator[bytes]:
        yield self.first
        raise httpx2.RemoteProtocolError(
            "peer closed connection without sending complete message body"
        )

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.first
        raise httpx2.RemoteProtocolError(
            "peer closed connection without sending complete message body"
        )


def breaking_server(
    first: bytes, attempts: list[httpx2.Request], content_type: str
) -> httpx2.MockTransport:
    def handle(request: httpx2.Request) -> httpx2.Response:
        attempts.append(request)
        return httpx2.Response(
            200, headers={"content-type": content_type}, stream=_BreaksMidBody(first)
        )

    return httpx2.MockTransport(handle)


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_a_body_broken_midway_is_not_sent_again(mode: str) -> None:
    attempts: list[httpx2.Request] = []
    transport = breaking_server(b'{"id": "x", "choi', attempts, "application/json")
    async with Provider(
        Config(endpoints=ENDPOINTS), transport=transport, async_transport=transport
    ) as provider:
        with pytest.raises(EndpointConnectionError):
            await Driver(mode, provider).chat(chat())
    assert len(attempts) == 1


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_a_failed_drain_after_done_keeps_the_answer(mode: str) -> None:
    attempts: list[httpx2.Request] = []
    transport = breaking_server(payloads.LLAMA_STREAM, attempts, "text/event-stream")
    async with Provider(
        Config(endpoints=ENDPOINTS), transport=transport, async_transport=transport
    ) as provider:
        _, final = await Driver(mode, provider).stream(chat())
    assert final.content == "Hello there"


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_a_broken_stream_before_done_keeps_the_partial(mode: str) -> None:
    attempts: list[httpx2.Request] = []
    first = b'data: {"choices":[{"index":0,"delta":{"content":"Half"}}]}\n\n'
    transport = breaking_server(first, attempts, "text/event-stream")
    async with Provider(
        Config(endpoints=ENDPOINTS), transport=transport, async_transport=transport
    ) as provider:
        with pytest.raises(EndpointConnectionError) as caught:
            await Driver(mode, provider).stream(chat())
    assert caught.value.partial is not None
    assert caught.value.partial.content == "Half"


async def test_a_json_reply_to_a_stream_request_is_one_chunk(
    driver: Driver, server: FakeServer
) -> None:
    server.on("POST", CHAT, payloads.VLLM_REASONING, headers={"content-type": "application/json"})
    chunks, final = await driver.stream(chat())
    assert [(c.content, c.reasoning, c.finish_reason) for c in chunks] == [
        ("Paris.", "The capital of France.", "stop")
    ]
    assert final.content == "Paris."


async def test_final_response_re_raises_the_error_that_ended_the_stream(server: FakeServer) -> None:
    server.stream(CHAT, payloads.LLAMA_STREAM_ERROR_EVENT)
    with Provider(Config(endpoints=ENDPOINTS), transport=server.transport) as provider:
        stream = provider.stream(chat())
        with pytest.raises(APIStatusError) as first:
            list(stream)
        with pytest.raises(APIStatusError) as again:
            stream.final_response()
    assert again.value is first.value


async def test_absurd_created_is_dropped(driver: Driver, server: FakeServer) -> None:
    server.on(
        "POST", CHAT, b'{"created": 1e400, "choices": [{"index": 0, "message": {"content": "ok"}}]}'
    )
    answer = await driver.chat(chat())
    assert (answer.content, answer.created) == ("ok", None)


async def test_a_new_id_without_index_or_name_is_a_new_call(
    driver: Driver, server: FakeServer
) -> None:
    server.stream(
        CHAT,
        b'data: {"choices":[{"index":0,"delta":{"tool_calls":[{"id":"a","function":{"name":"f","arguments":"{}"}}]}}]}\n\n'
        b'data: {"choices":[{"index":0,"delta":{"tool_calls":[{"id":"b","function":{"arguments":"{\\"x\\":1}"}}]}}]}\n\n'
        b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}\n\ndata: [DONE]\n\n',
    )
    _, final = await driver.stream(chat())
    assert [c.id for c in final.tool_calls] == ["a"]
    assert [(c.id, c.error) for c in final.invalid_tool_calls] == [("b", "missing name")]


def test_finished_event_loops_are_not_kept_alive() -> None:
    server = FakeServer()
    server.on("POST", CHAT, payloads.VLLM_REASONING)
    provider = Provider(Config(endpoints=ENDPOINTS), async_transport=server.transport)
    loops: list[weakref.ref[asyncio.AbstractEventLoop]] = []

    async def ask() -> None:
        loops.append(weakref.ref(asyncio.get_running_loop()))
        await provider.achat(chat())

    for _ in range(4):
        asyncio.run(ask())
    gc.collect()
    assert [ref() is None for ref in loops[:-1]] == [True, True, True]
