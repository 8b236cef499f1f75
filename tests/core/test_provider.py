from __future__ import annotations

import asyncio
import json
import logging
import re

import httpx2
import pytest

from selfhosted_core import (
    APIStatusError,
    AuthenticationError,
    CapabilityError,
    ChatRequest,
    Config,
    ContextWindowExceededError,
    EmbeddingRequest,
    EndpointConnectionError,
    EndpointTimeoutError,
    HealthStatus,
    ImagePart,
    InvalidRequestError,
    Message,
    NotSupportedError,
    Provider,
    ResponseError,
    ResponseFormat,
    ServerError,
    ServerKind,
    Tool,
    UnknownModelError,
)
from tests.core import payloads
from tests.core.harness import ENDPOINTS, FakeServer, user
from tests.driver import Driver

CHAT = "/chat/completions"
EMBED = "/v1/embeddings"
TOOLS = [Tool(name="read_file"), Tool(name="a"), Tool(name="b")]


def chat(**fields: object) -> ChatRequest:
    fields.setdefault("messages", user())
    return ChatRequest(model="tiny", **fields)  # type: ignore[arg-type]


def sse(server: FakeServer, body: bytes) -> None:
    server.stream(f"/v1{CHAT}", body)


async def test_chat_repairs_object_arguments_and_reports_usage(
    driver: Driver, server: FakeServer
) -> None:
    server.on("POST", f"/v1{CHAT}", payloads.LLAMA_OBJECT_ARGUMENTS)
    answer = await driver.chat(chat(tools=TOOLS))
    (call,) = answer.tool_calls
    assert (call.id, call.name, call.args) == ("call_1", "read_file", {"path": "/etc/hosts"})
    assert call.arguments == '{"path":"/etc/hosts"}'
    assert answer.content is None
    assert answer.finish_reason == "tool_calls"
    assert answer.usage is not None
    assert (answer.usage.prompt_tokens, answer.usage.cached_prompt_tokens) == (40, 32)
    assert answer.usage.billed_tokens == 104.0
    assert (answer.endpoint, answer.model) == ("chat-a", "qwen3")


async def test_chat_replaces_empty_ids(driver: Driver, server: FakeServer) -> None:
    server.on("POST", f"/v1{CHAT}", payloads.LLAMA_EMPTY_IDS)
    answer = await driver.chat(chat(tools=TOOLS))
    ids = [call.id for call in answer.tool_calls]
    assert [call.name for call in answer.tool_calls] == ["a", "b"]
    assert all(re.fullmatch(r"[A-Za-z0-9]{9}", tool_id) for tool_id in ids)
    assert len(set(ids)) == 2


async def test_chat_reasoning_field_and_usage_details(driver: Driver, server: FakeServer) -> None:
    server.on("POST", f"/v1{CHAT}", payloads.VLLM_REASONING)
    answer = await driver.chat(chat())
    assert (answer.content, answer.reasoning) == ("Paris.", "The capital of France.")
    assert answer.usage is not None
    assert answer.usage.reasoning_tokens == 5


async def test_stream_llama_usage_after_finish_and_keepalives(
    driver: Driver, server: FakeServer
) -> None:
    sse(server, payloads.LLAMA_STREAM)
    chunks, final = await driver.stream(chat())
    assert "".join(chunk.content or "" for chunk in chunks) == "Hello there"
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == 11
    assert (final.content, final.finish_reason, final.system_fingerprint) == (
        "Hello there",
        "stop",
        "b6000-abc",
    )
    assert final.usage == chunks[-1].usage
    assert final.timings is not None
    assert final.timings["predicted_n"] == 2
    sent = server.payloads()[-1]
    assert sent["stream_options"] == {"include_usage": True}
    assert server.requests[-1].headers["accept"] == "text/event-stream"


async def test_stream_without_space_after_data(driver: Driver, server: FakeServer) -> None:
    sse(server, payloads.TGI_STREAM)
    _, final = await driver.stream(chat())
    assert (final.content, final.finish_reason) == ("I am", "stop")


async def test_stream_tool_calls_without_index(driver: Driver, server: FakeServer) -> None:
    sse(server, payloads.OLLAMA_STREAM_NO_INDEX)
    chunks, final = await driver.stream(chat(tools=[Tool(name="get_current_weather")]))
    pieces = [piece for chunk in chunks for piece in chunk.tool_calls]
    assert [(p.index, p.id, p.name) for p in pieces] == [
        (0, "call_a", "get_current_weather"),
        (1, "call_b", "get_current_weather"),
    ]
    assert [call.args for call in final.tool_calls] == [
        {"location": "Boston, MA"},
        {"location": "Paris"},
    ]
    assert final.finish_reason == "tool_calls"
    assert final.content is None


async def test_stream_tool_calls_all_index_zero_with_distinct_ids(
    driver: Driver, server: FakeServer
) -> None:
    sse(server, payloads.OLLAMA_STREAM_INDEX_ZERO)
    chunks, final = await driver.stream(chat(tools=[Tool(name="read")]))
    assert [p.index for chunk in chunks for p in chunk.tool_calls] == [0, 1]
    assert [(c.id, c.args) for c in final.tool_calls] == [
        ("abc123", {"filePath": "a.txt"}),
        ("def456", {"filePath": "b.txt"}),
    ]


async def test_stream_shared_ids_replaced_and_zero_usage_unknown(
    driver: Driver, server: FakeServer
) -> None:
    sse(server, payloads.LOCALAI_STREAM_SHARED_ID)
    chunks, final = await driver.stream(chat(tools=TOOLS))
    first, second = final.tool_calls
    assert first.id == "LipwoT0puK4"
    assert re.fullmatch(r"[A-Za-z0-9]{9}", second.id)
    assert final.usage is None
    assert all(chunk.usage is None for chunk in chunks)


async def test_stream_id_first_name_late_arguments_in_pieces(
    driver: Driver, server: FakeServer
) -> None:
    sse(
        server,
        b'data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_9","type":"function","function":{"arguments":""}}]}}]}\n\n'
        b'data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"name":"a"}}]}}]}\n\n'
        b'data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\\"x\\": "}}]}}]}\n\n'
        b'data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"[1]}"}}]}}]}\n\n'
        b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}\n\n'
        b"data: [DONE]\n\n",
    )
    chunks, final = await driver.stream(chat(tools=TOOLS))
    pieces = [p for chunk in chunks for p in chunk.tool_calls]
    assert [(p.index, p.id, p.name, p.arguments) for p in pieces] == [
        (0, "call_9", None, ""),
        (0, None, "a", ""),
        (0, None, None, '{"x": '),
        (0, None, None, "[1]}"),
    ]
    assert [(c.id, c.name, c.args) for c in final.tool_calls] == [("call_9", "a", {"x": [1]})]


async def test_stream_truncated_arguments_stay_invalid(driver: Driver, server: FakeServer) -> None:
    sse(
        server,
        b'data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c1","function":{"name":"a","arguments":"{\\"x\\": 1"}}]}}]}\n\n'
        b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"length"}]}\n\n'
        b"data: [DONE]\n\n",
    )
    _, final = await driver.stream(chat(tools=TOOLS))
    assert final.tool_calls == ()
    (invalid,) = final.invalid_tool_calls
    assert (invalid.name, invalid.arguments) == ("a", '{"x": 1')
    assert final.finish_reason == "length"


async def test_stream_think_block_becomes_reasoning(driver: Driver, server: FakeServer) -> None:
    events = [b"<think>", b"Two plus", b" two.</thi", b"nk>\n\n", b"4"]
    sse(
        server,
        b"".join(
            b'data: {"choices":[{"index":0,"delta":{"content":"'
            + piece.replace(b"\n", b"\\n")
            + b'"}}]}\n\n'
            for piece in events
        )
        + b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n',
    )
    chunks, final = await driver.stream(chat())
    assert (final.reasoning, final.content) == ("Two plus two.", "4")
    assert "".join(c.reasoning or "" for c in chunks) == "Two plus two."
    assert "".join(c.content or "" for c in chunks) == "4"


@pytest.mark.parametrize(
    "body",
    [payloads.LLAMA_STREAM_ERROR_EVENT, payloads.LLAMA_STREAM_ERROR_FIELD],
    ids=["data-error", "error-field"],
)
async def test_stream_error_event_keeps_the_partial_answer(
    driver: Driver, server: FakeServer, body: bytes
) -> None:
    sse(server, body)
    with pytest.raises(APIStatusError) as caught:
        await driver.stream(chat())
    assert caught.value.partial is not None
    assert caught.value.partial.content == "Partial"
    assert caught.value.endpoint == "chat-a"


async def test_stream_error_field_overflow_is_typed(driver: Driver, server: FakeServer) -> None:
    sse(server, payloads.LLAMA_STREAM_ERROR_FIELD)
    with pytest.raises(ContextWindowExceededError):
        await driver.stream(chat())


async def test_stream_cut_off_before_finish_is_an_error_with_partial(
    driver: Driver, server: FakeServer
) -> None:
    sse(server, b'data: {"choices":[{"index":0,"delta":{"content":"Half an ans"}}]}\n\n')
    with pytest.raises(ResponseError, match="stream ended before the answer finished") as caught:
        await driver.stream(chat())
    assert caught.value.partial is not None
    assert caught.value.partial.content == "Half an ans"


async def test_stream_garbage_chunk_is_a_response_error(driver: Driver, server: FakeServer) -> None:
    sse(server, b'data: {"choices":[{"index":0,"delta":{"content":"ok"}}]}\n\ndata: <html>oops\n\n')
    with pytest.raises(ResponseError, match="malformed JSON") as caught:
        await driver.stream(chat())
    assert caught.value.partial is not None
    assert caught.value.partial.content == "ok"


async def test_stream_error_status_is_typed(driver: Driver, server: FakeServer) -> None:
    server.on("POST", f"/v1{CHAT}", payloads.LLAMA_CONTEXT_OVERFLOW, status=400)
    with pytest.raises(ContextWindowExceededError):
        await driver.stream(chat())


async def test_malformed_body_is_a_response_error(driver: Driver, server: FakeServer) -> None:
    server.on("POST", f"/v1{CHAT}", b"<html>200 but not JSON</html>")
    with pytest.raises(ResponseError, match="expected JSON"):
        await driver.chat(chat())
    server.on("POST", f"/v1{CHAT}", b'{"id": "x", "choices": []}')
    with pytest.raises(ResponseError, match="no choices"):
        await driver.chat(chat())


async def test_http_errors_carry_model_endpoint_and_never_the_key(
    driver: Driver, server: FakeServer
) -> None:
    server.on("POST", f"/v1{CHAT}", payloads.LLAMA_INVALID_KEY, status=401)
    with pytest.raises(AuthenticationError) as caught:
        await driver.chat(chat())
    assert (caught.value.model, caught.value.endpoint, caught.value.status_code) == (
        "tiny",
        "chat-a",
        401,
    )
    assert "key-for-chat" not in f"{caught.value} {caught.value!r} {caught.value.body}"


async def test_loading_server_is_retryable(driver: Driver, server: FakeServer) -> None:
    server.on("POST", f"/v1{CHAT}", payloads.LLAMA_LOADING, status=503)
    with pytest.raises(ServerError) as caught:
        await driver.chat(chat())
    assert caught.value.loading
    assert caught.value.retryable


def failing(exc: Exception) -> object:
    def handler(request: httpx2.Request) -> httpx2.Response:
        raise exc

    return handler


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (httpx2.ConnectError("Connection refused"), EndpointConnectionError),
        (httpx2.ReadTimeout("read timed out"), EndpointTimeoutError),
        (httpx2.ReadError("Connection reset by peer"), EndpointConnectionError),
    ],
)
async def test_transport_errors_are_mapped_once(
    driver: Driver, server: FakeServer, exc: Exception, kind: type[Exception]
) -> None:
    server.on("POST", f"/v1{CHAT}", failing(exc))  # type: ignore[arg-type]
    with pytest.raises(kind) as caught:
        await driver.chat(chat())
    assert caught.value.__cause__ is exc
    with pytest.raises(kind):
        await driver.stream(chat())


async def test_stale_pooled_connection_is_resent_once(driver: Driver, server: FakeServer) -> None:
    attempts = []

    def flaky(request: httpx2.Request) -> tuple[int, bytes, dict[str, str]]:
        attempts.append(request)
        if len(attempts) == 1:
            raise httpx2.RemoteProtocolError("Server disconnected without sending a response.")
        return 200, payloads.VLLM_REASONING, {}

    server.on("POST", f"/v1{CHAT}", flaky)
    assert (await driver.chat(chat())).content == "Paris."
    assert len(attempts) == 2


async def test_capability_and_model_checked_before_any_io(
    driver: Driver, server: FakeServer
) -> None:
    with pytest.raises(CapabilityError, match="lacks embedding"):
        await driver.embed(EmbeddingRequest(model="tiny", input=["x"]))
    image = [Message(role="user", content=[ImagePart("data:,")])]
    with pytest.raises(CapabilityError, match="lacks vision"):
        await driver.chat(chat(messages=image))
    with pytest.raises(CapabilityError, match="lacks chat, function_call"):
        await driver.chat(ChatRequest(model="minilm", messages=user(), tools=TOOLS))
    with pytest.raises(UnknownModelError, match="configured models: 'tiny', 'minilm'"):
        await driver.chat(ChatRequest(model="gpt-4", messages=user()))
    assert server.requests == []


@pytest.mark.parametrize(
    ("max_tokens", "problem"),
    [
        (
            0,
            "0 (llama-server reads -1 as no limit, OpenAI refuses it); leave max_tokens unset "
            "for the server's own limit",
        ),
        (
            -1,
            "-1 (llama-server reads -1 as no limit, OpenAI refuses it); leave max_tokens unset "
            "for the server's own limit",
        ),
        (True, "bool True"),
        (2.5, "float 2.5"),
    ],
)
async def test_max_tokens_is_checked_before_any_io(
    driver: Driver, server: FakeServer, max_tokens: object, problem: str
) -> None:
    expected = f"max_tokens must be an integer of at least 1, not {problem} (model='tiny')"
    with pytest.raises(InvalidRequestError) as answered:
        await driver.chat(chat(max_tokens=max_tokens))
    with pytest.raises(InvalidRequestError) as streamed:
        await driver.stream(chat(max_tokens=max_tokens))
    assert str(answered.value) == str(streamed.value) == expected
    assert server.requests == []


async def test_structured_output_request(driver: Driver, server: FakeServer) -> None:
    server.on("POST", f"/v1{CHAT}", payloads.VLLM_REASONING)
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    await driver.chat(chat(response_format=ResponseFormat(type="json_schema", schema=schema)))
    assert server.payloads()[-1]["response_format"]["json_schema"]["schema"] == schema


SCHEMA_WINS = (
    "tools and a json_schema response_format in one request: grammar-constrained servers "
    "(llama-server, vLLM) cannot return a tool call when the output is constrained to a schema, "
    "so the schema wins (model='tiny')"
)


def core_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "selfhosted_core" and record.levelno == logging.WARNING
    ]


async def test_tools_with_a_json_schema_log_one_warning_per_request(
    driver: Driver, server: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.on("POST", f"/v1{CHAT}", payloads.VLLM_REASONING)
    schema = ResponseFormat(type="json_schema", schema={"type": "object"})
    with caplog.at_level(logging.WARNING, logger="selfhosted_core"):
        await driver.chat(chat(tools=TOOLS, response_format=schema))
        assert core_warnings(caplog) == [SCHEMA_WINS]
        await driver.chat(chat(tools=TOOLS))
        await driver.chat(chat(response_format=schema))
        assert core_warnings(caplog) == [SCHEMA_WINS]
        await driver.chat(chat(tools=TOOLS, response_format=schema))
    assert core_warnings(caplog) == [SCHEMA_WINS, SCHEMA_WINS]


async def test_a_stream_with_tools_and_a_json_schema_logs_one_warning(
    driver: Driver, server: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    sse(server, payloads.LLAMA_STREAM)
    schema = ResponseFormat(type="json_schema", schema={"type": "object"})
    with caplog.at_level(logging.WARNING, logger="selfhosted_core"):
        await driver.stream(chat(tools=TOOLS, response_format=schema))
    assert core_warnings(caplog) == [SCHEMA_WINS]


async def test_a_resent_request_is_warned_once(
    driver: Driver, server: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    def flaky(request: httpx2.Request) -> tuple[int, bytes, dict[str, str]]:
        if len(server.requests) == 1:
            raise httpx2.RemoteProtocolError("Server disconnected without sending a response.")
        return 200, payloads.VLLM_REASONING, {}

    server.on("POST", f"/v1{CHAT}", flaky)
    schema = ResponseFormat(type="json_schema", schema={"type": "object"})
    with caplog.at_level(logging.WARNING, logger="selfhosted_core"):
        await driver.chat(chat(tools=TOOLS, response_format=schema))
    assert len(server.requests) == 2
    assert core_warnings(caplog) == [SCHEMA_WINS]


async def test_embeddings_reordered_and_checked(driver: Driver, server: FakeServer) -> None:
    server.on(
        "POST",
        EMBED,
        {
            "data": [{"index": 1, "embedding": [0.0, 1.0]}, {"index": 0, "embedding": [1.0, 0.0]}],
            "model": "minilm",
            "usage": {"prompt_tokens": 4, "total_tokens": 4},
        },
    )
    answer = await driver.embed(EmbeddingRequest(model="minilm", input=["first", "second"]))
    assert answer.embeddings == [[1.0, 0.0], [0.0, 1.0]]
    assert answer.usage is not None
    assert answer.usage.total_tokens == 4
    assert server.payloads()[-1] == {
        "model": "minilm",
        "input": ["first", "second"],
        "encoding_format": "float",
    }


async def test_embeddings_base64(driver: Driver, server: FakeServer) -> None:
    server.on("POST", EMBED, payloads.OLLAMA_BASE64_EMBEDDINGS)
    answer = await driver.embed(EmbeddingRequest(model="minilm", input="x"))
    assert answer.embeddings == [[1.0, 0.5]]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            [{"index": 0, "embedding": [1.0, 0.0, 0.0]}],
            "embedding 0 has 3 dimensions; configured 2",
        ),
        ([], "0 embeddings returned for 1 inputs"),
        ([{"index": 0, "embedding": "@@not base64"}], "malformed embeddings response"),
    ],
)
async def test_embeddings_malformed(
    driver: Driver, server: FakeServer, data: list[object], message: str
) -> None:
    server.on("POST", EMBED, {"data": data})
    with pytest.raises(ResponseError, match=message):
        await driver.embed(EmbeddingRequest(model="minilm", input=["x"]))


async def test_empty_embedding_input_sends_nothing(driver: Driver, server: FakeServer) -> None:
    assert (await driver.embed(EmbeddingRequest(model="minilm", input=[]))).embeddings == []
    assert server.requests == []


async def test_each_key_goes_to_its_own_endpoint_only(driver: Driver, server: FakeServer) -> None:
    server.on("POST", f"/v1{CHAT}", payloads.VLLM_REASONING)
    server.on("POST", EMBED, {"data": [{"index": 0, "embedding": [1.0, 0.0]}]})
    await driver.chat(chat())
    await driver.embed(EmbeddingRequest(model="minilm", input=["x"]))
    seen = {(r.url.host, r.headers.get("authorization")) for r in server.requests}
    assert seen == {("chat.test", "Bearer key-for-chat"), ("embed.test", None)}


async def test_health_loading_detected_and_unauthorized(driver: Driver, server: FakeServer) -> None:
    server.on("GET", "/health", payloads.LLAMA_LOADING, status=503)
    report = await driver.health()
    assert [e.status for e in report.endpoints] == [HealthStatus.LOADING, HealthStatus.LOADING]
    assert report.endpoints[0].detail == "Loading model"
    assert not report.ok
    server.on("GET", "/health", {"status": "ok"})
    server.on("GET", "/v1/models", payloads.LLAMA_INVALID_KEY, status=401)
    report = await driver.health()
    assert report.endpoints[0].status is HealthStatus.UNAUTHORIZED


async def test_health_detects_llama_and_its_context(driver: Driver, server: FakeServer) -> None:
    server.on("GET", "/health", {"status": "ok"})
    server.on("GET", "/v1/models", payloads.LLAMA_MODELS)
    server.on("GET", "/props", payloads.LLAMA_PROPS)
    report = await driver.health()
    chat_health = report.for_model("tiny")[0]
    assert (
        chat_health.status,
        chat_health.server,
        chat_health.version,
        chat_health.context_window,
    ) == (HealthStatus.OK, ServerKind.LLAMA_CPP, "b1-0c1e570", 2048)
    assert chat_health.latency_ms is not None
    embed_health = report.for_model("minilm")[0]
    assert embed_health.detail == "server does not list 'minilm' (lists: tiny)"
    assert report.ok


async def test_health_vllm_context_and_profile_adopted(driver: Driver, server: FakeServer) -> None:
    server.on("GET", "/health", b"")
    server.on("GET", "/v1/models", payloads.VLLM_MODELS)
    server.on("POST", f"/v1{CHAT}", payloads.VLLM_REASONING)
    report = await driver.health()
    assert report.endpoints[0].server is ServerKind.VLLM
    assert report.endpoints[0].context_window is None
    tools = [Tool(name="a"), Tool(name="b")]
    await driver.chat(chat(tools=tools, tool_choice="b"))
    assert server.payloads()[-1]["tool_choice"] == {"type": "function", "function": {"name": "b"}}


_OWNER_KIND = {"vllm": ServerKind.VLLM, "library": ServerKind.OLLAMA, "sglang": ServerKind.SGLANG}


@pytest.mark.parametrize(
    ("owner", "declared", "path", "reply", "version"),
    [
        ("vllm", None, "/version", payloads.VLLM_VERSION, "0.11.0"),
        ("library", None, "/api/version", payloads.OLLAMA_VERSION, "0.12.6"),
        ("sglang", None, "/get_server_info", payloads.SGLANG_SERVER_INFO, "0.5.3"),
        ("system", "localai", "/version", payloads.LOCALAI_VERSION, "v3.6.0 (0c1e5700)"),
        ("tgi", "tgi", "/info", payloads.TGI_INFO, "3.3.6"),
    ],
)
@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_health_reads_each_servers_version(
    mode: str, owner: str, declared: str | None, path: str, reply: bytes, version: str
) -> None:
    server = FakeServer()
    server.on("GET", "/health", b"")
    server.on("GET", "/v1/models", {"data": [{"id": "m", "owned_by": owner}]})
    server.on("GET", path, reply)
    config = Config(endpoints=[{"url": "http://gpu-1:8000", "id": "m", "server": declared}])
    async with Provider(config, transport=server.transport, async_transport=server.transport) as p:
        (entry,) = (await Driver(mode, p).health()).endpoints
    assert (entry.status, entry.version) == (HealthStatus.OK, version)
    assert entry.server is (ServerKind(declared) if declared else _OWNER_KIND[owner])
    assert "sk-server-secret" not in repr(entry)


async def test_health_without_a_version_reply_still_ok(driver: Driver, server: FakeServer) -> None:
    server.on("GET", "/health", b"")
    server.on("GET", "/v1/models", payloads.VLLM_MODELS)
    server.on("GET", "/version", b"<html>not here</html>")
    (entry, _) = (await driver.health()).endpoints
    assert (entry.status, entry.server, entry.version) == (HealthStatus.OK, ServerKind.VLLM, None)


async def test_health_never_fails_the_whole_report(driver: Driver, server: FakeServer) -> None:
    def by_host(request: httpx2.Request) -> tuple[int, bytes, dict[str, str]]:
        if request.url.host == "chat.test":
            raise httpx2.ConnectError("Connection refused")
        return 200, b'{"status":"ok"}', {}

    server.on("GET", "/health", by_host)
    server.on(
        "GET", "/v1/models", {"data": [{"id": "minilm", "owned_by": "vllm", "max_model_len": 512}]}
    )
    report = await driver.health()
    down, up = report.endpoints
    assert (down.status, up.status, up.context_window) == (HealthStatus.DOWN, HealthStatus.OK, 512)
    assert "Connection refused" in (down.detail or "")


def test_replicas_share_requests_round_robin() -> None:
    server = FakeServer()
    server.on("POST", f"/v1{CHAT}", payloads.VLLM_REASONING)
    config = Config(endpoints=[{"url": f"http://gpu-{n}:8080", "id": "m"} for n in range(3)])
    with Provider(config, transport=server.transport) as provider:
        answers = [provider.chat(ChatRequest(model="m", messages=user())) for _ in range(6)]
    assert [a.endpoint for a in answers] == ["m@gpu-0:8080", "m@gpu-1:8080", "m@gpu-2:8080"] * 2
    (info,) = provider.available_models()
    assert (info.replicas, info.provider_id, info.label) == (3, "SelfHosted", "m")


def test_models_and_dimensions() -> None:
    provider = Provider(Config(endpoints=ENDPOINTS), provider_id="lab")
    assert [
        (m.id, m.dimension, m.token_modifier, m.provider_id) for m in provider.available_models()
    ] == [("tiny", None, 2.0, "lab"), ("minilm", 2, 1.0, "lab")]
    assert provider.embedding_dimension("minilm") == 2
    with pytest.raises(CapabilityError):
        provider.embedding_dimension("tiny")
    with pytest.raises(UnknownModelError):
        provider.embedding_dimension("nope")
    with pytest.raises(NotSupportedError):
        provider.upload_file(b"data")
    with pytest.raises(NotSupportedError):
        provider.delete_file("file-1")
    assert "key-for-chat" not in repr(provider)


def test_async_clients_belong_to_their_event_loop() -> None:
    server = FakeServer()
    server.on("POST", f"/v1{CHAT}", payloads.VLLM_REASONING)
    provider = Provider(Config(endpoints=ENDPOINTS), async_transport=server.transport)

    async def ask() -> str | None:
        answer = await provider.achat(chat())
        await provider.aclose()
        return answer.content

    assert asyncio.run(ask()) == "Paris."
    assert asyncio.run(ask()) == "Paris."


def test_stream_can_be_left_early_and_final_response_drains(server: FakeServer) -> None:
    sse(server, payloads.LLAMA_STREAM)
    with Provider(Config(endpoints=ENDPOINTS), transport=server.transport) as provider:
        stream = provider.stream(chat())
        for chunk in stream:
            if chunk.content:
                break
        assert stream.final_response().content == "Hello there"
        closed = provider.stream(chat())
        closed.close()
        with pytest.raises(ResponseError, match="closed before it finished"):
            closed.final_response()


def test_context_window_configured_is_the_smallest_replica() -> None:
    config = Config(
        endpoints=[
            {"url": "http://gpu-1:8080", "id": "m", "context_window": 8192},
            {"url": "http://gpu-2:8080", "id": "m", "context_window": 4096},
            {"url": "http://gpu-3:8080", "id": "other"},
        ]
    )
    provider = Provider(config)
    assert (provider.context_window("m"), provider.context_window("other")) == (4096, None)
    assert [info.context_window for info in provider.available_models()] == [4096, None]
    with pytest.raises(UnknownModelError):
        provider.context_window("nope")


async def test_context_window_from_the_health_checks_unless_configured(
    driver: Driver, server: FakeServer
) -> None:
    sizes = {"gpu-1": 2048, "gpu-2": 1024, "gpu-3": 4096}
    down: set[str] = set()

    def health(request: httpx2.Request) -> tuple[int, bytes, dict[str, str]]:
        if request.url.host in down:
            raise httpx2.ConnectError("Connection refused")
        return 200, b'{"status":"ok"}', {}

    def props(request: httpx2.Request) -> tuple[int, bytes, dict[str, str]]:
        body = {"default_generation_settings": {"n_ctx": sizes[request.url.host]}}
        return 200, json.dumps(body).encode(), {}

    server.on("GET", "/health", health)
    server.on("GET", "/v1/models", payloads.LLAMA_MODELS)
    server.on("GET", "/props", props)
    config = Config(
        endpoints=[
            {"url": "http://gpu-1:8080", "id": "tiny"},
            {"url": "http://gpu-2:8080", "id": "tiny"},
            {"url": "http://gpu-3:8080", "id": "capped", "context_window": 512},
        ]
    )
    transport = server.transport
    async with Provider(config, transport=transport, async_transport=transport) as provider:
        check = Driver(driver.mode, provider)
        assert (provider.context_window("tiny"), provider.context_window("capped")) == (None, 512)
        await check.health()
        assert (provider.context_window("tiny"), provider.context_window("capped")) == (1024, 512)
        assert provider.available_models()[0].context_window == 1024
        down.add("gpu-2")  # a later check that finds no size keeps the last one found
        assert (await check.health()).endpoints[1].status is HealthStatus.DOWN
        assert provider.context_window("tiny") == 1024


async def test_request_timeout_replaces_the_endpoints_own(
    driver: Driver, server: FakeServer
) -> None:
    server.on("POST", f"/v1{CHAT}", payloads.VLLM_REASONING)
    server.on(
        "POST", "/v1/embeddings", payloads.OLLAMA_BASE64_EMBEDDINGS.replace(b'"nomic"', b'"m"')
    )
    await driver.chat(chat(timeout=3.0))
    await driver.chat(chat())
    await driver.embed(EmbeddingRequest(model="minilm", input=["a"], timeout=2.0))
    reads = [request.extensions["timeout"]["read"] for request in server.requests]
    # What is left of each budget when the request goes out.
    assert reads == pytest.approx([3.0, 600.0, 2.0], abs=0.5)


@pytest.mark.parametrize(("kind", "closing"), [("llama.cpp", True), ("vllm", False), (None, False)])
@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_a_stream_asks_to_close_the_connection_only_where_the_server_closes_it(
    mode: str, kind: str | None, closing: bool
) -> None:
    server = FakeServer()
    sse(server, payloads.LLAMA_STREAM)
    config = Config(endpoints=[{"url": "http://gpu-1:8080", "id": "tiny", "server": kind}])
    async with Provider(config, transport=server.transport, async_transport=server.transport) as p:
        await Driver(mode, p).stream(chat())
    (sent,) = server.requests
    assert (sent.headers.get("connection") == "close") is closing
