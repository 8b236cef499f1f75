"""Pure conversions between LangChain messages and the core's neutral types.

Both directions are plain functions so `_generate` / `_agenerate` and `_stream` / `_astream`
share every decision and differ only in how they wait.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, cast

from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    convert_to_openai_messages,
)
from langchain_core.messages.ai import InputTokenDetails, OutputTokenDetails, UsageMetadata
from langchain_core.messages.tool import (
    invalid_tool_call,
    tool_call,
    tool_call_chunk,
)

from selfhosted_core import (
    ChatChunk,
    ChatResponse,
    ContentPart,
    ImagePart,
    InvalidRequestError,
    Message,
    NotSupportedError,
    Role,
    TextPart,
    ToolCall,
    Usage,
)

PROVIDER = "selfhosted"
"""The `ls_provider` and `model_provider` name of this integration."""

_ROLES: Mapping[type[BaseMessage], Role] = {
    SystemMessage: "system",
    HumanMessage: "user",
    AIMessage: "assistant",
    AIMessageChunk: "assistant",
    ToolMessage: "tool",
}
_CHAT_ROLES: frozenset[str] = frozenset({"system", "developer", "user", "assistant", "tool"})
_UNSUPPORTED_BLOCKS = frozenset({"file", "audio", "input_audio", "video"})
_REASONING_BLOCKS = frozenset({"thinking", "reasoning", "redacted_thinking"})
# An AIMessage's calls travel in `tool_calls`; v1 content repeats them as blocks.
_TOOL_CALL_BLOCKS = frozenset({"tool_call", "tool_call_chunk", "invalid_tool_call", "tool_use"})


def to_core_messages(messages: Sequence[BaseMessage], *, model: str) -> list[Message]:
    """LangChain messages as core messages; unsupported content raises before any I/O.

    Raises:
        InvalidRequestError: A message or a content block is malformed; its place is named.
        NotSupportedError: A block is audio, a file or video, which chat servers do not take.
    """
    return [
        _to_core(message, model=model, where=f"messages[{index}]")
        for index, message in enumerate(messages)
    ]


def _to_core(message: BaseMessage, *, model: str, where: str) -> Message:
    role = _role(message, model=model)
    content, thinking = _content(message, model=model, where=where)
    reasoning = message.additional_kwargs.get("reasoning_content")
    if not isinstance(reasoning, str):
        reasoning = thinking
    if isinstance(message, AIMessage):
        calls = [
            ToolCall(
                id=call["id"] or "",
                name=call["name"],
                arguments=json.dumps(call["args"], ensure_ascii=False),
                args=call["args"],
            )
            for call in message.tool_calls
        ]
        # Malformed calls go back as they came, so the tool messages answering them still
        # match a call id.
        calls += [
            ToolCall(
                id=call["id"] or "", name=call["name"] or "", arguments=call["args"] or "", args={}
            )
            for call in message.invalid_tool_calls
        ]
        return Message(
            role=role,
            content=content if content or not calls else None,
            name=message.name,
            tool_calls=calls,
            reasoning=reasoning,
        )
    if isinstance(message, ToolMessage):
        return Message(role=role, content=content, tool_call_id=message.tool_call_id)
    return Message(role=role, content=content, name=message.name)


def _role(message: BaseMessage, *, model: str) -> Role:
    if isinstance(message, ChatMessage):
        if message.role not in _CHAT_ROLES:
            raise InvalidRequestError(
                f"message role {message.role!r} is not one of {sorted(_CHAT_ROLES)}", model=model
            )
        return message.role  # type: ignore[return-value]
    role = _ROLES.get(type(message))
    if role is None:
        for cls, candidate in _ROLES.items():
            if isinstance(message, cls):
                return candidate
        raise InvalidRequestError(
            f"{type(message).__name__} cannot be sent to a chat model", model=model
        )
    return role


def _content(
    message: BaseMessage, *, model: str, where: str
) -> tuple[str | list[ContentPart], str | None]:
    """The message content as text or parts, and the text of any thinking blocks."""
    content = message.content
    if isinstance(content, str):
        return content, None
    for block in content:
        if isinstance(block, dict) and block.get("type") in _UNSUPPORTED_BLOCKS:
            raise NotSupportedError(
                f"content blocks of type {block['type']!r} are not supported; "
                "self-hosted chat endpoints take text and images",
                model=model,
            )
    try:
        converted = convert_to_openai_messages([message], text_format="block")
    except ValueError as exc:
        # LangChain's own refusal of a block it cannot read ("mime_type key is required for
        # base64 data"): the caller's mistake, said as LangChain says it. Only its first line:
        # the rest repeats the whole block, image data and all. It names the message by its
        # place in the one-message list it was given.
        said = str(exc).split("\n", 1)[0].removesuffix(" Full content block:")
        raise InvalidRequestError(
            f"{where}.content: {said.replace('messages[0]', where)}", model=model
        ) from exc
    parts: list[ContentPart] = []
    thinking: list[str] = []
    blocks = converted[0].get("content") or []
    for number, block in enumerate(
        blocks if isinstance(blocks, list) else [{"type": "text", "text": blocks}]
    ):
        kind = block.get("type")
        if kind == "text":
            parts.append(TextPart(_text(block.get("text"), f"{where}.content[{number}]", model)))
        elif kind == "image_url":
            parts.append(_image(block.get("image_url"), f"{where}.content[{number}]", model))
        elif kind in _REASONING_BLOCKS:
            text = block.get("thinking") or block.get("reasoning")
            if isinstance(text, str):
                thinking.append(text)
        elif kind not in _TOOL_CALL_BLOCKS:
            raise NotSupportedError(
                f"content blocks of type {kind!r} are not supported; "
                "self-hosted chat endpoints take text and images",
                model=model,
            )
    if all(isinstance(part, TextPart) for part in parts):
        # Text-only parts become one string, joined as vLLM's chat template input joins them.
        return "\n".join(part.text for part in parts if isinstance(part, TextPart)), (
            "".join(thinking) or None
        )
    return parts, "".join(thinking) or None


def _text(text: object, where: str, model: str) -> str:
    if not isinstance(text, str):
        raise InvalidRequestError(
            f"{where}: a text block's text must be a string, not {type(text).__name__}",
            model=model,
        )
    return text


def _image(image: object, where: str, model: str) -> ImagePart:
    """An `image_url` block's image: a URL, or `{"url": ..., "detail": ...}`."""
    url, detail = (image, None) if isinstance(image, str) else (None, None)
    if isinstance(image, dict):
        url, detail = image.get("url"), image.get("detail")
    if not isinstance(url, str) or detail not in (None, "auto", "low", "high"):
        raise InvalidRequestError(
            f"{where}: an image_url block needs a URL string and a detail of auto, low or "
            f"high (or none), not {image!r:.80}",
            model=model,
        )
    return ImagePart(url, detail)


def usage_metadata(usage: Usage | None) -> UsageMetadata | None:
    """LangChain's usage record; cached prompt and reasoning tokens as details when known."""
    if usage is None:
        return None
    # langchain-core marks the details `typing.NotRequired`, which mypy checking for Python
    # 3.10 cannot see; the cast states what the TypedDict really allows.
    metadata = cast(
        "UsageMetadata",
        {
            "input_tokens": usage.prompt_tokens,
            "output_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens,
        },
    )
    if usage.cached_prompt_tokens is not None:
        metadata["input_token_details"] = InputTokenDetails(cache_read=usage.cached_prompt_tokens)
    if usage.reasoning_tokens is not None:
        metadata["output_token_details"] = OutputTokenDetails(reasoning=usage.reasoning_tokens)
    return metadata


def response_metadata(response: ChatResponse) -> dict[str, Any]:
    """What LangChain users expect in `response_metadata`, plus where the answer came from."""
    metadata: dict[str, Any] = {
        "model_name": response.model or "",
        "model_provider": PROVIDER,
        "finish_reason": response.finish_reason,
        "endpoint": response.endpoint,
        "server": response.server.value,
        "system_fingerprint": response.system_fingerprint,
    }
    if response.usage is not None and response.usage.token_modifier != 1.0:
        metadata["billed_tokens"] = response.usage.billed_tokens
    if response.timings is not None:
        metadata["timings"] = dict(response.timings)
    return metadata


def _reasoning_kwargs(reasoning: str | None) -> dict[str, Any]:
    return {"reasoning_content": reasoning} if reasoning else {}


def to_ai_message(response: ChatResponse) -> AIMessage:
    """The whole answer as an `AIMessage`, malformed tool calls kept as invalid ones."""
    return AIMessage(
        content=response.content or "",
        id=response.id,
        additional_kwargs=_reasoning_kwargs(response.reasoning),
        tool_calls=[
            tool_call(name=c.name, args=dict(c.args), id=c.id) for c in response.tool_calls
        ],
        invalid_tool_calls=[
            invalid_tool_call(name=c.name, args=c.arguments, id=c.id, error=c.error)
            for c in response.invalid_tool_calls
        ],
        usage_metadata=usage_metadata(response.usage),
        response_metadata=response_metadata(response),
    )


def to_message_chunk(chunk: ChatChunk) -> AIMessageChunk:
    """One streamed increment; tool-call pieces keep the index the core assigned.

    Usage is left to `final_chunk`: LangChain adds usage up when it merges chunks, and servers
    such as vLLM (`continuous_usage_stats`) send running totals on many chunks.
    """
    return AIMessageChunk(
        content=chunk.content or "",
        id=chunk.id,
        additional_kwargs=_reasoning_kwargs(chunk.reasoning),
        tool_call_chunks=[
            tool_call_chunk(name=piece.name, args=piece.arguments, id=piece.id, index=piece.index)
            for piece in chunk.tool_calls
        ],
    )


def final_chunk(response: ChatResponse) -> AIMessageChunk:
    """The closing chunk of a stream: usage and response metadata, once (merging adds them up)."""
    return AIMessageChunk(
        content="",
        usage_metadata=usage_metadata(response.usage),
        response_metadata=response_metadata(response),
        chunk_position="last",
    )
