"""OpenTelemetry spans over mock transports, with the real SDK: names, attributes, events."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx2
import pytest
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai
from opentelemetry.semconv.attributes import error_attributes, http_attributes, server_attributes
from opentelemetry.trace import SpanKind, StatusCode

from selfhosted_core import (
    ChatRequest,
    Config,
    EmbeddingRequest,
    EndpointConnectionError,
    Message,
    Provider,
    ServerError,
)
from selfhosted_core import _telemetry as names
from tests.driver import Driver
from tests.secrets_canary import HEADER, KEY, chat_endpoint, embedding_endpoint
from tests.telemetry import Recorded, attributes, events, installed, text_of

PROMPT = "a prompt nobody may read 4d1f"
ANSWER = "an answer nobody may read 77e0"
USAGE = {
    "prompt_tokens": 3,
    "completion_tokens": 2,
    "total_tokens": 5,
    "prompt_tokens_details": {"cached_tokens": 1},
}
CHAT = json.dumps(
    {
        "id": "c1",
        "object": "chat.completion",
        "model": "tiny-q4",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": ANSWER},
                "finish_reason": "stop",
            }
        ],
        "usage": USAGE,
    }
).encode()
STREAM = (
    b'data: {"choices":[{"index":0,"delta":{"content":"an answer "}}],"model":"tiny-q4"}\n\n'
    b'data: {"choices":[{"index":0,"delta":{"content":"nobody may read 77e0"},'
    b'"finish_reason":"length"}],"model":"tiny-q4"}\n\n'
    b'data: {"choices":[],"model":"tiny-q4","usage":' + json.dumps(USAGE).encode() + b"}\n\n"
    b"data: [DONE]\n\n"
)
EMBEDDING = (
    b'{"object":"list","model":"minilm","data":[{"index":0,"embedding":[0.6,0.8]}],'
    b'"usage":{"prompt_tokens":2,"total_tokens":2}}'
)
Handler = Callable[[httpx2.Request], httpx2.Response]


def answer(request: httpx2.Request) -> httpx2.Response:
    if request.url.path.endswith("/embeddings"):
        return httpx2.Response(200, content=EMBEDDING)
    if json.loads(request.content).get("stream"):
        return httpx2.Response(200, content=STREAM, headers={"content-type": "text/event-stream"})
    return httpx2.Response(200, content=CHAT)


def refused(request: httpx2.Request) -> httpx2.Response:
    raise httpx2.ConnectError("[Errno 111] Connection refused", request=request)


def echo_503(request: httpx2.Request) -> httpx2.Response:
    said = f"busy: {request.headers['authorization']} {request.content.decode()}"
    return httpx2.Response(503, json={"error": {"message": said}})


class Hosts:
    def __init__(self) -> None:
        self.handlers: dict[str, Handler] = {}

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        return self.handlers.get(request.url.host, answer)(request)


@pytest.fixture
def recorded() -> Recorded:
    return installed()


@pytest.fixture
def hosts() -> Hosts:
    return Hosts()


def provider_for(hosts: Hosts, **routing: Any) -> Provider:
    transport = httpx2.MockTransport(hosts.handle)
    config = Config(
        endpoints=[
            chat_endpoint("http://chat-a.test:8080"),
            chat_endpoint("http://chat-b.test:8081", label="chat-b"),
            embedding_endpoint("http://embed.test:9000/v1"),
        ],
        routing={"backoff": 5.0, **routing},
    )
    return Provider(config, transport=transport, async_transport=transport)


@pytest.fixture(params=["sync", "async"])
async def driver(request: pytest.FixtureRequest, hosts: Hosts) -> AsyncIterator[Driver]:
    async with provider_for(hosts) as provider:
        yield Driver(request.param, provider)


def chat(**fields: Any) -> ChatRequest:
    return ChatRequest(model="tiny", messages=[Message(role="user", content=PROMPT)], **fields)


def served_by_a(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        names.PROVIDER: "selfhosted",
        names.SERVER_ADDRESS: "chat-a.test",
        names.SERVER_PORT: 8080,
        names.ENDPOINT: "chat-a",
        names.ATTEMPTS: 1,
        **(extra or {}),
    }


def test_the_attribute_names_are_the_semantic_conventions_own() -> None:
    assert (names.OPERATION, names.PROVIDER) == (
        gen_ai.GEN_AI_OPERATION_NAME,
        gen_ai.GEN_AI_PROVIDER_NAME,
    )
    assert (names.REQUEST_MODEL, names.RESPONSE_MODEL) == (
        gen_ai.GEN_AI_REQUEST_MODEL,
        gen_ai.GEN_AI_RESPONSE_MODEL,
    )
    assert (names.REQUEST_MAX_TOKENS, names.REQUEST_TEMPERATURE) == (
        gen_ai.GEN_AI_REQUEST_MAX_TOKENS,
        gen_ai.GEN_AI_REQUEST_TEMPERATURE,
    )
    assert names.FINISH_REASONS == gen_ai.GEN_AI_RESPONSE_FINISH_REASONS
    assert names.FIRST_CHUNK == gen_ai.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK
    assert (names.INPUT_TOKENS, names.OUTPUT_TOKENS, names.CACHED_INPUT_TOKENS) == (
        gen_ai.GEN_AI_USAGE_INPUT_TOKENS,
        gen_ai.GEN_AI_USAGE_OUTPUT_TOKENS,
        gen_ai.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
    )
    assert (names.INPUT_MESSAGES, names.OUTPUT_MESSAGES) == (
        gen_ai.GEN_AI_INPUT_MESSAGES,
        gen_ai.GEN_AI_OUTPUT_MESSAGES,
    )
    assert (names.SERVER_ADDRESS, names.SERVER_PORT) == (
        server_attributes.SERVER_ADDRESS,
        server_attributes.SERVER_PORT,
    )
    assert names.ERROR_TYPE == error_attributes.ERROR_TYPE
    assert names.STATUS_CODE == http_attributes.HTTP_RESPONSE_STATUS_CODE
    assert gen_ai.GenAiOperationNameValues.CHAT.value == "chat"
    assert gen_ai.GenAiOperationNameValues.EMBEDDINGS.value == "embeddings"


async def test_a_chat_is_one_client_span_with_the_conventions_attributes(
    driver: Driver, recorded: Recorded
) -> None:
    await driver.chat(chat(endpoint="chat-a", max_tokens=5, temperature=0.5))
    [span] = recorded.finished()
    assert (span.name, span.kind, span.status.status_code) == (
        "chat tiny",
        SpanKind.CLIENT,
        StatusCode.UNSET,
    )
    assert attributes(span) == served_by_a(
        {
            names.OPERATION: "chat",
            names.REQUEST_MODEL: "tiny",
            names.REQUEST_MAX_TOKENS: 5,
            names.REQUEST_TEMPERATURE: 0.5,
            names.RESPONSE_MODEL: "tiny-q4",
            names.FINISH_REASONS: ("stop",),
            names.INPUT_TOKENS: 3,
            names.OUTPUT_TOKENS: 2,
            names.CACHED_INPUT_TOKENS: 1,
            names.SERVER: "generic",
        }
    )
    [(name, event)] = events(span)
    assert name == "selfhosted.attempt"
    assert event.pop(names.ATTEMPT_SECONDS) > 0
    assert event == {names.ENDPOINT: "chat-a", names.ATTEMPT_NUMBER: 1, names.ATTEMPT_OUTCOME: "ok"}


async def test_a_stream_span_has_the_time_to_its_first_chunk(
    driver: Driver, recorded: Recorded
) -> None:
    _, final = await driver.stream(chat(endpoint="chat-a"))
    assert final.content == ANSWER
    [span] = recorded.finished()
    found = attributes(span)
    first = found.pop(names.FIRST_CHUNK)
    assert 0 < first < (span.end_time - span.start_time) / 1e9  # type: ignore[operator]
    assert found == served_by_a(
        {
            names.OPERATION: "chat",
            names.REQUEST_MODEL: "tiny",
            names.RESPONSE_MODEL: "tiny-q4",
            names.FINISH_REASONS: ("length",),
            names.INPUT_TOKENS: 3,
            names.OUTPUT_TOKENS: 2,
            names.CACHED_INPUT_TOKENS: 1,
            names.SERVER: "generic",
        }
    )


async def test_embeddings_are_a_span_of_their_own_operation(
    driver: Driver, recorded: Recorded
) -> None:
    await driver.embed(EmbeddingRequest(model="minilm", input=["a"]))
    [span] = recorded.finished()
    assert span.name == "embeddings minilm"
    assert attributes(span) == {
        names.OPERATION: "embeddings",
        names.PROVIDER: "selfhosted",
        names.REQUEST_MODEL: "minilm",
        names.RESPONSE_MODEL: "minilm",
        names.INPUT_TOKENS: 2,
        names.SERVER_ADDRESS: "embed.test",
        names.SERVER_PORT: 9000,
        names.ENDPOINT: "embed-a",
        names.ATTEMPTS: 1,
    }


async def test_a_failover_shows_each_attempt_as_an_event(
    driver: Driver, hosts: Hosts, recorded: Recorded
) -> None:
    hosts.handlers["chat-a.test"] = echo_503
    answer_ = await driver.chat(chat(endpoint="chat-a"))
    assert answer_.endpoint == "chat-b"
    [span] = recorded.finished()
    found = attributes(span)
    assert (found[names.ENDPOINT], found[names.SERVER_PORT], found[names.ATTEMPTS]) == (
        "chat-b",
        8081,
        2,
    )
    outcomes = [
        (
            e[names.ENDPOINT],
            e[names.ATTEMPT_NUMBER],
            e[names.ATTEMPT_OUTCOME],
            e.get(names.STATUS_CODE),
        )
        for _, e in events(span)
    ]
    assert outcomes == [("chat-a", 1, "ServerError", 503), ("chat-b", 2, "ok", None)]


async def test_a_failed_call_has_the_error_type_and_no_error_text(
    driver: Driver, hosts: Hosts, recorded: Recorded
) -> None:
    hosts.handlers["chat-a.test"] = echo_503
    hosts.handlers["chat-b.test"] = echo_503
    with pytest.raises(ServerError):
        await driver.chat(chat(max_attempts=2))
    [span] = recorded.finished()
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description is None
    assert attributes(span)[names.ERROR_TYPE] == "ServerError"
    assert [e[names.ATTEMPT_OUTCOME] for _, e in events(span)] == ["ServerError", "ServerError"]
    shown = text_of(span)
    for secret in (KEY, HEADER, PROMPT, "busy"):
        assert secret not in shown


async def test_a_refused_connection_is_an_attempt_without_a_status(
    driver: Driver, hosts: Hosts, recorded: Recorded
) -> None:
    hosts.handlers["chat-a.test"] = refused
    hosts.handlers["chat-b.test"] = refused
    with pytest.raises(EndpointConnectionError):
        await driver.chat(chat(max_attempts=2))
    [span] = recorded.finished()
    assert [e.get(names.STATUS_CODE) for _, e in events(span)] == [None, None]
    assert attributes(span)[names.ERROR_TYPE] == "EndpointConnectionError"


async def test_message_content_is_recorded_only_when_opted_in(
    driver: Driver, recorded: Recorded, monkeypatch: pytest.MonkeyPatch
) -> None:
    await driver.chat(chat())
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    await driver.chat(chat())
    hidden, shown = recorded.finished()
    for text in (PROMPT, ANSWER, KEY, HEADER):
        assert text not in text_of(hidden)
    found = attributes(shown)
    assert json.loads(found[names.INPUT_MESSAGES]) == [
        {"role": "user", "parts": [{"type": "text", "content": PROMPT}]}
    ]
    assert json.loads(found[names.OUTPUT_MESSAGES]) == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": ANSWER}],
            "finish_reason": "stop",
        }
    ]
    assert KEY not in text_of(shown)
    assert HEADER not in text_of(shown)


async def test_an_affinity_request_says_whether_it_got_its_first_choice(
    hosts: Hosts, recorded: Recorded
) -> None:
    with provider_for(hosts, strategy="affinity") as provider:
        provider.chat(chat(affinity="session-1"))
    [span] = recorded.finished()
    assert attributes(span)[names.AFFINITY] == "hit"


def test_an_affinity_request_past_its_replicas_bound_says_it_spilled(
    hosts: Hosts, recorded: Recorded
) -> None:
    provider = provider_for(hosts, strategy="affinity", load_factor=1.0)
    with provider, provider.stream(chat(affinity="session-1")) as held:
        next(iter(held))
        provider.chat(chat(affinity="session-1"))
    outcomes = sorted(attributes(span)[names.AFFINITY] for span in recorded.finished())
    assert outcomes == ["hit", "spill"]


def test_a_stream_closed_early_ends_its_span_without_an_error(
    hosts: Hosts, recorded: Recorded
) -> None:
    with provider_for(hosts) as provider, provider.stream(chat()) as stream:
        next(iter(stream))
    [span] = recorded.finished()
    assert span.status.status_code is StatusCode.UNSET
    assert names.ERROR_TYPE not in attributes(span)
    assert [e[names.ATTEMPT_OUTCOME] for _, e in events(span)] == ["abandoned"]


async def test_an_async_stream_closed_early_ends_its_span_without_an_error(
    hosts: Hosts, recorded: Recorded
) -> None:
    async with provider_for(hosts) as provider, provider.astream(chat()) as stream:
        async for _ in stream:
            break
    [span] = recorded.finished()
    assert span.status.status_code is StatusCode.UNSET
    assert names.ERROR_TYPE not in attributes(span)
    assert [e[names.ATTEMPT_OUTCOME] for _, e in events(span)] == ["abandoned"]


def test_a_stream_never_read_opens_no_span(hosts: Hosts, recorded: Recorded) -> None:
    with provider_for(hosts) as provider, provider.stream(chat()):
        pass
    assert recorded.finished() == []


@pytest.mark.parametrize(
    ("setup", "imported"),
    [
        ("", False),
        ("import opentelemetry.trace, opentelemetry.metrics", True),
    ],
)
def test_without_a_provider_set_nothing_is_traced_or_imported(setup: str, imported: bool) -> None:
    script = f"""
import sys
{setup}
import httpx2
from selfhosted_core import ChatRequest, Config, Message, Provider, _telemetry
reply = httpx2.Response(200, content={CHAT!r})
transport = httpx2.MockTransport(lambda request: reply)
config = Config(endpoints=[{{"url": "http://a.test:1", "id": "tiny"}}])
with Provider(config, transport=transport) as provider:
    provider.chat(ChatRequest(model="tiny", messages=[Message(role="user", content="Hi")]))
assert _telemetry.kit() is None
print("opentelemetry" in sys.modules)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == str(imported)
