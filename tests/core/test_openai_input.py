"""OpenAI request JSON as core types: what is kept, and refusals that name the field."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from selfhosted_core import (
    ImagePart,
    InvalidRequestError,
    Message,
    NotSupportedError,
    ResponseFormat,
    TextPart,
    Tool,
    ToolCall,
)
from selfhosted_core.openai_input import (
    messages_from_openai,
    response_format_from_openai,
    tool_choice_from_openai,
    tools_from_openai,
)


def one(message: dict[str, Any]) -> Message:
    (parsed,) = messages_from_openai([message])
    return parsed


# --- messages ------------------------------------------------------------------------------------


def test_text_messages_keep_role_content_and_name() -> None:
    messages = messages_from_openai(
        [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi", "name": "ann"},
        ]
    )
    assert messages == [
        Message(role="system", content="Be brief."),
        Message(role="user", content="Hi", name="ann"),
    ]


def test_developer_role_is_kept() -> None:
    assert one({"role": "developer", "content": "Answer in French."}) == Message(
        role="developer", content="Answer in French."
    )


def test_multi_part_text_is_joined_with_newlines() -> None:
    message = one(
        {
            "role": "user",
            "content": [{"type": "text", "text": "first"}, {"type": "text", "text": "second"}],
        }
    )
    assert message.content == "first\nsecond"


def test_image_parts_keep_the_parts_form_with_detail() -> None:
    message = one(
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {
                    "type": "image_url",
                    "image_url": {"url": "https://x.test/a.png", "detail": "high"},
                },
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
            ],
        }
    )
    assert message.content == [
        TextPart("What is this?"),
        ImagePart("https://x.test/a.png", "high"),
        ImagePart("data:image/png;base64,AAAA", None),
    ]


def test_image_url_given_as_a_bare_string_is_accepted() -> None:
    message = one({"role": "user", "content": [{"type": "image_url", "image_url": "https://x/b"}]})
    assert message.content == [ImagePart("https://x/b")]


def test_assistant_tool_call_with_string_arguments_is_parsed() -> None:
    message = one(
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        }
    )
    assert message.tool_calls == [
        ToolCall(
            id="call_1",
            name="get_weather",
            arguments='{"city": "Paris"}',
            args={"city": "Paris"},
        )
    ]
    assert message.content is None


def test_assistant_tool_call_with_object_arguments_becomes_json_text() -> None:
    message = one(
        {
            "role": "assistant",
            "tool_calls": [{"id": "c2", "function": {"name": "read", "arguments": {"path": "é"}}}],
        }
    )
    (call,) = message.tool_calls
    assert call.arguments == '{"path": "é"}'
    assert call.args == {"path": "é"}


def test_assistant_tool_call_with_empty_arguments_means_no_arguments() -> None:
    message = one(
        {
            "role": "assistant",
            "tool_calls": [{"id": "c3", "function": {"name": "f", "arguments": ""}}],
        }
    )
    assert message.tool_calls == [ToolCall(id="c3", name="f", arguments="", args={})]


@pytest.mark.parametrize(
    "raw", ["{not json", "[1, 2]", "[" * 100_000, '{"n": ' + "1" * 5_000 + "}"]
)
def test_assistant_tool_call_with_bad_arguments_is_refused_before_any_io(raw: str) -> None:
    """llama-server answers such history with a 500, which a router would blame on a replica."""
    with pytest.raises(InvalidRequestError) as caught:
        one(
            {
                "role": "assistant",
                "tool_calls": [{"id": "c3", "function": {"name": "f", "arguments": raw}}],
            }
        )
    assert str(caught.value).startswith(
        "messages[0].tool_calls[0].function.arguments is not a JSON object"
    )


def test_assistant_tool_call_without_id_gets_an_empty_id() -> None:
    message = one({"role": "assistant", "tool_calls": [{"function": {"name": "f"}}]})
    assert message.tool_calls == [ToolCall(id="", name="f", arguments="{}", args={})]


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_assistant_reasoning_is_kept_from_either_field(field: str) -> None:
    message = one({"role": "assistant", "content": "4", field: "Two and two."})
    assert (message.content, message.reasoning) == ("4", "Two and two.")


def test_reasoning_content_wins_over_reasoning() -> None:
    message = one({"role": "assistant", "reasoning_content": "first", "reasoning": "second"})
    assert message.reasoning == "first"


def test_tool_message_keeps_its_call_id() -> None:
    assert one({"role": "tool", "tool_call_id": "call_1", "content": "sunny"}) == Message(
        role="tool", content="sunny", tool_call_id="call_1"
    )


# --- refusals: the field is named ------------------------------------------------------------------

REFUSED: list[tuple[list[Any], type[Exception], str]] = [
    (
        [{"role": "bot", "content": "x"}],
        InvalidRequestError,
        "messages[0].role: Input should be 'system', 'developer', 'user', 'assistant' or 'tool'",
    ),
    (
        [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "tool_calls": [{"id": "c", "function": {"arguments": "{}"}}]},
        ],
        InvalidRequestError,
        "messages[1].tool_calls[0].function.name: Field required",
    ),
    (
        [{"role": "user", "content": "Hi"}, "not a message"],
        InvalidRequestError,
        "messages[1]: expected a JSON object",
    ),
    (
        [{"role": "user", "content": [{"type": "text"}]}],
        InvalidRequestError,
        "messages[0].content[0].text: Field required",
    ),
    (
        [
            {
                "role": "user",
                "content": [{"type": "image_url", "image_url": {"url": "u", "detail": "max"}}],
            }
        ],
        InvalidRequestError,
        "messages[0].content[0].image_url.detail: Input should be 'auto', 'low' or 'high'",
    ),
    (
        [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "a"},
                    {"type": "input_audio", "input_audio": {"data": "", "format": "wav"}},
                ],
            }
        ],
        NotSupportedError,
        "messages[0].content[1]: parts of type 'input_audio' are not supported; "
        "self-hosted chat endpoints take text and images",
    ),
    (
        [{"role": "user", "content": [{"type": "file", "file": {"file_id": "f1"}}]}],
        NotSupportedError,
        "messages[0].content[0]: parts of type 'file' are not supported; "
        "self-hosted chat endpoints take text and images",
    ),
]


@pytest.mark.parametrize(("messages", "kind", "text"), REFUSED)
def test_malformed_messages_are_refused_naming_the_field(
    messages: list[Any], kind: type[Exception], text: str
) -> None:
    with pytest.raises(kind) as caught:
        messages_from_openai(messages, model="tiny")
    assert type(caught.value) is kind
    assert str(caught.value) == f"{text} (model='tiny')"


def test_refusal_chains_the_pydantic_error_and_carries_the_model() -> None:
    with pytest.raises(InvalidRequestError) as caught:
        messages_from_openai([{"role": "bot"}], model="tiny")
    assert caught.value.model == "tiny"
    assert type(caught.value.__cause__).__name__ == "ValidationError"


# --- tools, tool_choice, response_format -----------------------------------------------------------


def test_tools_keep_name_description_schema_and_strict() -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    tools = tools_from_openai(
        [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": "Weather in a city",
                    "parameters": schema,
                    "strict": True,
                },
            },
            {"type": "function", "function": {"name": "now"}},
        ]
    )
    assert tools == [
        Tool(name="get_weather", description="Weather in a city", parameters=schema, strict=True),
        Tool(name="now", parameters={"type": "object", "properties": {}}),
    ]


def test_no_tools_is_an_empty_list() -> None:
    assert tools_from_openai(None) == []


@pytest.mark.parametrize(
    ("tools", "text"),
    [
        ([{"type": "function", "function": {}}], "tools[0].function.name: Field required"),
        (
            [{"type": "function", "function": {"name": "a"}}, {"type": "web_search"}],
            "tools[1].type: Input should be 'function'",
        ),
    ],
)
def test_malformed_tools_are_refused_naming_the_field(tools: list[Any], text: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        tools_from_openai(tools)
    assert str(caught.value) == text


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", "auto"),
        ("none", "none"),
        ("required", "required"),
        ({"type": "function", "function": {"name": "get_weather"}}, "get_weather"),
        (None, None),
    ],
)
def test_tool_choice_becomes_the_core_form(choice: Any, expected: str | None) -> None:
    assert tool_choice_from_openai(choice) == expected


def test_tool_choice_any_is_refused() -> None:
    with pytest.raises(InvalidRequestError) as caught:
        tool_choice_from_openai("any", model="tiny")
    assert str(caught.value) == (
        "tool_choice: Input should be 'auto', 'none' or 'required' (model='tiny')"
    )


def test_json_schema_format_keeps_name_strict_and_schema() -> None:
    schema = {"type": "object", "properties": {"name": {"type": "string"}}}
    parsed = response_format_from_openai(
        {
            "type": "json_schema",
            "json_schema": {"name": "Person", "strict": True, "schema": schema, "description": "A"},
        }
    )
    assert parsed == ResponseFormat(
        type="json_schema", schema=schema, name="Person", description="A", strict=True
    )


def test_json_schema_format_defaults_its_name() -> None:
    parsed = response_format_from_openai({"type": "json_schema", "json_schema": {"schema": {}}})
    assert parsed is not None
    assert (parsed.name, parsed.strict) == ("response", None)


def test_json_object_format_has_no_schema() -> None:
    assert response_format_from_openai({"type": "json_object"}) == ResponseFormat(
        type="json_object"
    )


@pytest.mark.parametrize("value", [{"type": "text"}, None])
def test_text_format_means_none(value: dict[str, Any] | None) -> None:
    assert response_format_from_openai(value) is None


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ({"type": "json_schema"}, "response_format.json_schema: Field required"),
        (
            {"type": "xml"},
            "response_format.type: Input should be 'json_schema', 'json_object' or 'text'",
        ),
    ],
)
def test_malformed_response_format_is_refused_naming_the_field(
    value: dict[str, Any], text: str
) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        response_format_from_openai(value)
    assert str(caught.value) == text


@pytest.mark.parametrize(
    "call",
    [
        lambda: messages_from_openai([{"role": "x"}], model="m1"),
        lambda: tools_from_openai([{}], model="m1"),
        lambda: tool_choice_from_openai("any", model="m1"),
        lambda: response_format_from_openai({"type": "json_schema"}, model="m1"),
    ],
)
def test_every_refusal_is_an_invalid_request_carrying_the_model(
    call: Callable[[], object],
) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        call()
    assert caught.value.model == "m1"
    assert isinstance(caught.value, ValueError)
