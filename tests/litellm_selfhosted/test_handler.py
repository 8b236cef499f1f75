"""`litellm.completion(model="selfhosted/...")` on the fake server: each call sync and async."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import litellm
import pytest
from litellm import exceptions as lx
from litellm.types.utils import ChatCompletionMessageToolCall, Choices, ModelResponse
from litellm.utils import custom_llm_setup

from litellm_selfhosted import SelfHostedLLM, _request, register
from selfhosted_core import Config, InvalidRequestError, Provider, SelfHostedError
from tests.core import payloads
from tests.core.harness import ENDPOINTS, SERVER_SAMPLING_VALUES, FakeServer
from tests.litellm_driver import LLDriver, model

pytestmark = pytest.mark.usefixtures("registered")

CHAT = "/v1/chat/completions"
HELLO = [{"role": "user", "content": "Hello"}]
KEY = "key-for-chat"  # ENDPOINTS[0]["api_key"]


ENVELOPE = {"created": 1762593253, "id": "chatcmpl-7", "model": "tiny"}


def llama_event(choices: list[Any], **extra: Any) -> bytes:
    """One llama-server stream event, in the envelope of payloads.LLAMA_STREAM
    (tools/server/server-task.cpp to_json_oaicompat_chat_stream)."""
    event = {"choices": choices, **ENVELOPE, "object": "chat.completion.chunk", **extra}
    return b"data: " + json.dumps(event, separators=(",", ":")).encode() + b"\n\n"


def llama_stream(*deltas: dict[str, Any], finish: str, usage: tuple[int, int]) -> bytes:
    """Role chunk, the deltas, the finish chunk, the separate `choices: []` usage chunk, [DONE]."""
    role = {"role": "assistant", "content": None}
    pieces = [(role, None), *((delta, None) for delta in deltas), ({}, finish)]
    prompt, completion = usage
    totals = {"completion_tokens": completion, "prompt_tokens": prompt}
    return (
        b"".join(
            llama_event([{"finish_reason": reason, "index": 0, "delta": delta}])
            for delta, reason in pieces
        )
        + llama_event([], usage={**totals, "total_tokens": prompt + completion})
        + b"data: [DONE]\n\n"
    )


# llama-server with a reasoning model (--reasoning-format deepseek, the default `auto`): the
# reasoning streams as `delta.reasoning_content` (tools/server/server-common.cpp
# server_chat_msg_diff_to_json_oaicompat; a captured b6881 stream is quoted in
# g0t4/ask-openai.nvim lua/ask-openai/rewrites/harmony/NOTES.md).
LLAMA_REASONING_STREAM = llama_stream(
    {"reasoning_content": "The user"},
    {"reasoning_content": " greets me."},
    {"content": "Hello!"},
    finish="stop",
    usage=(9, 6),
)

# llama-server parallel tool calls: the first piece of each call has index, id, type and name;
# later pieces only index and an `arguments` fragment (same function as above).
FIRST = {"type": "function"}
LLAMA_TWO_CALLS_STREAM = llama_stream(
    {"tool_calls": [{"index": 0, "id": "call_w1", **FIRST, "function": {"name": "get_weather", "arguments": '{"city":'}}]},
    {"tool_calls": [{"index": 0, "function": {"arguments": ' "Paris"}'}}]},
    {"tool_calls": [{"index": 1, "id": "call_t2", **FIRST, "function": {"name": "get_time", "arguments": '{"zone"'}}]},
    {"tool_calls": [{"index": 1, "function": {"arguments": ': "CET"}'}}]},
    finish="tool_calls",
    usage=(30, 20),
)  # fmt: skip

TOOLS = [
    {"type": "function", "function": {"name": name, "parameters": {"type": "object"}}}
    for name in ("get_weather", "get_time", "read_file")
]


def message_of(response: ModelResponse) -> Any:
    choice = response.choices[0]
    assert isinstance(choice, Choices)
    return choice.message


def calls_of(response: ModelResponse) -> list[ChatCompletionMessageToolCall]:
    calls = message_of(response).tool_calls or []
    assert all(isinstance(call, ChatCompletionMessageToolCall) for call in calls)
    return list(calls)


def built(chunks: list[Any]) -> ModelResponse:
    # stream_chunk_builder prints LiteLLM's "Provider List" banner for custom providers.
    response = litellm.stream_chunk_builder(chunks)
    assert isinstance(response, ModelResponse)
    return response


def core_cause(error: BaseException) -> SelfHostedError:
    """The core error behind a LiteLLM error; a stream LiteLLM wraps (MidStreamFallbackError)
    keeps ours as `original_exception`."""
    ours = getattr(error, "original_exception", None) or error
    assert isinstance(ours.__cause__, SelfHostedError)
    return ours.__cause__


async def test_completion_answers_with_reasoning_and_usage(
    ll: LLDriver, server: FakeServer
) -> None:
    server.on("POST", CHAT, payloads.VLLM_REASONING)
    response = await ll.complete(model=model("tiny"), messages=HELLO)
    message = message_of(response)
    assert (message.content, message.reasoning_content) == ("Paris.", "The capital of France.")
    assert response.choices[0].finish_reason == "stop"
    assert response.model == "tiny"
    usage = response.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (10, 8, 18)
    assert usage.completion_tokens_details.reasoning_tokens == 5
    assert response._hidden_params["selfhosted"]["endpoint"] == "chat-a"


async def test_object_arguments_arrive_as_a_json_string(ll: LLDriver, server: FakeServer) -> None:
    server.on("POST", CHAT, payloads.LLAMA_OBJECT_ARGUMENTS)
    response = await ll.complete(model=model("tiny"), messages=HELLO, tools=TOOLS)
    (call,) = calls_of(response)
    assert (call.id, call.function.name) == ("call_1", "read_file")
    assert isinstance(call.function.arguments, str)
    assert json.loads(call.function.arguments) == {"path": "/etc/hosts"}
    assert response.choices[0].finish_reason == "tool_calls"
    assert response.usage.prompt_tokens_details.cached_tokens == 32
    assert response._hidden_params["selfhosted"]["billed_tokens"] == 104.0


async def test_stream_delivers_reasoning_as_delta(ll: LLDriver, server: FakeServer) -> None:
    server.stream(CHAT, LLAMA_REASONING_STREAM)
    chunks = await ll.stream(model=model("tiny"), messages=HELLO)
    reasoning = [getattr(c.choices[0].delta, "reasoning_content", None) for c in chunks]
    assert "".join(piece or "" for piece in reasoning) == "The user greets me."
    message = message_of(built(chunks))
    assert (message.content, message.reasoning_content) == ("Hello!", "The user greets me.")


async def test_a_stream_tells_where_its_answer_came_from_in_its_closing_delta(
    ll: LLDriver, server: FakeServer
) -> None:
    server.stream(CHAT, LLAMA_REASONING_STREAM)
    chunks = await ll.stream(model=model("tiny"), messages=HELLO)
    origins = [
        fields["selfhosted"]
        for chunk in chunks
        if (fields := getattr(chunk.choices[0].delta, "provider_specific_fields", None))
    ]
    assert [(origin["endpoint"], origin["server"]) for origin in origins] == [("chat-a", "generic")]


async def test_stream_rebuilds_two_tool_calls_split_across_chunks(
    ll: LLDriver, server: FakeServer
) -> None:
    server.stream(CHAT, LLAMA_TWO_CALLS_STREAM)
    chunks = await ll.stream(model=model("tiny"), messages=HELLO, tools=TOOLS)
    whole = built(chunks)
    calls = calls_of(whole)
    assert [(c.id, c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("call_w1", "get_weather", {"city": "Paris"}),
        ("call_t2", "get_time", {"zone": "CET"}),
    ]
    assert whole.choices[0].finish_reason == "tool_calls"


async def test_a_loading_server_is_service_unavailable(ll: LLDriver, server: FakeServer) -> None:
    server.on("POST", CHAT, payloads.LLAMA_LOADING, status=503)
    with pytest.raises(lx.ServiceUnavailableError) as caught:
        await ll.complete(model=model("tiny"), messages=HELLO)
    assert caught.value.status_code == 503
    assert "Loading model" in str(caught.value)


async def test_a_stream_broken_after_output_keeps_the_partial(
    ll: LLDriver, server: FakeServer
) -> None:
    server.stream(CHAT, payloads.LLAMA_STREAM_ERROR_EVENT)
    # LiteLLM's stream wrapper re-raises a 5xx mid-stream as its MidStreamFallbackError (so a
    # Router may fall back), keeping our InternalServerError as `original_exception`.
    with pytest.raises(lx.MidStreamFallbackError) as caught:
        await ll.stream(model=model("tiny"), messages=HELLO)
    assert isinstance(caught.value.original_exception, lx.InternalServerError)
    assert caught.value.status_code == 500
    assert "slot crashed" in str(caught.value)
    partial = core_cause(caught.value).partial
    assert partial is not None
    assert partial.content == "Partial"


async def stream_into(ll: LLDriver, texts: list[str]) -> None:
    """Stream `tiny`, keeping each text delta as it arrives (until an error ends the stream)."""
    kwargs: dict[str, Any] = {"model": model("tiny"), "messages": HELLO, "stream": True}
    if ll.mode == "sync":
        for chunk in litellm.completion(**kwargs):
            texts.append(chunk.choices[0].delta.content or "")
    else:
        async for chunk in await litellm.acompletion(**kwargs):
            texts.append(chunk.choices[0].delta.content or "")


async def test_text_received_in_the_read_that_carries_the_error_still_streams(
    ll: LLDriver, server: FakeServer
) -> None:
    server.stream(CHAT, payloads.LLAMA_STREAM_ERROR_EVENT)  # the mock sends it in one read
    texts: list[str] = []
    with pytest.raises(lx.MidStreamFallbackError) as caught:
        await stream_into(ll, texts)
    assert "".join(texts) == "Partial"
    assert caught.value.generated_content == "Partial"


async def test_an_unknown_model_is_not_found(ll: LLDriver, server: FakeServer) -> None:
    with pytest.raises(lx.NotFoundError, match="configured models: 'tiny', 'minilm'"):
        await ll.complete(model=model("nope"), messages=HELLO)
    assert server.requests == []


@pytest.mark.parametrize("name", ["max_tokens", "max_completion_tokens"])
async def test_a_token_limit_below_one_is_a_bad_request_before_sending(
    ll: LLDriver, server: FakeServer, name: str
) -> None:
    server.on("POST", CHAT, payloads.LLAMA_OBJECT_ARGUMENTS)
    with pytest.raises(lx.BadRequestError) as caught:
        await ll.complete(model=model("tiny"), messages=HELLO, **{name: 0})
    assert isinstance(core_cause(caught.value), InvalidRequestError)
    assert str(core_cause(caught.value)) == (
        "max_tokens must be an integer of at least 1, not 0 (llama-server reads -1 as no "
        "limit, OpenAI refuses it); leave max_tokens unset for the server's own limit "
        "(model='tiny')"
    )
    assert server.requests == []


async def test_tools_with_a_json_schema_log_the_cores_one_warning(
    ll: LLDriver, server: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.on("POST", CHAT, payloads.VLLM_REASONING)
    person = {
        "type": "json_schema",
        "json_schema": {"name": "Person", "schema": {"type": "object"}},
    }
    with caplog.at_level(logging.WARNING, logger="selfhosted_core"):
        await ll.complete(model=model("tiny"), messages=HELLO, tools=TOOLS, response_format=person)
        await ll.complete(model=model("tiny"), messages=HELLO, tools=TOOLS)
        await ll.complete(model=model("tiny"), messages=HELLO, response_format=person)
    assert [r.getMessage() for r in caplog.records if r.name == "selfhosted_core"] == [
        "tools and a json_schema response_format in one request: grammar-constrained servers "
        "(llama-server, vLLM) cannot return a tool call when the output is constrained to a "
        "schema, so the schema wins (model='tiny')"
    ]
    assert len(server.requests) == 3


async def test_api_base_pins_the_replica_and_an_unknown_one_is_refused(
    ll: LLDriver, server: FakeServer
) -> None:
    server.on("POST", CHAT, payloads.LLAMA_OBJECT_ARGUMENTS)
    await ll.complete(model=model("tiny"), messages=HELLO, api_base="http://chat.test:8080/v1")
    assert server.requests[-1].url.host == "chat.test"
    with pytest.raises(lx.BadRequestError, match=r"its replicas: http://chat\.test:8080/v1"):
        await ll.complete(model=model("tiny"), messages=HELLO, api_base="http://elsewhere:1")
    assert len(server.requests) == 1


async def test_the_request_carries_the_endpoint_key_and_no_router_keys(
    ll: LLDriver, server: FakeServer
) -> None:
    server.on("POST", CHAT, payloads.LLAMA_OBJECT_ARGUMENTS)
    await ll.complete(
        model=model("tiny"),
        messages=HELLO,
        label="gpu-1",
        max_retries=0,
        token_modifier=3.0,
        top_k=5,
    )
    (request,) = server.requests
    assert request.headers["authorization"] == f"Bearer {KEY}"
    payload = json.loads(request.content)
    assert not {"label", "max_retries", "token_modifier"} & set(payload)
    assert payload["top_k"] == 5


@pytest.mark.parametrize(("name", "value"), sorted(SERVER_SAMPLING_VALUES.items()))
async def test_each_server_sampling_parameter_is_sent(
    ll: LLDriver, server: FakeServer, name: str, value: Any
) -> None:
    server.on("POST", CHAT, payloads.VLLM_REASONING)
    # LiteLLM refuses reasoning_effort for a custom provider unless it is allowed; Router
    # deployments of reasoning endpoints list it (router_model_list).
    await ll.complete(
        model=model("tiny"), messages=HELLO, allowed_openai_params=[name], **{name: value}
    )
    assert server.payloads() == [{"model": "tiny", "messages": HELLO, name: value}]


async def test_an_api_key_given_to_litellm_is_not_sent(
    ll: LLDriver,
    server: FakeServer,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_request, "_warned", set())  # the warning is once per process
    server.on("POST", CHAT, payloads.LLAMA_OBJECT_ARGUMENTS)
    with caplog.at_level(logging.WARNING, logger="litellm_selfhosted"):
        await ll.complete(model=model("tiny"), messages=HELLO, api_key="caller-key")
    assert server.requests[-1].headers["authorization"] == f"Bearer {KEY}"
    assert "caller-key" not in server.requests[-1].content.decode()
    assert any("api_key given to LiteLLM is not used" in r.getMessage() for r in caplog.records)


async def test_errors_and_repr_never_show_the_key(
    ll: LLDriver, server: FakeServer, registered: SelfHostedLLM
) -> None:
    assert KEY not in repr(registered)
    server.on("POST", CHAT, payloads.LLAMA_INVALID_KEY, status=401)
    with pytest.raises(lx.AuthenticationError) as caught:
        await ll.complete(model=model("tiny"), messages=HELLO)
    assert caught.value.status_code == 401
    for text in (str(caught.value), repr(caught.value), repr(core_cause(caught.value))):
        assert KEY not in text


async def test_embedding_of_a_bare_string_is_one_text(ll: LLDriver, server: FakeServer) -> None:
    # Ollama's base64 float32 vector [1.0, 0.5] (payloads.OLLAMA_BASE64_EMBEDDINGS); minilm has 2.
    server.on("POST", "/v1/embeddings", payloads.OLLAMA_BASE64_EMBEDDINGS)
    response = await ll.embed(model=model("minilm"), input="hello")
    assert [item.embedding for item in response.data] == [[1.0, 0.5]]
    assert server.payloads()[-1]["input"] == ["hello"]
    assert server.requests[-1].url.host == "embed.test"


# --- registration and configuration ---------------------------------------------------------------


def selfhosted_entries() -> list[Any]:
    return [
        e["custom_handler"] for e in litellm.custom_provider_map if e["provider"] == "selfhosted"
    ]


def test_register_replaces_an_earlier_selfhosted_entry(
    provider: Provider, registered: SelfHostedLLM
) -> None:
    assert selfhosted_entries() == [registered]
    again = register(provider=provider)
    assert again is not registered
    assert selfhosted_entries() == [again]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("SELFHOSTED_CONFIG", "SELFHOSTED_BASE_URL", "SELFHOSTED_MODEL"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_a_fresh_handler_reads_base_url_and_model_on_first_use(
    clean_env: pytest.MonkeyPatch,
) -> None:
    handler = SelfHostedLLM()
    assert repr(handler) == "SelfHostedLLM(not yet configured)"
    clean_env.setenv("SELFHOSTED_BASE_URL", "http://env.test:8080")
    clean_env.setenv("SELFHOSTED_MODEL", "from-env")
    (endpoint,) = handler.provider.config.endpoints
    assert (endpoint.url, endpoint.id) == ("http://env.test:8080", "from-env")
    handler.provider.close()


def test_a_fresh_handler_reads_selfhosted_config_on_first_use(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    handler = SelfHostedLLM()
    path = tmp_path / "endpoints.yaml"
    path.write_text("endpoints:\n  - {url: 'http://file.test:8080', id: from-file}\n")
    clean_env.setenv("SELFHOSTED_CONFIG", str(path))
    clean_env.setenv("SELFHOSTED_BASE_URL", "http://ignored.test:1")
    clean_env.setenv("SELFHOSTED_MODEL", "ignored")
    assert handler.provider.config.model_ids == ["from-file"]
    handler.provider.close()


async def test_a_missing_config_is_a_server_error_naming_selfhosted_config(
    ll: LLDriver, clean_env: pytest.MonkeyPatch
) -> None:
    """The operator's setup is wrong, not the caller's request: 500, not 400."""
    litellm.custom_provider_map = [{"provider": "selfhosted", "custom_handler": SelfHostedLLM()}]
    custom_llm_setup()  # type: ignore[no-untyped-call]
    with pytest.raises(lx.InternalServerError, match="SELFHOSTED_CONFIG") as caught:
        await ll.complete(model=model("tiny"), messages=HELLO)
    assert caught.value.status_code == 500


@pytest.mark.parametrize(
    ("caller", "configured", "sent"),
    [(None, 5.0, 5.0), (12.5, 600.0, 12.5), (30, 5.0, 5.0)],
    ids=["endpoint-when-caller-sets-none", "shorter-caller", "endpoint-caps-longer-caller"],
)
async def test_the_shorter_of_the_call_and_endpoint_timeout_is_sent(
    ll: LLDriver,
    server: FakeServer,
    litellm_state: None,
    caller: float | None,
    configured: float,
    sent: float,
) -> None:
    """LiteLLM passes 600 s when the caller gives none; the endpoint's timeout is the cap."""
    server.on("POST", CHAT, payloads.LLAMA_OBJECT_ARGUMENTS)
    transport = server.transport
    config = Config(endpoints=[{**ENDPOINTS[0], "timeout": configured}])
    async with Provider(config, transport=transport, async_transport=transport) as provider:
        register(provider=provider)
        options = {} if caller is None else {"timeout": caller}
        await ll.complete(model=model("tiny"), messages=HELLO, **options)
    # What is left of the budget when the request goes out.
    assert server.requests[-1].extensions["timeout"]["read"] == pytest.approx(sent, abs=0.5)
