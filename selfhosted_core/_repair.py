"""Pure repairs of what servers send, applied to full responses and streams alike.

Each repair is harmless where its quirk is absent, so it runs for every server; each names the
upstream issue that made it necessary.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import math
import secrets
import string
import struct
import sys
from collections.abc import Mapping
from typing import Any

from pydantic import JsonValue

from selfhosted_core._wire import WireUsage
from selfhosted_core.types import InvalidToolCall, ToolCall, Usage

_ID_ALPHABET = string.ascii_letters + string.digits
_ID_LENGTH = 9

_FINISH_REASONS: Mapping[str, str] = {
    "tool": "tool_calls",
    "function_call": "tool_calls",
    "end": "stop",
    "eos": "stop",
    "eos_token": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
}


def new_tool_call_id() -> str:
    """A fresh id of nine ASCII letters and digits.

    The shape Mistral chat templates demand: vLLM rejects others (vllm-project/vllm#9019).
    Used when a server sends none (ggml-org/llama.cpp#12279) or repeats one (LocalAI).
    """
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(_ID_LENGTH))


def arguments_text(raw: JsonValue) -> str:
    """Tool-call arguments as JSON text, whatever form they arrived in.

    llama-server may send a JSON object instead of a string (ggml-org/llama.cpp#20198), as do
    TGI and Ollama's native API; the object is serialised back to text.
    """
    if raw is None:
        return ""
    if isinstance(raw, str):
        return raw
    return json.dumps(raw, ensure_ascii=False, separators=(",", ":"))


class _NotJSONError(ValueError):
    """NaN or Infinity in arguments: Python's json reads them; JSON and its consumers do not."""


def _not_json_constant(name: str) -> Any:
    raise _NotJSONError(f"{name} is not a JSON value")


def _finite_float(text: str) -> float:
    # `1e999` is Infinity spelt as a number: Python reads it as inf, which no strict JSON
    # writer (a LiteLLM proxy's, LangChain's tracing) will write back.
    value = float(text)
    if not math.isfinite(value):
        raise _NotJSONError(f"{text} is out of range for a JSON number")
    return value


def _bounded_int(text: str) -> int:
    # Python refuses an integer past `sys.get_int_max_str_digits()` digits (4,300 unless set),
    # in words that differ between versions (3.10: "Exceeds the limit (4300) for ..."): one
    # message here whatever the Python.
    try:
        return int(text)
    except ValueError:
        limit = getattr(sys, "get_int_max_str_digits", lambda: 0)()
        digits = len(text.lstrip("-"))
        raise _NotJSONError(
            f"an integer of {digits} digits is past Python's limit of {limit} digits"
        ) from None


def finish_tool_call(call_id: str, name: str | None, arguments: str) -> ToolCall | InvalidToolCall:
    """Parse a complete call's arguments; a call that does not parse is kept as invalid.

    Empty arguments mean "no arguments" (`{}`): some servers send `""` for parameterless tools.
    Malformed text is never "repaired" into something the model did not say.
    """
    text = arguments if arguments.strip() else "{}"
    if not name:
        return InvalidToolCall(id=call_id, name=name, arguments=arguments, error="missing name")
    try:
        parsed = json.loads(
            text,
            parse_constant=_not_json_constant,
            parse_float=_finite_float,
            parse_int=_bounded_int,
        )
    except ValueError as exc:
        # Not JSON; or NaN, Infinity or an integer past Python's 4,300 digits (`_NotJSONError`).
        return InvalidToolCall(
            id=call_id, name=name, arguments=arguments, error=f"arguments are not JSON: {exc}"
        )
    except RecursionError:
        # json.loads recurses once per nesting level; `[[[[...` must not crash the answer.
        return InvalidToolCall(
            id=call_id,
            name=name,
            arguments=arguments,
            error="arguments are nested too deeply to parse",
        )
    if not isinstance(parsed, dict):
        kind = type(parsed).__name__
        return InvalidToolCall(
            id=call_id,
            name=name,
            arguments=arguments,
            error=f"arguments are a {kind}, not an object",
        )
    return ToolCall(id=call_id, name=name, arguments=text, args=parsed)


def finish_reason(raw: str | None, *, has_tool_calls: bool) -> str | None:
    """The finish reason, decided from the data rather than from the server's label.

    A normal end with tool calls is `tool_calls` whatever the server said (llama-server and
    Ollama have answered `stop`), and `tool_calls` without any call is `stop`. A truncation
    (`length`, `content_filter`) stays what it is, so a cut-off call is not passed off as
    complete. `tool`, `end`, `eos` and similar spellings map to OpenAI's words.
    """
    if raw is None:
        return None
    reason = _FINISH_REASONS.get(raw, raw)
    if reason in ("stop", "tool_calls"):
        return "tool_calls" if has_tool_calls else "stop"
    return reason


def usage(wire: WireUsage | None, token_modifier: float) -> Usage | None:
    """Usage as reported, or None when the server sent none or only zeros.

    LocalAI sends all-zero usage in stream chunks; reporting that as zero tokens would be false.
    """
    if wire is None:
        return None
    if not all(map(_is_count, (wire.prompt_tokens, wire.completion_tokens, wire.total_tokens))):
        # Negative, or more tokens than a float counts exactly (10**400 made `billed_tokens`
        # raise OverflowError in every adapter): not a count, so unknown rather than false.
        return None
    prompt = wire.prompt_tokens or 0
    completion = wire.completion_tokens or 0
    total = wire.total_tokens or prompt + completion
    if not total:
        return None
    details = wire.prompt_tokens_details
    reasoning = wire.completion_tokens_details
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=total,
        cached_prompt_tokens=_count(details.cached_tokens) if details else None,
        reasoning_tokens=_count(reasoning.reasoning_tokens) if reasoning else None,
        token_modifier=token_modifier,
    )


def cached_from_timings(usage: Usage | None, timings: Mapping[str, Any] | None) -> Usage | None:
    """`usage` with the prompt tokens llama-server reused from its cache, from `timings.cache_n`.

    llama-server reports them in `usage.prompt_tokens_details.cached_tokens` only since
    ggml-org/llama.cpp#19361 (February 2026); earlier builds send them as `timings.cache_n`
    alone (tools/server/server-common.cpp, `server_slot_stats::to_json`). Usage that carries
    its own count keeps it.
    """
    if usage is None or usage.cached_prompt_tokens is not None or not timings:
        return usage
    cached = timings.get("cache_n")
    if isinstance(cached, bool) or not isinstance(cached, int) or not _is_count(cached):
        return usage
    return dataclasses.replace(usage, cached_prompt_tokens=min(cached, usage.prompt_tokens))


_MOST_TOKENS = 2**53
"""The largest count a float (`billed_tokens`) holds exactly; no answer comes near it."""


def _is_count(value: int | None) -> bool:
    return value is None or 0 <= value <= _MOST_TOKENS


def _count(value: int | None) -> int | None:
    return value if _is_count(value) else None


def embedding_vector(raw: list[float] | str) -> list[float]:
    """A vector from floats, or from base64 little-endian float32 (servers that force base64)."""
    if isinstance(raw, list):
        vector = raw
    else:
        data = base64.b64decode(raw, validate=True)
        if len(data) % 4:
            raise ValueError(f"base64 embedding has {len(data)} bytes, not a multiple of 4")
        vector = list(struct.unpack(f"<{len(data) // 4}f", data))
    # One C loop: a NaN or an infinity survives the sum (so does an overflow, absurd anyway).
    if not math.isfinite(sum(vector)):
        raise ValueError("embedding holds NaN or infinite values")
    return vector


class ThinkSplitter:
    """Moves a leading `<think>...</think>` block from content to reasoning, across chunks.

    Reasoning models served without a reasoning parser (vLLM without `--reasoning-parser`,
    llama-server with `--reasoning-format none`) leave their thoughts inline. Only a block at the
    very start counts: a `<think>` later in an answer is the answer's own text.
    """

    __slots__ = ("_buffer", "_state")

    _OPEN = "<think>"
    _CLOSE = "</think>"

    def __init__(self) -> None:
        self._state = "start"
        self._buffer = ""

    def feed(self, text: str) -> tuple[str, str]:
        """Split the next piece of content into (reasoning, content)."""
        if self._state == "content":
            return "", text
        self._buffer += text
        if self._state == "start":
            stripped = self._buffer.lstrip()
            if stripped.startswith(self._OPEN):
                self._state, self._buffer = "thinking", stripped[len(self._OPEN) :]
            elif self._OPEN.startswith(stripped):
                return "", ""
            else:
                self._state, pending, self._buffer = "content", self._buffer, ""
                return "", pending
        if self._state == "thinking":
            return self._think()
        return self._answer()

    def flush(self) -> tuple[str, str]:
        """End of content: whatever is held back is released."""
        pending, self._buffer = self._buffer, ""
        if self._state == "thinking":
            return pending, ""
        return "", pending.lstrip() if self._state == "after" else pending

    def _think(self) -> tuple[str, str]:
        end = self._buffer.find(self._CLOSE)
        if end < 0:
            keep = _partial_suffix(self._buffer, self._CLOSE)
            reasoning = self._buffer[: len(self._buffer) - keep]
            self._buffer = self._buffer[len(self._buffer) - keep :]
            return reasoning, ""
        reasoning = self._buffer[:end]
        self._state, self._buffer = "after", self._buffer[end + len(self._CLOSE) :]
        _, content = self._answer()
        return reasoning, content

    def _answer(self) -> tuple[str, str]:
        # The blank lines between `</think>` and the answer belong to neither.
        content = self._buffer.lstrip()
        if content:
            self._state = "content"
        self._buffer = ""
        return "", content


def _partial_suffix(text: str, tag: str) -> int:
    """Length of the longest end of `text` that could be the start of `tag`."""
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if tag.startswith(text[-size:]):
            return size
    return 0
