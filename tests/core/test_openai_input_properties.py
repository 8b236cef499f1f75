"""Properties of reading OpenAI's request JSON: core types, or a refusal naming the field.

The refusal is an `InvalidRequestError` (or `NotSupportedError` for parts no server takes)
whose message starts with the parameter's name and which carries the model.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, get_args

import pytest
from hypothesis import example, given

from selfhosted_core import ImagePart, InvalidRequestError, NotSupportedError, Role, TextPart
from selfhosted_core.openai_input import (
    messages_from_openai,
    response_format_from_openai,
    tool_choice_from_openai,
    tools_from_openai,
)
from tests.strategies import (
    openai_messages,
    openai_response_formats,
    openai_tool_choices,
    openai_tools,
)

MODEL = "m1"


def read_or_refuse(read: Callable[..., Any], value: Any, parameter: str) -> Any:
    """What `read` made of `value`, or None once its refusal was checked."""
    try:
        return read(value, model=MODEL)
    except (InvalidRequestError, NotSupportedError) as exc:
        refusal = exc
    assert refusal.message.startswith(parameter), refusal.message
    assert refusal.model == MODEL
    return None


@given(openai_messages)
@example(1.5)
@example(True)
@example("Hi")
@example({"role": "user", "content": "Hi"})
@example(
    [{"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": "1" * 5_000}}]}]
)
def test_any_messages_are_read_or_refused_naming_the_field(messages: Any) -> None:
    for message in read_or_refuse(messages_from_openai, messages, "messages") or ():
        assert message.role in get_args(Role)
        content = message.content
        assert content is None or isinstance(content, str) or content
        for part in () if content is None or isinstance(content, str) else content:
            assert isinstance(part, TextPart | ImagePart)
        for call in message.tool_calls:
            assert isinstance(call.args, dict)


@given(openai_tools)
@example(1.5)
@example(0)
@example({"type": "function", "function": {"name": "now"}})
def test_any_tools_are_read_or_refused_naming_the_field(tools: Any) -> None:
    for tool in read_or_refuse(tools_from_openai, tools, "tools") or ():
        assert isinstance(tool.name, str)
        assert isinstance(tool.parameters, dict)


@given(openai_tool_choices)
def test_any_tool_choice_is_read_or_refused_naming_the_field(choice: Any) -> None:
    read_or_refuse(tool_choice_from_openai, choice, "tool_choice")


@given(openai_response_formats)
def test_any_response_format_is_read_or_refused_naming_the_field(value: Any) -> None:
    read_or_refuse(response_format_from_openai, value, "response_format")


@pytest.mark.parametrize("read", [messages_from_openai, tools_from_openai])
@pytest.mark.parametrize(
    ("value", "kind"), [(1.5, "float"), (True, "bool"), ("Hi", "str"), ({"a": 1}, "dict")]
)
def test_a_list_parameter_given_something_else_is_refused_as_such(
    read: Callable[..., object], value: Any, kind: str
) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        read(value, model=MODEL)
    assert (
        str(caught.value)
        == f"{read.__name__.split('_')[0]}: expected a list, not {kind} (model='m1')"
    )
