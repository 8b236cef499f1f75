"""Requests built by hand: a field of the wrong type is refused naming it, before any I/O."""

from __future__ import annotations

import math
from typing import Any

import pytest

from selfhosted_core import (
    ChatRequest,
    EmbeddingRequest,
    InvalidRequestError,
    Message,
    ModelEndpoint,
    ResponseFormat,
    TextPart,
    Tool,
    ToolCall,
)
from selfhosted_core._request import (
    chat_payload,
    embedding_inputs,
    validate_chat,
    validate_routing,
)
from selfhosted_core.profiles import ServerKind, profile_for

HI = [Message(role="user", content="Hi")]


def refusal(**fields: Any) -> str:
    fields.setdefault("messages", HI)
    with pytest.raises(InvalidRequestError) as caught:
        validate_chat(ChatRequest(model="qwen3", **fields))
    assert caught.value.model == "qwen3"
    return caught.value.message


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"messages": "Hi"}, "messages must be a list, not str 'Hi'"),
        ({"messages": [HI[0], "Hi"]}, "messages[1] must be a Message, not str 'Hi'"),
        (
            {"messages": [Message(role="bot", content="Hi")]},  # type: ignore[arg-type]
            "messages[0].role must be one of ['system', 'developer', 'user', 'assistant', "
            "'tool'], not str 'bot'",
        ),
        (
            {"messages": [Message(role="user", content=5)]},  # type: ignore[arg-type]
            "messages[0].content must be a string or a list of parts, not int 5",
        ),
        (
            {"messages": [Message(role="user", content=[TextPart(None)])]},  # type: ignore[arg-type]
            "messages[0].content[0].text must be a string, not NoneType None",
        ),
        (
            {"messages": [Message(role="assistant", tool_calls=[{"name": "f"}])]},  # type: ignore[list-item]
            "messages[0].tool_calls[0] must be a ToolCall, not dict {'name': 'f'}",
        ),
        (
            {
                "messages": [
                    Message(
                        role="assistant",
                        tool_calls=[ToolCall(id="c1", name="f", arguments={}, args={})],  # type: ignore[arg-type]
                    )
                ]
            },
            "messages[0].tool_calls[0].arguments must be a string, not dict {}",
        ),
        (
            {"tools": [Tool(name="f", parameters="object")]},  # type: ignore[arg-type]
            "tools[0].parameters must be a JSON schema (a mapping), not str 'object'",
        ),
        (
            {"response_format": "json_object"},
            "response_format must be a ResponseFormat, not str 'json_object'",
        ),
        (
            {"response_format": ResponseFormat(type="text")},  # type: ignore[arg-type]
            "response_format.type must be one of ['json_schema', 'json_object'], not str 'text'",
        ),
        ({"temperature": math.nan}, "temperature must be a finite number, not float nan"),
        ({"top_p": "0.9"}, "top_p must be a finite number, not str '0.9'"),
        ({"seed": True}, "seed must be an integer, not bool True"),
        ({"stop": [1]}, "stop[0] must be a string, not int 1"),
        ({"extra_body": "cache_prompt"}, "extra_body must be a mapping, not str 'cache_prompt'"),
        (
            {"extra_body": {"x": {"y": [math.inf]}}},
            "extra_body.x.y[0] is inf, which JSON cannot hold",
        ),
        (
            {"extra_body": {"stream": True}},
            "extra_body may not set stream: the request's own fields write them",
        ),
        (
            {"server_sampling": {"top_k": math.nan}},
            "server_sampling.top_k is nan, which JSON cannot hold",
        ),
        ({"tool_choice": 1}, "tool_choice must be a string, not int 1"),
    ],
)
def test_a_chat_field_of_the_wrong_type_is_refused_naming_it(
    fields: dict[str, Any], message: str
) -> None:
    assert refusal(**fields) == message


def test_a_long_value_is_shown_cut_short() -> None:
    assert refusal(top_p="x" * 100) == f"top_p must be a finite number, not str '{'x' * 56}..."


def test_a_body_holding_itself_is_refused() -> None:
    body: dict[str, Any] = {}
    body["again"] = body
    assert refusal(extra_body=body).startswith("extra_body.again.again.again")
    assert refusal(extra_body=body).endswith("is nested more than 100 levels deep")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"model": None}, "model must be a model id (a string), not NoneType None"),
        ({"timeout": 0}, "timeout must be a finite number of seconds > 0, not int 0"),
        ({"timeout": math.inf}, "timeout must be a finite number of seconds > 0, not float inf"),
        ({"timeout": "5"}, "timeout must be a finite number of seconds > 0, not str '5'"),
        ({"endpoint": 1}, "endpoint must be a replica's label or URL, not int 1"),
        ({"strict_endpoint": None}, "strict_endpoint must be a bool, not NoneType None"),
        ({"resend_unsafe": 1}, "resend_unsafe must be a bool, not int 1"),
    ],
)
def test_a_routing_field_of_the_wrong_type_is_refused_for_either_request(
    fields: dict[str, Any], message: str
) -> None:
    for request in (
        ChatRequest(**{"model": "qwen3", "messages": HI, **fields}),
        EmbeddingRequest(**{"model": "minilm", "input": ["a"], **fields}),
    ):
        with pytest.raises(InvalidRequestError) as caught:
            validate_routing(request)
        assert caught.value.message == message


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"input": 3}, "input must be a text or a list of texts, not int 3"),
        ({"input": b"a"}, "input must be a text or a list of texts, not bytes b'a'"),
        ({"extra_body": {"x": math.nan}}, "extra_body.x is nan, which JSON cannot hold"),
        (
            {"extra_body": {"input": [], "encoding_format": "base64"}},
            "extra_body may not set encoding_format, input: the request's own fields write them",
        ),
    ],
)
def test_an_embedding_field_of_the_wrong_type_is_refused_naming_it(
    fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        embedding_inputs(EmbeddingRequest(**{"model": "minilm", "input": ["a"], **fields}))
    assert caught.value.message == message


def test_a_bare_stop_string_is_one_stop_sequence() -> None:
    request = ChatRequest(model="qwen3", messages=HI, stop="END")
    validate_chat(request)
    endpoint = ModelEndpoint(url="http://h:1", id="qwen3")
    payload = chat_payload(request, endpoint, profile_for(ServerKind.GENERIC), stream=False)
    assert payload["stop"] == ["END"]
