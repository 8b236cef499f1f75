from __future__ import annotations

from typing import Any

import pytest

from selfhosted_core import (
    SERVER_SAMPLING,
    ChatRequest,
    EmbeddingRequest,
    ImagePart,
    InvalidRequestError,
    Message,
    ModelEndpoint,
    ResponseFormat,
    ServerKind,
    TextPart,
    Tool,
    ToolCall,
)
from selfhosted_core._request import (
    chat_payload,
    chat_warnings,
    embedding_inputs,
    embedding_payload,
    validate_chat,
)
from selfhosted_core.profiles import profile_for
from tests.core.harness import SERVER_SAMPLING_VALUES

ENDPOINT = ModelEndpoint(url="http://h:1", id="qwen3", served_model="Qwen/Qwen3-8B")
WEATHER = Tool(
    name="weather",
    description="Weather for a city",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}},
)
CLOCK = Tool(name="clock")


def chat(**fields: Any) -> ChatRequest:
    fields.setdefault("messages", [Message(role="user", content="Hi")])
    return ChatRequest(model="qwen3", **fields)


def payload(
    server: ServerKind = ServerKind.GENERIC, *, stream: bool = False, **fields: Any
) -> dict[str, Any]:
    built = chat(**fields)
    validate_chat(built)
    return chat_payload(built, ENDPOINT, profile_for(server), stream=stream)


def validate(**fields: Any) -> None:
    validate_chat(chat(**fields))


def test_minimal_payload_sends_the_served_model_and_nothing_unset() -> None:
    assert payload() == {"model": "Qwen/Qwen3-8B", "messages": [{"role": "user", "content": "Hi"}]}


def test_sampling_fields_use_max_tokens() -> None:
    sent = payload(
        temperature=0.2,
        top_p=0.9,
        max_tokens=64,
        stop=["\n"],
        seed=7,
        frequency_penalty=0.1,
        presence_penalty=0.3,
    )
    assert sent["max_tokens"] == 64
    assert "max_completion_tokens" not in sent
    assert (sent["temperature"], sent["top_p"], sent["stop"], sent["seed"]) == (0.2, 0.9, ["\n"], 7)
    assert (sent["frequency_penalty"], sent["presence_penalty"]) == (0.1, 0.3)


def test_every_stream_asks_for_usage() -> None:
    sent = payload(stream=True)
    assert sent["stream"] is True
    assert sent["stream_options"] == {"include_usage": True}


def test_tools_as_given_strict_and_parallel_only_when_set() -> None:
    sent = payload(tools=[WEATHER])
    assert sent["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "weather",
                "description": "Weather for a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    assert "parallel_tool_calls" not in sent
    assert "tool_choice" not in sent
    strict = payload(tools=[Tool(name="f", strict=True)], parallel_tool_calls=False)
    assert strict["tools"][0]["function"]["strict"] is True
    assert strict["parallel_tool_calls"] is False


def test_named_tool_choice_sends_only_that_tool_as_required() -> None:
    sent = payload(tools=[WEATHER, CLOCK], tool_choice="clock")
    assert [tool["function"]["name"] for tool in sent["tools"]] == ["clock"]
    assert sent["tool_choice"] == "required"


def test_named_tool_choice_object_form_where_the_server_honours_it() -> None:
    sent = payload(ServerKind.VLLM, tools=[WEATHER, CLOCK], tool_choice="clock")
    assert len(sent["tools"]) == 2
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "clock"}}


@pytest.mark.parametrize("choice", ["auto", "none", "required"])
def test_keyword_tool_choices_pass_through(choice: str) -> None:
    assert payload(tools=[WEATHER], tool_choice=choice)["tool_choice"] == choice


def test_tool_choice_naming_an_absent_tool_is_refused() -> None:
    with pytest.raises(InvalidRequestError, match="'nope', which is not among the tools"):
        validate(tools=[WEATHER], tool_choice="nope")
    with pytest.raises(InvalidRequestError, match="given without tools"):
        validate(tool_choice="required")


def test_no_messages_is_refused() -> None:
    with pytest.raises(InvalidRequestError, match="at least one message"):
        validate(messages=[])


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
        (False, "bool False"),
        (1.5, "float 1.5"),
        (64.0, "float 64.0"),
        ("64", "str '64'"),
    ],
)
def test_max_tokens_must_be_an_integer_of_at_least_one(max_tokens: Any, problem: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        validate(max_tokens=max_tokens)
    assert str(caught.value) == (
        f"max_tokens must be an integer of at least 1, not {problem} (model='qwen3')"
    )


def test_max_tokens_of_one_is_sent() -> None:
    assert payload(max_tokens=1)["max_tokens"] == 1


SCHEMA = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}


def test_json_schema_response_format_without_forcing_strict() -> None:
    sent = payload(response_format=ResponseFormat(type="json_schema", schema=SCHEMA, name="A"))
    assert sent["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "A", "schema": SCHEMA},
    }


def test_json_schema_needs_a_schema() -> None:
    with pytest.raises(InvalidRequestError, match="needs a schema"):
        validate(response_format=ResponseFormat(type="json_schema"))


SCHEMA_WINS = (
    "tools and a json_schema response_format in one request: grammar-constrained servers "
    "(llama-server, vLLM) cannot return a tool call when the output is constrained to a schema, "
    "so the schema wins (model='qwen3')"
)


def test_tools_with_a_json_schema_are_warned_that_the_schema_wins() -> None:
    fmt = ResponseFormat(type="json_schema", schema=SCHEMA)
    assert chat_warnings(chat(tools=[WEATHER], response_format=fmt)) == [SCHEMA_WINS]
    assert chat_warnings(chat(tools=[WEATHER], tool_choice="weather", response_format=fmt)) == [
        SCHEMA_WINS
    ]


@pytest.mark.parametrize(
    "fields",
    [
        {"tools": [WEATHER]},
        {"response_format": ResponseFormat(type="json_schema", schema=SCHEMA)},
        {"tools": [WEATHER], "response_format": ResponseFormat(type="json_object")},
        {
            "tools": [WEATHER],
            "tool_choice": "none",
            "response_format": ResponseFormat(type="json_schema", schema=SCHEMA),
        },
    ],
    ids=["tools-only", "schema-only", "tools-with-json-object", "tool-choice-none"],
)
def test_no_warning_without_tools_that_a_schema_would_silence(fields: dict[str, Any]) -> None:
    assert chat_warnings(chat(**fields)) == []


def test_json_mode_where_json_object_is_rejected() -> None:
    fmt = ResponseFormat(type="json_object")
    assert payload(response_format=fmt)["response_format"] == {"type": "json_object"}
    assert payload(ServerKind.LMSTUDIO, response_format=fmt)["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "response", "schema": {"type": "object"}},
    }


def test_tgi_grammar_form() -> None:
    fmt = ResponseFormat(type="json_schema", schema=SCHEMA)
    assert payload(ServerKind.TGI, response_format=fmt)["response_format"] == {
        "type": "json",
        "value": SCHEMA,
    }


def test_the_server_sampling_vocabulary_is_exactly_these_names() -> None:
    assert sorted(SERVER_SAMPLING) == [
        "logit_bias",
        "min_p",
        "reasoning_effort",
        "repeat_penalty",
        "repetition_penalty",
        "top_k",
        "typical_p",
    ]


def test_the_adapter_tests_give_every_server_sampling_parameter() -> None:
    assert set(SERVER_SAMPLING_VALUES) == SERVER_SAMPLING


def test_server_sampling_is_sent_as_given_unless_none() -> None:
    sent = payload(
        temperature=0.2,
        server_sampling={"top_k": 40, "min_p": 0.05, "typical_p": None, "logit_bias": {"15": -100}},
    )
    assert sent == {
        "model": "Qwen/Qwen3-8B",
        "messages": [{"role": "user", "content": "Hi"}],
        "temperature": 0.2,
        "top_k": 40,
        "min_p": 0.05,
        "logit_bias": {"15": -100},
    }


def test_extra_body_wins_over_server_sampling() -> None:
    sent = payload(server_sampling={"top_k": 40}, extra_body={"top_k": 10, "cache_prompt": True})
    assert (sent["top_k"], sent["cache_prompt"]) == (10, True)


def test_server_sampling_names_outside_the_vocabulary_are_refused() -> None:
    with pytest.raises(InvalidRequestError) as caught:
        validate(server_sampling={"top_kk": 40, "cache_prompt": True, "top_k": 40})
    assert str(caught.value) == (
        "server_sampling names ['cache_prompt', 'top_kk'], which are not server sampling "
        "parameters (logit_bias, min_p, reasoning_effort, repeat_penalty, repetition_penalty, "
        "top_k, typical_p); other server parameters go in extra_body (model='qwen3')"
    )


def test_extra_body_is_merged_last() -> None:
    sent = payload(max_tokens=5, extra_body={"max_tokens": 9, "cache_prompt": True})
    assert (sent["max_tokens"], sent["cache_prompt"]) == (9, True)


def test_messages_with_parts_tool_calls_and_results() -> None:
    call = ToolCall(
        id="abcdefghi", name="weather", arguments='{"city":"Oslo"}', args={"city": "Oslo"}
    )
    sent = payload(
        messages=[
            Message(role="system", content="Be brief."),
            Message(
                role="user",
                content=[TextPart("What is this?"), ImagePart("data:image/png;base64,AA", "low")],
            ),
            Message(role="assistant", content=None, tool_calls=[call]),
            Message(role="tool", content="12 C", tool_call_id="abcdefghi", name="weather"),
        ]
    )
    assert sent["messages"] == [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {
                    "type": "image_url",
                    "image_url": {"url": "data:image/png;base64,AA", "detail": "low"},
                },
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "abcdefghi",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city":"Oslo"}'},
                }
            ],
        },
        {"role": "tool", "content": "12 C", "name": "weather", "tool_call_id": "abcdefghi"},
    ]


REASONER = ModelEndpoint(url="http://h:1", id="qwen3", capabilities=["chat", "reasoning"])
HISTORY = [
    Message(role="user", content="2 + 2?", reasoning="not an assistant's"),
    Message(role="assistant", content="4", reasoning="Two and two make four."),
    Message(role="user", content="And 3 + 3?"),
]


@pytest.mark.parametrize(
    ("server", "field"),
    [
        # common/chat.cpp common_chat_msgs_parse_oaicompat reads message["reasoning_content"].
        (ServerKind.LLAMA_CPP, "reasoning_content"),
        # vllm/entrypoints/chat_utils.py _parse_chat_message_content: message.get("reasoning").
        (ServerKind.VLLM, "reasoning"),
        # python/sglang/srt/entrypoints/openai/protocol.py ChatCompletionMessageGenericParam.
        (ServerKind.SGLANG, "reasoning_content"),
        # ollama/ollama openai/openai.go Message.Reasoning `json:"reasoning"`.
        (ServerKind.OLLAMA, "reasoning"),
        (ServerKind.GENERIC, "reasoning_content"),
    ],
)
def test_assistant_reasoning_goes_back_under_the_field_the_server_reads(
    server: ServerKind, field: str
) -> None:
    request = ChatRequest(model="qwen3", messages=HISTORY)
    sent = chat_payload(request, REASONER, profile_for(server), stream=False)
    assert sent["messages"] == [
        {"role": "user", "content": "2 + 2?"},
        {"role": "assistant", "content": "4", field: "Two and two make four."},
        {"role": "user", "content": "And 3 + 3?"},
    ]


def test_reasoning_is_not_sent_to_a_model_not_declared_reasoning() -> None:
    sent = payload(ServerKind.LLAMA_CPP, messages=HISTORY)
    assert sent["messages"][1] == {"role": "assistant", "content": "4"}


def test_embeddings_are_sent_as_text_asking_for_floats() -> None:
    request = EmbeddingRequest(model="minilm", input="just one text")
    texts = embedding_inputs(request)
    assert texts == ["just one text"]
    assert embedding_payload(texts, request, ENDPOINT) == {
        "model": "Qwen/Qwen3-8B",
        "input": ["just one text"],
        "encoding_format": "float",
    }


def test_token_ids_are_refused_as_embedding_input() -> None:
    with pytest.raises(InvalidRequestError, match=r"input\[1\] is list"):
        embedding_inputs(EmbeddingRequest(model="m", input=["a", [1, 2]]))  # type: ignore[list-item]
