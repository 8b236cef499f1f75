"""Chat requests in OpenAI's JSON, as core types.

LiteLLM hands its handlers the caller's OpenAI-style `messages`, `tools`, `tool_choice` and
`response_format`; LangChain's `bind_tools` and `with_structured_output` carry the same JSON.
Both adapters read it here, through pydantic models of the request JSON, so a malformed message
is refused before any I/O with an `InvalidRequestError` naming the field
(`messages[2].tool_calls[0].function.name: Field required`).

Example:
    >>> from selfhosted_core.openai_input import messages_from_openai
    >>> messages_from_openai([{"role": "user", "content": "Hi"}])
    [Message(role='user', content='Hi', ...)]
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from selfhosted_core.errors import InvalidRequestError, NotSupportedError
from selfhosted_core.types import (
    ContentPart,
    ImagePart,
    Message,
    ResponseFormat,
    TextPart,
    Tool,
    ToolCall,
)

__all__ = [
    "messages_from_openai",
    "response_format_from_openai",
    "tool_choice_from_openai",
    "tools_from_openai",
]


class _In(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _TextIn(_In):
    type: Literal["text"]
    text: str


class _ImageUrlIn(_In):
    url: str
    detail: Literal["auto", "low", "high"] | None = None


class _ImageIn(_In):
    type: Literal["image_url"]
    image_url: _ImageUrlIn | str


class _PartTypeIn(_In):
    type: str


class _FunctionCallIn(_In):
    name: str
    arguments: str | dict[str, Any] = "{}"
    """A JSON string per OpenAI; an object is accepted as servers that send one do."""


class _ToolCallIn(_In):
    id: str | None = None
    type: Literal["function"] = "function"
    function: _FunctionCallIn


class _MessageIn(_In):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None
    tool_calls: list[_ToolCallIn] | None = None
    tool_call_id: str | None = None
    reasoning_content: str | None = None
    reasoning: str | None = None


class _FunctionIn(_In):
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class _ToolIn(_In):
    type: Literal["function"]
    function: _FunctionIn


class _NamedFunctionIn(_In):
    name: str


class _ToolChoiceIn(_In):
    type: Literal["function"]
    function: _NamedFunctionIn


class _JsonSchemaIn(_In):
    name: str = "response"
    description: str | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None


class _JsonSchemaFormatIn(_In):
    type: Literal["json_schema"]
    json_schema: _JsonSchemaIn


class _FormatTypeIn(_In):
    type: Literal["json_schema", "json_object", "text"]


_MESSAGES: TypeAdapter[list[_MessageIn]] = TypeAdapter(list[_MessageIn])
_PART_TYPE: TypeAdapter[_PartTypeIn] = TypeAdapter(_PartTypeIn)
_TEXT: TypeAdapter[_TextIn] = TypeAdapter(_TextIn)
_IMAGE: TypeAdapter[_ImageIn] = TypeAdapter(_ImageIn)
_TOOLS: TypeAdapter[list[_ToolIn]] = TypeAdapter(list[_ToolIn])
_TOOL_CHOICE: TypeAdapter[Literal["auto", "none", "required"] | _ToolChoiceIn] = TypeAdapter(
    Literal["auto", "none", "required"] | _ToolChoiceIn
)
_FORMAT_TYPE: TypeAdapter[_FormatTypeIn] = TypeAdapter(_FormatTypeIn)
_JSON_SCHEMA: TypeAdapter[_JsonSchemaFormatIn] = TypeAdapter(_JsonSchemaFormatIn)


def messages_from_openai(
    messages: Sequence[Mapping[str, Any]], *, model: str | None = None
) -> list[Message]:
    """OpenAI chat messages as core messages.

    Text parts of a multi-part message are joined with newlines into one string (as vLLM's
    chat template input joins them); image parts keep the parts form. Assistant tool calls keep
    their `arguments` text, which must be a JSON object; `reasoning_content` (or `reasoning`)
    on an assistant message is kept for servers that read it back.

    Raises:
        InvalidRequestError: A message does not have OpenAI's shape; the field is named.
        NotSupportedError: A part is audio, a file or video, which chat servers do not take.
    """
    parsed = _validate(_MESSAGES, _listed(messages, "messages", model), "messages", model)
    return [_message(index, message, model) for index, message in enumerate(parsed)]


def tools_from_openai(
    tools: Sequence[Mapping[str, Any]] | None, *, model: str | None = None
) -> list[Tool]:
    """OpenAI function tools (`{"type": "function", "function": {...}}`) as core tools."""
    if tools is None:
        return []
    parsed = _validate(_TOOLS, _listed(tools, "tools", model), "tools", model)
    return [
        Tool(
            name=tool.function.name,
            description=tool.function.description,
            parameters=tool.function.parameters or {"type": "object", "properties": {}},
            strict=tool.function.strict,
        )
        for tool in parsed
    ]


def tool_choice_from_openai(
    choice: str | Mapping[str, Any] | None, *, model: str | None = None
) -> str | None:
    """OpenAI's `tool_choice` as the core's: `auto`, `none`, `required` or a tool's name."""
    if choice is None:
        return None
    parsed = _validate(_TOOL_CHOICE, choice, "tool_choice", model)
    return parsed if isinstance(parsed, str) else parsed.function.name


def response_format_from_openai(
    value: Mapping[str, Any] | None, *, model: str | None = None
) -> ResponseFormat | None:
    """OpenAI's `response_format` as a `ResponseFormat`; `{"type": "text"}` means none."""
    if value is None:
        return None
    kind = _validate(_FORMAT_TYPE, value, "response_format", model).type
    if kind == "text":
        return None
    if kind == "json_object":
        return ResponseFormat(type="json_object")
    spec = _validate(_JSON_SCHEMA, value, "response_format", model).json_schema
    return ResponseFormat(
        type="json_schema",
        schema=spec.schema_,
        name=spec.name,
        description=spec.description,
        strict=spec.strict,
    )


def _message(index: int, message: _MessageIn, model: str | None) -> Message:
    content = _content(index, message.content, model)
    if message.role == "assistant":
        calls = [
            _tool_call(f"messages[{index}].tool_calls[{number}]", call, model)
            for number, call in enumerate(message.tool_calls or ())
        ]
        return Message(
            role="assistant",
            content=content,
            name=message.name,
            tool_calls=calls,
            reasoning=message.reasoning_content or message.reasoning,
        )
    if message.role == "tool":
        return Message(role="tool", content=content, tool_call_id=message.tool_call_id)
    return Message(role=message.role, content=content, name=message.name)


def _content(
    index: int, content: str | list[dict[str, Any]] | None, model: str | None
) -> str | list[ContentPart] | None:
    if content is None or isinstance(content, str):
        return content
    parts: list[ContentPart] = []
    for number, raw in enumerate(content):
        where = f"messages[{index}].content[{number}]"
        kind = _validate(_PART_TYPE, raw, where, model).type
        if kind == "text":
            parts.append(TextPart(_validate(_TEXT, raw, where, model).text))
        elif kind == "image_url":
            image = _validate(_IMAGE, raw, where, model).image_url
            url, detail = (image, None) if isinstance(image, str) else (image.url, image.detail)
            parts.append(ImagePart(url, detail))
        else:
            raise NotSupportedError(
                f"{where}: parts of type {kind!r} are not supported; "
                "self-hosted chat endpoints take text and images",
                model=model,
            )
    if all(isinstance(part, TextPart) for part in parts):
        return "\n".join(part.text for part in parts if isinstance(part, TextPart))
    return parts


def _tool_call(where: str, call: _ToolCallIn, model: str | None) -> ToolCall:
    arguments = call.function.arguments
    if isinstance(arguments, dict):
        return ToolCall(
            id=call.id or "",
            name=call.function.name,
            arguments=json.dumps(arguments, ensure_ascii=False),
            args=arguments,
        )
    try:
        args = json.loads(arguments) if arguments.strip() else {}
    except (ValueError, RecursionError):
        # Not JSON, or JSON Python will not read: an integer of more than 4,300 digits, or
        # `[[[[...` (json.loads recurses once per nesting level). Malformed, not a crash.
        args = None
    if not isinstance(args, dict):
        # Servers answer such history with a 5xx (llama-server: "Failed to parse tool call
        # arguments"), which a router would blame on the replica; refused here as the
        # caller's mistake instead.
        raise InvalidRequestError(
            f"{where}.function.arguments is not a JSON object: {arguments[:80]!r}", model=model
        )
    return ToolCall(id=call.id or "", name=call.function.name, arguments=arguments, args=args)


def _listed(value: object, where: str, model: str | None) -> list[Any]:
    """A JSON array parameter as a list; text, a mapping or a number is refused as not one.

    `list()` would take a string or a mapping apart and refuse its first character or key as a
    message, and raise a bare `TypeError` for a number.
    """
    if isinstance(value, Sequence) and not isinstance(value, str | bytes | bytearray):
        return list(value)
    raise InvalidRequestError(f"{where}: expected a list, not {type(value).__name__}", model=model)


def _validate(adapter: TypeAdapter[Any], value: Any, where: str, model: str | None) -> Any:
    try:
        return adapter.validate_python(value)
    except ValidationError as exc:
        problem = exc.errors(include_url=False)[0]
        # Union members appear in the location under their type names; users know fields.
        path = "".join(
            f"[{step}]" if isinstance(step, int) else f".{step}"
            for step in problem["loc"]
            if isinstance(step, int) or not _is_union_member(step)
        )
        message = "expected a JSON object" if problem["type"] == "model_type" else problem["msg"]
        raise InvalidRequestError(f"{where}{path}: {message}", model=model) from exc


def _is_union_member(step: str) -> bool:
    return step.startswith(("_", "literal[")) or step in {"str", "dict[str,any]"}
