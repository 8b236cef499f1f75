"""Pure: core answers as LiteLLM's response and stream-chunk types.

Streams mix two chunk kinds on purpose (measured with litellm 1.110.2): LiteLLM keeps the usage
of a `GenericStreamingChunk` as given but recounts the usage of a `ModelResponseStream`, and it
drops reasoning handed over in a generic chunk's `provider_specific_fields`. So reasoning goes
out as a `ModelResponseStream` delta, and text, tool-call pieces, the finish reason and the
server's own usage as generic chunks.
"""

from __future__ import annotations

from typing import Any

from litellm.types.utils import (
    ChatCompletionMessageToolCall,
    Choices,
    Delta,
    Embedding,
    EmbeddingResponse,
    Function,
    GenericStreamingChunk,
    Message,
    ModelResponse,
    ModelResponseStream,
    StreamingChoices,
    Usage,
)

from selfhosted_core import ChatChunk, ChatResponse
from selfhosted_core import EmbeddingResponse as CoreEmbeddingResponse
from selfhosted_core import Usage as CoreUsage

StreamPiece = GenericStreamingChunk | ModelResponseStream
"""What the handler's stream yields to LiteLLM."""


def model_response(target: ModelResponse, response: ChatResponse, *, model: str) -> ModelResponse:
    """Fill LiteLLM's `ModelResponse` with a core answer.

    Calls whose arguments did not parse are returned as tool calls with the raw text, as an
    OpenAI server would. `model` is the configured id, which the cost map is keyed by; where
    the answer came from is in `_hidden_params["selfhosted"]`.
    """
    calls = [_tool_call(call.id, call.name, call.arguments) for call in response.tool_calls]
    calls += [
        _tool_call(call.id, call.name or "", call.arguments) for call in response.invalid_tool_calls
    ]
    message = Message(
        content=response.content,
        role="assistant",
        tool_calls=calls or None,
        reasoning_content=response.reasoning,
    )
    target.choices = [
        Choices(index=0, finish_reason=response.finish_reason or "stop", message=message)
    ]
    if response.id:
        target.id = response.id
    if response.created:
        target.created = response.created
    target.model = model
    target.system_fingerprint = response.system_fingerprint
    if response.usage is not None:
        target.usage = _usage(response.usage)  # type: ignore[attr-defined]  # set dynamically by litellm
    target._hidden_params["selfhosted"] = _origin(response)
    return target


def stream_pieces(chunk: ChatChunk) -> list[StreamPiece]:
    """The LiteLLM chunks for one core chunk: reasoning, text, then each tool-call piece."""
    pieces: list[StreamPiece] = []
    if chunk.reasoning:
        delta = Delta(reasoning_content=chunk.reasoning)
        pieces.append(ModelResponseStream(choices=[StreamingChoices(index=0, delta=delta)]))
    if chunk.content:
        pieces.append(_generic(text=chunk.content))
    for call in chunk.tool_calls:
        tool_use = {
            "id": call.id,
            "type": "function",
            "function": {"name": call.name, "arguments": call.arguments},
            "index": call.index,
        }
        pieces.append(_generic(tool_use=tool_use))
    return pieces


def closing_piece(response: ChatResponse) -> GenericStreamingChunk:
    """The last chunk: the finish reason, the server's usage, and where the answer came from.

    The origin is what `_hidden_params["selfhosted"]` holds for an answer that is not streamed;
    LiteLLM hands a stream's `provider_specific_fields` on in that chunk's delta.
    """
    usage = None if response.usage is None else _usage_block(response.usage)
    piece = _generic(finished=response.finish_reason or "stop", usage=usage)
    piece["provider_specific_fields"] = {"selfhosted": _origin(response)}
    return piece


def embedding_response(
    target: EmbeddingResponse, response: CoreEmbeddingResponse, *, model: str
) -> EmbeddingResponse:
    """Fill LiteLLM's `EmbeddingResponse`: vectors in input order, usage when reported."""
    target.data = [
        Embedding(embedding=vector, index=index, object="embedding")
        for index, vector in enumerate(response.embeddings)
    ]
    target.model = model
    if response.usage is not None:
        target.usage = Usage(
            prompt_tokens=response.usage.prompt_tokens,
            completion_tokens=0,
            total_tokens=response.usage.total_tokens,
        )
    target._hidden_params["selfhosted"] = {"endpoint": response.endpoint}
    return target


def _tool_call(call_id: str, name: str, arguments: str) -> ChatCompletionMessageToolCall:
    return ChatCompletionMessageToolCall(
        id=call_id, type="function", function=Function(name=name, arguments=arguments)
    )


def _usage(usage: CoreUsage) -> Usage:
    return Usage(**_usage_block(usage))


def _usage_block(usage: CoreUsage) -> dict[str, Any]:
    block: dict[str, Any] = {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }
    if usage.cached_prompt_tokens is not None:
        block["prompt_tokens_details"] = {"cached_tokens": usage.cached_prompt_tokens}
    if usage.reasoning_tokens is not None:
        block["completion_tokens_details"] = {"reasoning_tokens": usage.reasoning_tokens}
    return block


def _origin(response: ChatResponse) -> dict[str, Any]:
    origin: dict[str, Any] = {"endpoint": response.endpoint, "server": response.server.value}
    if response.timings is not None:
        origin["timings"] = dict(response.timings)
    if response.usage is not None and response.usage.token_modifier != 1.0:
        origin["billed_tokens"] = response.usage.billed_tokens
    return origin


def _generic(
    *,
    text: str = "",
    tool_use: Any = None,
    finished: str | None = None,
    usage: dict[str, Any] | None = None,
) -> GenericStreamingChunk:
    return GenericStreamingChunk(
        text=text,
        tool_use=tool_use,
        is_finished=finished is not None,
        finish_reason=finished or "",
        usage=usage,  # type: ignore[typeddict-item]
        index=0,
    )
