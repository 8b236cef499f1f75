"""Turning wire chunks (or one full response) into `ChatChunk`s and a final `ChatResponse`.

A full response is fed as a single chunk whose message is whole, so streaming and non-streaming
share every repair: tool-call arguments and ids, finish reasons, reasoning fields and `<think>`
blocks, usage.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from selfhosted_core import _repair
from selfhosted_core._replies import validation_reason
from selfhosted_core._status import error_from_event, redact
from selfhosted_core._wire import WireChatCompletion, WireErrorDetail, WireMessage, WireToolCall
from selfhosted_core.errors import ResponseError
from selfhosted_core.profiles import ServerKind
from selfhosted_core.types import (
    ChatChunk,
    ChatResponse,
    InvalidToolCall,
    ToolCall,
    ToolCallChunk,
    Usage,
)

_DONE = b"[DONE]"


@dataclass(slots=True)
class _Call:
    id: str
    server_id: str | None
    name: str | None = None
    fragments: list[str] = field(default_factory=list)


class ToolCallTracker:
    """Assigns each tool-call delta to its call, whatever indexing the server used.

    Handles deltas without `index` (Ollama, ollama/ollama#7881), every call sent with index 0
    but its own id (ollama/ollama#15457), the id only on the first delta and the name arriving
    late (OpenAI's own streaming shape), and one id reused for every call (LocalAI). Missing and
    repeated ids are replaced by fresh ones (see `_repair.new_tool_call_id`).
    """

    __slots__ = ("_by_raw_index", "_calls", "_used_ids")

    def __init__(self) -> None:
        self._calls: list[_Call] = []
        self._by_raw_index: dict[int, int] = {}
        self._used_ids: set[str] = set()

    @property
    def has_calls(self) -> bool:
        """Whether any tool call has started."""
        return bool(self._calls)

    def feed(self, delta: WireToolCall, *, whole: bool) -> ToolCallChunk:
        """Record one delta; `whole` means it is a complete call (full responses)."""
        function = delta.function
        name = function.name if function and function.name else None
        position = None if whole else self._continues(delta, name)
        first = position is None
        if position is None:
            position = self._start(delta)
        call = self._calls[position]
        new_name = name if name and name != call.name else None
        if new_name:
            call.name = new_name
        text = _repair.arguments_text(function.arguments if function else None)
        if text:
            call.fragments.append(text)
        return ToolCallChunk(
            index=position, id=call.id if first else None, name=new_name, arguments=text
        )

    def results(self) -> tuple[tuple[ToolCall, ...], tuple[InvalidToolCall, ...]]:
        """Every call parsed: the valid ones and the invalid ones, each in call order."""
        valid: list[ToolCall] = []
        invalid: list[InvalidToolCall] = []
        for call in self._calls:
            arguments = "".join(call.fragments)
            try:
                result = _repair.finish_tool_call(call.id, call.name, arguments)
            except RecursionError:
                # json.loads recurses per nesting level: `[[[[...` from a server must not crash
                # the answer (nor the `partial` of an error raised for something else).
                result = InvalidToolCall(
                    id=call.id,
                    name=call.name,
                    arguments=arguments,
                    error="arguments are nested too deeply to parse",
                )
            if isinstance(result, ToolCall):
                valid.append(result)
            else:
                invalid.append(result)
        return tuple(valid), tuple(invalid)

    def _continues(self, delta: WireToolCall, name: str | None) -> int | None:
        if not self._calls:
            return None
        if delta.index is not None:
            position = self._by_raw_index.get(delta.index)
            if position is None:
                return None
            call = self._calls[position]
            if delta.id and call.server_id and delta.id != call.server_id:
                return None
            if name and call.name and name != call.name:
                return None
            return position
        last = len(self._calls) - 1
        last_id = self._calls[last].server_id
        if delta.id and last_id and delta.id != last_id:
            return None
        if name and not (delta.id and delta.id == last_id):
            return None
        return last

    def _start(self, delta: WireToolCall) -> int:
        position = len(self._calls)
        server_id = delta.id or None
        call_id = server_id if server_id and server_id not in self._used_ids else None
        call_id = call_id or _repair.new_tool_call_id()
        self._used_ids.add(call_id)
        self._calls.append(_Call(id=call_id, server_id=server_id))
        if delta.index is not None:
            self._by_raw_index[delta.index] = position
        return position


class Assembler:
    """Accumulates one answer from stream chunks (or one full response) and repairs it.

    `secrets` (see `_status.endpoint_secrets`) are redacted from any server text an error
    quotes: a server may echo the request's key in an error event.
    """

    def __init__(
        self,
        *,
        model: str,
        endpoint: str,
        server: ServerKind,
        token_modifier: float,
        secrets: Collection[str] = (),
    ) -> None:
        self._model = model
        self._secrets = tuple(secrets)
        self._endpoint = endpoint
        self._server = server
        self._token_modifier = token_modifier
        self._tools = ToolCallTracker()
        self._think = _repair.ThinkSplitter()
        self._content: list[str] = []
        self._reasoning: list[str] = []
        self._finish: str | None = None
        self._usage: Usage | None = None
        self._first: WireChatCompletion | None = None
        self._fingerprint: str | None = None
        self._timings: dict[str, object] | None = None
        self.done = False
        """True once the stream sent `[DONE]`."""

    def feed_event(self, data: bytes, *, event: str | None = None) -> ChatChunk | None:
        """Take one SSE event's data; returns what it adds, or None when it adds nothing."""
        if event is None and data[:1] == b"{":
            # The common case, first: a JSON chunk (checked per token, so kept cheap).
            return self._absorb(self._parse(data), whole=False)
        if event == "error":
            raise self._error_event(data)
        if data == _DONE or data.strip() == _DONE:
            self.done = True
            return None
        if not data or data.isspace():
            return None
        return self._absorb(self._parse(data), whole=False)

    def feed_whole(self, body: bytes) -> ChatChunk | None:
        """Take a complete non-streamed body and return it as one chunk.

        Also serves servers that answer a stream request with plain JSON.
        """
        wire = self._parse(body)
        if not wire.choices:
            raise self._malformed("response has no choices")
        self.done = True
        return self._absorb(wire, whole=True)

    def feed_response(self, body: bytes) -> ChatResponse:
        """Take a complete non-streamed response body and return the repaired answer."""
        self.feed_whole(body)
        return self.result()

    @property
    def finished(self) -> bool:
        """Whether a finish reason arrived (a stream that ends here lost nothing)."""
        return self._finish is not None

    def partial(self) -> ChatResponse | None:
        """What arrived before a failure, or None when the server sent nothing yet.

        None tells callers that retrying loses nothing: no output was produced.
        """
        return None if self._first is None else self.result()

    def result(self) -> ChatResponse:
        """The answer so far, repaired: the final one after the stream ends."""
        reasoning_tail, content_tail = self._think.flush()
        if reasoning_tail:
            self._reasoning.append(reasoning_tail)
        if content_tail:
            self._content.append(content_tail)
        valid, invalid = self._tools.results()
        content: str | None = "".join(self._content) if self._content else None
        if (valid or invalid) and content is not None and not content.strip():
            content = None
        first = self._first
        return ChatResponse(
            id=first.id if first else None,
            model=first.model if first else None,
            content=content,
            reasoning="".join(self._reasoning) or None,
            tool_calls=valid,
            invalid_tool_calls=invalid,
            finish_reason=self._finish,
            usage=self._usage,
            endpoint=self._endpoint,
            server=self._server,
            system_fingerprint=self._fingerprint,
            created=_timestamp(first.created if first else None),
            timings=self._timings,
        )

    def _parse(self, data: bytes) -> WireChatCompletion:
        reason: str | None = None
        try:
            wire = WireChatCompletion.model_validate_json(data)
        except ValidationError as exc:
            reason = validation_reason(exc)
        if reason is not None:
            # Raised outside the handler: pydantic's error quotes the body, which may echo a key.
            excerpt = redact(data[:1000].decode("utf-8", "replace"), self._secrets)[:200]
            raise self._malformed(f"malformed JSON from server ({reason}): {excerpt!r}")
        if wire.error is not None:
            raise error_from_event(
                wire.error,
                model=self._model,
                endpoint=self._endpoint,
                partial=self.partial(),
                secrets=self._secrets,
            )
        return wire

    def _error_event(self, data: bytes) -> Exception:
        try:
            detail: WireErrorDetail | str = WireErrorDetail.model_validate_json(data)
        except ValidationError:
            detail = data.decode("utf-8", "replace")
        return error_from_event(
            detail,
            model=self._model,
            endpoint=self._endpoint,
            partial=self.partial(),
            secrets=self._secrets,
        )

    def _absorb(self, wire: WireChatCompletion, *, whole: bool) -> ChatChunk | None:
        if self._first is None:
            self._first = wire
        if self._fingerprint is None:
            # vLLM (0.32) sends `system_fingerprint` only on a stream's last chunk: the usage
            # chunk with `include_usage`, else the finish chunk
            # (vllm/entrypoints/openai/chat_completion/serving.py), never the first.
            self._fingerprint = wire.system_fingerprint
        if wire.timings is not None:
            self._timings = _finite_timings(wire.timings)
        chunk_usage = None
        if wire.usage is not None:
            chunk_usage = _repair.cached_from_timings(
                _repair.usage(wire.usage, self._token_modifier), self._timings
            )
            if chunk_usage is not None:
                self._usage = chunk_usage
        content = reasoning = ""
        tool_chunks: tuple[ToolCallChunk, ...] = ()
        finish: str | None = None
        for choice in wire.choices:
            if choice.index != 0:
                continue
            message = choice.message or choice.delta
            if message is not None:
                reasoning, content, tool_chunks = self._message(message, whole=whole)
            if choice.finish_reason is not None:
                finish = _repair.finish_reason(
                    choice.finish_reason, has_tool_calls=self._tools.has_calls
                )
                self._finish = finish
        if not (content or reasoning or tool_chunks or finish or chunk_usage):
            return None
        return ChatChunk(
            content=content or None,
            reasoning=reasoning or None,
            tool_calls=tool_chunks,
            finish_reason=finish,
            usage=chunk_usage,
            id=wire.id,
            model=wire.model,
            endpoint=self._endpoint,
        )

    def _message(
        self, message: WireMessage, *, whole: bool
    ) -> tuple[str, str, tuple[ToolCallChunk, ...]]:
        # `reasoning_content`: llama-server and older vLLM; `reasoning`: newer vLLM and Ollama.
        reasoning = message.reasoning_content or message.reasoning or ""
        content = ""
        if message.content:
            think, content = self._think.feed(message.content)
            reasoning += think
        if reasoning:
            self._reasoning.append(reasoning)
        if content:
            self._content.append(content)
        if not message.tool_calls:
            return reasoning, content, ()
        tool_chunks = tuple(self._tools.feed(delta, whole=whole) for delta in message.tool_calls)
        return reasoning, content, tool_chunks

    def _malformed(self, message: str) -> ResponseError:
        return ResponseError(
            message, model=self._model, endpoint=self._endpoint, partial=self.partial()
        )


def _finite_timings(timings: dict[str, Any]) -> dict[str, Any]:
    """`timings` without the entries holding NaN or an infinity, at any depth.

    The JSON parser accepts them (`NaN`, `1e999`) and JSON cannot hold them: a proxy serialising
    them strictly (FastAPI, LiteLLM's) would fail on the whole answer.
    """
    return {key: value for key, value in timings.items() if _finite(value)}


def _finite(value: object) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(map(_finite, value.values()))
    if isinstance(value, list):
        return all(map(_finite, value))
    return True


def _timestamp(value: float | None) -> int | None:
    """`created` as whole seconds; an absurd value (inf, NaN) is dropped, not raised."""
    return int(value) if value is not None and math.isfinite(value) else None
