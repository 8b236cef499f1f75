"""`ChatSelfHosted` on the mock transport: each behaviour runs through sync and async."""

from __future__ import annotations

import inspect
import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from langchain_core.exceptions import (
    ModelAPIError,
)
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.outputs import ChatResult
from pydantic import BaseModel, ValidationError

from langchain_selfhosted import ChatSelfHosted
from selfhosted_core import (
    CapabilityError,
    Config,
    InvalidRequestError,
    NotSupportedError,
    Provider,
    ServerError,
    UnknownModelError,
)
from tests.core import payloads
from tests.core.harness import SERVER_SAMPLING_VALUES, FakeServer, Route
from tests.lc_driver import LCDriver, merged

CHAT = "/v1/chat/completions"


def _answer(message: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "tiny",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
        **extra,
    }


def _weather(city: str) -> str:
    """Get the weather in a city."""
    return city


def _time(zone: str) -> str:
    """Get the time in a zone."""
    return zone


class Person(BaseModel):
    """A person."""

    name: str
    age: int


async def test_invoke_reports_usage_and_metadata(
    lc: LCDriver, chat: ChatSelfHosted, server: FakeServer
) -> None:
    server.on("POST", CHAT, payloads.LLAMA_OBJECT_ARGUMENTS)
    message = await lc.invoke(chat, "read it")
    assert isinstance(message, AIMessage)
    assert message.usage_metadata == {
        "input_tokens": 40,
        "output_tokens": 12,
        "total_tokens": 52,
        "input_token_details": {"cache_read": 32},
    }
    metadata = message.response_metadata
    assert metadata["model_name"] == "qwen3"
    assert metadata["finish_reason"] == "tool_calls"
    assert metadata["endpoint"] == "chat-a"
    assert metadata["model_provider"] == "selfhosted"
    assert metadata["billed_tokens"] == 104.0
    assert message.tool_calls == [
        {"name": "read_file", "args": {"path": "/etc/hosts"}, "id": "call_1", "type": "tool_call"}
    ]


async def test_stream_gives_parallel_calls_distinct_indexes(
    lc: LCDriver, chat: ChatSelfHosted, server: FakeServer
) -> None:
    server.stream(CHAT, payloads.OLLAMA_STREAM_INDEX_ZERO)
    chunks = await lc.stream(chat.bind_tools([_weather]), "read both")
    indexes = [piece["index"] for chunk in chunks for piece in chunk.tool_call_chunks]
    assert indexes == [0, 1]
    full = merged(chunks)
    assert [(call["id"], call["args"]) for call in full.tool_calls] == [
        ("abc123", {"filePath": "a.txt"}),
        ("def456", {"filePath": "b.txt"}),
    ]


async def test_truncated_arguments_stay_invalid(
    lc: LCDriver, chat: ChatSelfHosted, server: FakeServer
) -> None:
    # A call cut off by max_tokens: OpenAI's shape, finish_reason "length".
    call = {
        "id": "call_9",
        "type": "function",
        "function": {"name": "_weather", "arguments": '{"city": "Par'},
    }
    body = _answer({"role": "assistant", "content": None, "tool_calls": [call]})
    body["choices"][0]["finish_reason"] = "length"
    server.on("POST", CHAT, body)
    message = await lc.invoke(chat.bind_tools([_weather]), "weather?")
    assert message.tool_calls == []
    [invalid] = message.invalid_tool_calls
    assert invalid["args"] == '{"city": "Par'
    assert invalid["id"] == "call_9"
    assert invalid["error"]
    assert message.response_metadata["finish_reason"] == "length"


async def test_named_tool_choice_sends_only_that_tool_as_required(
    lc: LCDriver, chat: ChatSelfHosted, server: FakeServer
) -> None:
    server.on("POST", CHAT, payloads.LLAMA_OBJECT_ARGUMENTS)
    await lc.invoke(chat.bind_tools([_weather, _time], tool_choice="_time"), "time?")
    [payload] = server.payloads()
    assert [tool["function"]["name"] for tool in payload["tools"]] == ["_time"]
    assert payload["tool_choice"] == "required"


@pytest.mark.parametrize(
    ("choice", "sent"), [("any", "required"), (True, "required"), ("auto", "auto")]
)
async def test_tool_choice_spellings(
    lc: LCDriver, chat: ChatSelfHosted, server: FakeServer, choice: Any, sent: str
) -> None:
    server.on("POST", CHAT, payloads.LLAMA_OBJECT_ARGUMENTS)
    await lc.invoke(chat.bind_tools([_weather, _time], tool_choice=choice), "time?")
    [payload] = server.payloads()
    assert payload["tool_choice"] == sent
    assert len(payload["tools"]) == 2
    assert "parallel_tool_calls" not in payload


def test_bind_tools_refuses_a_choice_naming_no_tool(chat: ChatSelfHosted) -> None:
    with pytest.raises(InvalidRequestError, match="'_clock' names no bound tool"):
        chat.bind_tools([_weather], tool_choice="_clock")


async def test_structured_output_sends_the_schema_unforced(
    lc: LCDriver, chat: ChatSelfHosted, server: FakeServer
) -> None:
    server.on("POST", CHAT, _answer({"role": "assistant", "content": '{"name":"Ada","age":36}'}))
    person = await lc.invoke(chat.with_structured_output(Person), "Ada, 36")
    assert person == Person(name="Ada", age=36)
    [payload] = server.payloads()
    spec = payload["response_format"]["json_schema"]
    assert payload["response_format"]["type"] == "json_schema"
    assert spec["name"] == "Person"
    assert spec["description"] == "A person."
    assert "strict" not in spec
    assert "additionalProperties" not in spec["schema"]
    assert spec["schema"]["required"] == ["name", "age"]


async def test_structured_output_include_raw_keeps_parse_errors(
    lc: LCDriver, chat: ChatSelfHosted, server: FakeServer
) -> None:
    server.on("POST", CHAT, _answer({"role": "assistant", "content": '{"name":"Ada"}'}))
    result = await lc.invoke(chat.with_structured_output(Person, include_raw=True), "Ada")
    assert isinstance(result["raw"], AIMessage)
    assert result["parsed"] is None
    assert result["parsing_error"] is not None


async def test_structured_output_by_function_calling(
    lc: LCDriver, chat: ChatSelfHosted, server: FakeServer
) -> None:
    call = {
        "id": "c1",
        "type": "function",
        "function": {"name": "Person", "arguments": '{"name":"Ada","age":36}'},
    }
    server.on("POST", CHAT, _answer({"role": "assistant", "content": None, "tool_calls": [call]}))
    structured = chat.with_structured_output(Person, method="function_calling", strict=True)
    assert await lc.invoke(structured, "Ada, 36") == Person(name="Ada", age=36)
    [payload] = server.payloads()
    assert payload["tool_choice"] == "required"
    assert payload["tools"][0]["function"]["strict"] is True
    assert "response_format" not in payload


async def test_json_mode_asks_for_any_object(
    lc: LCDriver, chat: ChatSelfHosted, server: FakeServer
) -> None:
    server.on("POST", CHAT, _answer({"role": "assistant", "content": '{"a": 1}'}))
    result = await lc.invoke(
        chat.with_structured_output({"title": "Any", "type": "object"}, method="json_mode"), "x"
    )
    assert result == {"a": 1}
    assert server.payloads()[0]["response_format"] == {"type": "json_object"}


async def test_reasoning_lands_in_additional_kwargs_and_blocks(
    lc: LCDriver, chat: ChatSelfHosted, server: FakeServer
) -> None:
    server.on("POST", CHAT, payloads.VLLM_REASONING)
    message = await lc.invoke(chat, "capital of France?")
    assert message.additional_kwargs["reasoning_content"] == "The capital of France."
    assert message.content_blocks[0] == {"type": "reasoning", "reasoning": "The capital of France."}
    assert message.usage_metadata["output_token_details"] == {"reasoning": 5}


async def test_conversation_is_sent_in_openai_shape(
    lc: LCDriver, chat: ChatSelfHosted, server: FakeServer
) -> None:
    server.on("POST", CHAT, payloads.LLAMA_OBJECT_ARGUMENTS)
    history = [
        SystemMessage("Be brief."),
        HumanMessage("weather?", name="ada"),
        AIMessage("", tool_calls=[{"name": "_weather", "args": {"city": "Paris"}, "id": "c1"}]),
        ToolMessage("sunny", tool_call_id="c1"),
    ]
    await lc.invoke(chat.bind_tools([_weather]), history, stop=["\n\n"])
    [payload] = server.payloads()
    assert payload["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "weather?", "name": "ada"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "content": "sunny", "tool_call_id": "c1"},
    ]
    assert payload["stop"] == ["\n\n"]


async def test_sampling_fields_and_per_call_overrides(
    lc: LCDriver, provider: Provider, server: FakeServer
) -> None:
    server.on("POST", CHAT, payloads.LLAMA_OBJECT_ARGUMENTS)
    model = ChatSelfHosted(
        model="tiny",
        provider=provider,
        temperature=0.2,
        max_tokens=9,
        seed=7,
        extra_body={"cache_prompt": True},
    )
    await lc.invoke(model, "Hi", temperature=0.9, extra_body={"top_k": 3})
    [payload] = server.payloads()
    assert payload["temperature"] == 0.9
    assert payload["max_tokens"] == 9
    assert payload["seed"] == 7
    assert payload["cache_prompt"] is True
    assert payload["top_k"] == 3
    assert "max_completion_tokens" not in payload


REFUSED_MAX_TOKENS = (
    "max_tokens must be an integer of at least 1, not 0 (llama-server reads -1 as no limit, "
    "OpenAI refuses it); leave max_tokens unset for the server's own limit (model='tiny')"
)


async def test_max_tokens_below_one_is_refused_before_sending(
    lc: LCDriver, provider: Provider, server: FakeServer
) -> None:
    server.on("POST", CHAT, payloads.LLAMA_OBJECT_ARGUMENTS)
    per_call = ChatSelfHosted(model="tiny", provider=provider)
    with pytest.raises(InvalidRequestError) as called:
        await lc.invoke(per_call, "Hi", max_tokens=0)
    bound = ChatSelfHosted(model="tiny", provider=provider).bind(max_tokens=0)
    with pytest.raises(InvalidRequestError) as streamed:
        await lc.stream(bound, "Hi")
    with pytest.raises(InvalidRequestError) as configured:
        await lc.invoke(ChatSelfHosted(model="tiny", provider=provider, max_tokens=0), "Hi")
    assert {str(error.value) for error in (called, streamed, configured)} == {REFUSED_MAX_TOKENS}
    assert server.requests == []


PERSON_FORMAT = {
    "type": "json_schema",
    "json_schema": {"name": "Person", "schema": {"type": "object"}},
}


async def test_tools_with_a_json_schema_log_the_cores_one_warning(
    lc: LCDriver, chat: ChatSelfHosted, server: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.on("POST", CHAT, payloads.VLLM_REASONING)
    with caplog.at_level(logging.WARNING, logger="selfhosted_core"):
        await lc.invoke(chat.bind_tools([_weather]).bind(response_format=PERSON_FORMAT), "Hi")
        await lc.invoke(chat.bind_tools([_weather]), "Hi")
        await lc.invoke(chat.bind(response_format=PERSON_FORMAT), "Hi")
    assert [r.getMessage() for r in caplog.records if r.name == "selfhosted_core"] == [
        "tools and a json_schema response_format in one request: grammar-constrained servers "
        "(llama-server, vLLM) cannot return a tool call when the output is constrained to a "
        "schema, so the schema wins (model='tiny')"
    ]
    assert len(server.requests) == 3


HI = [{"role": "user", "content": "Hi"}]


@pytest.mark.parametrize(("name", "value"), sorted(SERVER_SAMPLING_VALUES.items()))
async def test_each_server_sampling_parameter_is_sent_per_call_and_bound(
    lc: LCDriver, chat: ChatSelfHosted, server: FakeServer, name: str, value: Any
) -> None:
    server.on("POST", CHAT, payloads.VLLM_REASONING)
    await lc.invoke(chat, "Hi", **{name: value})
    await lc.invoke(chat.bind(**{name: value}), "Hi")
    assert server.payloads() == [{"model": "tiny", "messages": HI, name: value}] * 2


async def test_server_sampling_sits_beside_openai_sampling_and_extra_body_wins(
    lc: LCDriver, chat: ChatSelfHosted, server: FakeServer
) -> None:
    server.on("POST", CHAT, payloads.VLLM_REASONING)
    bound = chat.bind(min_p=0.05, top_k=20)
    await lc.invoke(bound, "Hi", top_k=40, temperature=0.1, extra_body={"min_p": 0.1})
    assert server.payloads() == [
        {"model": "tiny", "messages": HI, "temperature": 0.1, "top_k": 40, "min_p": 0.1}
    ]


async def test_unexpected_call_arguments_are_refused(
    lc: LCDriver, chat: ChatSelfHosted, server: FakeServer
) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        await lc.invoke(chat, "Hi", top_kk=3)
    assert str(caught.value) == (
        "unexpected argument(s) ['top_kk']; the server sampling parameters (logit_bias, min_p, "
        "reasoning_effort, repeat_penalty, repetition_penalty, top_k, typical_p) are accepted "
        "by name, other server-specific parameters go in extra_body (model='tiny')"
    )
    assert server.requests == []


async def test_a_server_error_is_resent_only_when_the_model_opts_in(
    lc: LCDriver, provider: Provider, server: FakeServer
) -> None:
    ok: Route = (200, json.dumps(_answer({"role": "assistant", "content": "ok"})).encode(), {})
    boom: Route = (500, b'{"error":{"message":"boom"}}', {})
    replies: Iterator[Route] = iter([boom, boom, ok])
    server.on("POST", CHAT, lambda _: next(replies))
    # A 500 may come after work was done: the core does not resend it by default.
    with pytest.raises(ServerError):
        await lc.invoke(ChatSelfHosted(model="tiny", provider=provider, max_retries=2), "Hi")
    assert len(server.requests) == 1
    opted_in = ChatSelfHosted(model="tiny", provider=provider, max_retries=1, resend_unsafe=True)
    assert (await lc.invoke(opted_in, "Hi")).content == "ok"
    assert len(server.requests) == 3


@pytest.mark.parametrize(("max_retries", "sends"), [(None, 3), (0, 1), (1, 2), (4, 5)])
async def test_max_retries_bounds_the_sends_of_one_call(
    lc: LCDriver, provider: Provider, server: FakeServer, max_retries: int | None, sends: int
) -> None:
    server.on("POST", CHAT, payloads.LLAMA_LOADING, status=503)
    model = ChatSelfHosted(model="tiny", provider=provider, max_retries=max_retries)
    with pytest.raises(ServerError) as caught:
        await lc.invoke(model, "Hi")
    assert len(server.requests) == sends
    assert len(caught.value.attempts) == sends


async def test_no_retry_once_a_stream_has_output(
    lc: LCDriver, provider: Provider, server: FakeServer
) -> None:
    server.stream(CHAT, payloads.LLAMA_STREAM_ERROR_EVENT)
    model = ChatSelfHosted(model="tiny", provider=provider, max_retries=3)
    with pytest.raises(ModelAPIError) as caught:
        await lc.stream(model, "Hi")
    assert isinstance(caught.value, ServerError)
    assert len(server.requests) == 1


async def test_images_need_a_vision_endpoint(lc: LCDriver, chat: ChatSelfHosted) -> None:
    image = HumanMessage(
        [{"type": "text", "text": "what?"}, {"type": "image", "url": "https://x.test/a.png"}]
    )
    with pytest.raises(CapabilityError, match="vision"):
        await lc.invoke(chat, [image])


def test_unknown_model_names_the_known_ones(provider: Provider) -> None:
    with pytest.raises(UnknownModelError, match="'tiny', 'minilm'"):
        ChatSelfHosted(model="qwen3", provider=provider)


def test_profile_follows_declared_capabilities(chat: ChatSelfHosted) -> None:
    assert chat.profile is not None
    assert chat.profile["tool_calling"] is True
    assert chat.profile["structured_output"] is True
    assert chat.profile["image_inputs"] is False
    assert chat.profile["reasoning_output"] is False


def test_langsmith_params_name_the_model_actually_used(chat: ChatSelfHosted) -> None:
    assert chat._get_ls_params()["ls_provider"] == "selfhosted"
    assert chat._get_ls_params(model="minilm")["ls_model_name"] == "minilm"


def test_invocation_params_are_the_base_classes(chat: ChatSelfHosted) -> None:
    ours = chat._get_invocation_params(stop=["END"], temperature=0.5)
    assert ours == BaseChatModel._get_invocation_params(chat, stop=["END"], temperature=0.5)
    assert ours["_type"] == "selfhosted-chat"
    assert ours["model"] == "tiny"
    assert ours["stop"] == ["END"]
    assert ours["temperature"] == 0.5


@pytest.mark.parametrize("method", ["_generate", "_agenerate"])
def test_langchain_sees_run_manager_in_generate(chat: ChatSelfHosted, method: str) -> None:
    # LangChain reads this signature on every call to decide whether to pass `run_manager`.
    parameters = inspect.signature(getattr(chat, method)).parameters
    assert list(parameters) == ["messages", "stop", "run_manager", "kwargs"]


def test_an_overriding_generate_is_inspected_as_itself(provider: Provider) -> None:
    class Quiet(ChatSelfHosted):
        # Without `run_manager`, as LangChain still allows: the point of the test.
        def _generate(  # type: ignore[override]
            self, messages: list[BaseMessage], stop: list[str] | None = None, **kwargs: Any
        ) -> ChatResult:
            return super()._generate(messages, stop, **kwargs)

    model = Quiet(model="tiny", provider=provider)
    assert list(inspect.signature(model._generate).parameters) == ["messages", "stop", "kwargs"]


def test_import_loads_little_beyond_the_chat_model_base_and_core() -> None:
    code = (
        "import sys, json, langchain_core.language_models.chat_models, selfhosted_core; "
        "before = set(sys.modules); import langchain_selfhosted; "
        "print(json.dumps(sorted(set(sys.modules) - before)))"
    )
    loaded = json.loads(subprocess.check_output([sys.executable, "-c", code], text=True))
    ours = ("langchain_selfhosted", "selfhosted_core.", "langchain_core.embeddings")
    assert [module for module in loaded if not module.startswith(ours)] == []


def _llama_provider(server: FakeServer, **endpoint: Any) -> Provider:
    config = Config(
        endpoints=[
            {"url": "http://llama.test:8080", "id": "tiny", "server": "llama.cpp", **endpoint}
        ]
    )
    return Provider(config, transport=server.transport, async_transport=server.transport)


async def test_reasoning_goes_back_to_a_reasoning_endpoint(
    lc: LCDriver, server: FakeServer
) -> None:
    server.on("POST", CHAT, payloads.VLLM_REASONING)
    provider = _llama_provider(server, capabilities=["chat", "reasoning"])
    model = ChatSelfHosted(model="tiny", provider=provider)
    first = await lc.invoke(model, "capital of France?")
    await lc.invoke(model, [HumanMessage("capital of France?"), first, HumanMessage("and Spain?")])
    sent = server.payloads()[1]["messages"][1]
    assert sent == {
        "role": "assistant",
        "content": "Paris.",
        "reasoning_content": "The capital of France.",
    }


async def test_images_reach_a_vision_endpoint_as_image_url_parts(
    lc: LCDriver, server: FakeServer
) -> None:
    server.on("POST", CHAT, payloads.VLLM_REASONING)
    provider = _llama_provider(server, capabilities=["chat", "vision"])
    image = HumanMessage(
        [
            {"type": "text", "text": "what?"},
            {"type": "image", "base64": "iVBORw0K", "mime_type": "image/png"},
            {"type": "image_url", "image_url": {"url": "https://x.test/a.png", "detail": "low"}},
        ]
    )
    await lc.invoke(ChatSelfHosted(model="tiny", provider=provider), [image])
    assert server.payloads()[0]["messages"][0]["content"] == [
        {"type": "text", "text": "what?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0K"}},
        {"type": "image_url", "image_url": {"url": "https://x.test/a.png", "detail": "low"}},
    ]


async def test_audio_is_refused_before_sending(lc: LCDriver, chat: ChatSelfHosted) -> None:
    audio = HumanMessage([{"type": "audio", "base64": "UklGRg==", "mime_type": "audio/wav"}])
    with pytest.raises(NotSupportedError, match="'audio'"):
        await lc.invoke(chat, [audio])


async def test_timeout_applies_to_each_request(
    lc: LCDriver, provider: Provider, server: FakeServer
) -> None:
    server.on("POST", CHAT, payloads.VLLM_REASONING)
    await lc.invoke(ChatSelfHosted(model="tiny", provider=provider, timeout=7.5), "Hi")
    assert server.requests[0].extensions["timeout"]["read"] == pytest.approx(7.5, abs=0.5)


def test_token_counts_come_from_the_servers_tokenizer(server: FakeServer) -> None:
    server.on("POST", "/tokenize", payloads.LLAMA_TOKENIZE)
    server.on("POST", "/apply-template", payloads.LLAMA_APPLY_TEMPLATE)
    model = ChatSelfHosted(model="tiny", provider=_llama_provider(server))
    assert model.get_num_tokens("Hello there") == 3
    assert model.get_num_tokens_from_messages([SystemMessage("Be brief."), HumanMessage("Hi")]) == 3
    template = server.payloads()[1]
    assert template["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
    ]
    with pytest.raises(NotSupportedError, match="tools"):
        model.get_num_tokens_from_messages([HumanMessage("Hi")], tools=[_weather])


def test_profile_window_from_the_config(server: FakeServer) -> None:
    model = ChatSelfHosted(model="tiny", provider=_llama_provider(server, context_window=8192))
    assert model.profile is not None
    assert model.profile["max_input_tokens"] == 8192


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_refresh_profile_reads_the_servers_window(mode: str, server: FakeServer) -> None:
    server.on("GET", "/health", {"status": "ok"})
    server.on("GET", "/v1/models", payloads.LLAMA_MODELS)
    server.on("GET", "/props", payloads.LLAMA_PROPS)
    model = ChatSelfHosted(model="tiny", provider=_llama_provider(server))
    assert model.profile is not None
    assert "max_input_tokens" not in model.profile
    profile = model.refresh_profile() if mode == "sync" else await model.arefresh_profile()
    assert profile["max_input_tokens"] == 2048
    assert model.profile == profile


def test_misspelt_arguments_are_refused(provider: Provider) -> None:
    with pytest.raises(ValidationError, match="tempature"):
        ChatSelfHosted(model="tiny", provider=provider, tempature=0)


async def test_stream_retries_a_connection_failure_before_any_output(
    lc: LCDriver, provider: Provider, server: FakeServer
) -> None:
    attempts: list[int] = []

    def refuse_once(request: httpx2.Request) -> Route:
        attempts.append(1)
        if len(attempts) == 1:
            raise httpx2.ConnectError("connection refused", request=request)
        return 200, payloads.LLAMA_STREAM, {"content-type": "text/event-stream"}

    server.on("POST", CHAT, refuse_once)
    model = ChatSelfHosted(model="tiny", provider=provider, max_retries=1)
    assert merged(await lc.stream(model, "Hi")).content == "Hello there"
    assert len(attempts) == 2


# vLLM `stream_options.continuous_usage_stats` (vllm/entrypoints/openai/protocol.py
# StreamOptions): running usage totals on every chunk, not only a final one.
VLLM_CONTINUOUS_USAGE = (
    b'data: {"id":"c","object":"chat.completion.chunk","model":"tiny","choices":[{"index":0,'
    b'"delta":{"role":"assistant","content":"Hi"},"finish_reason":null}],'
    b'"usage":{"prompt_tokens":9,"completion_tokens":1,"total_tokens":10}}\n\n'
    b'data: {"id":"c","object":"chat.completion.chunk","model":"tiny","choices":[{"index":0,'
    b'"delta":{"content":"!"},"finish_reason":"stop"}],'
    b'"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}}\n\n'
    b"data: [DONE]\n\n"
)


async def test_running_usage_totals_are_not_added_up(
    lc: LCDriver, chat: ChatSelfHosted, server: FakeServer
) -> None:
    server.stream(CHAT, VLLM_CONTINUOUS_USAGE)
    full = merged(await lc.stream(chat, "Hi"))
    assert full.usage_metadata == {"input_tokens": 9, "output_tokens": 2, "total_tokens": 11}
    assert (await lc.invoke(chat, "Hi", stream=True)).usage_metadata == full.usage_metadata


async def test_json_mode_needs_no_schema(
    lc: LCDriver, chat: ChatSelfHosted, server: FakeServer
) -> None:
    server.on("POST", CHAT, _answer({"role": "assistant", "content": '{"b": [1]}'}))
    assert await lc.invoke(chat.with_structured_output(method="json_mode"), "x") == {"b": [1]}
    with pytest.raises(InvalidRequestError, match="needs a schema"):
        chat.with_structured_output()


def test_token_ids_only_from_a_custom_function(provider: Provider) -> None:
    with pytest.raises(NotSupportedError, match="custom_get_token_ids"):
        ChatSelfHosted(model="tiny", provider=provider).get_token_ids("Hi there")
    custom = ChatSelfHosted(model="tiny", provider=provider, custom_get_token_ids=lambda t: [1, 2])
    assert custom.get_token_ids("Hi") == [1, 2]
    assert custom.get_num_tokens("Hi") == 2


def test_cache_key_names_the_servers(server: FakeServer) -> None:
    one = ChatSelfHosted(model="tiny", provider=_llama_provider(server))
    other_config = Config(endpoints=[{"url": "http://other.test:8080", "id": "tiny"}])
    other = ChatSelfHosted(model="tiny", provider=Provider(other_config))
    assert one._get_llm_string() != other._get_llm_string()
    assert "http://other.test:8080/v1" in other._get_llm_string()
