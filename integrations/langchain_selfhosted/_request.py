"""Pure: a LangChain call (messages, stop, bound and per-call kwargs) as a core `ChatRequest`.

Tools and `response_format` travel through LangChain's `bind` in OpenAI's JSON form, which
tracing and caching can serialise, and are turned into core types only here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.messages import BaseMessage
from langchain_core.runnables.config import var_child_runnable_config

from langchain_selfhosted._messages import to_core_messages
from selfhosted_core import (
    SERVER_SAMPLING,
    ChatRequest,
    InvalidRequestError,
    ResponseFormat,
    affinity_name,
)
from selfhosted_core.openai_input import (
    response_format_from_openai,
    tool_choice_from_openai,
    tools_from_openai,
)

SAMPLING = ("temperature", "top_p", "max_tokens", "seed", "frequency_penalty", "presence_penalty")
"""Sampling settings a model holds as fields and a call may override."""

_CALL_OPTIONS = frozenset(
    {
        "model",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "response_format",
        "extra_body",
        "affinity",
    }
)
_AFFINITY_NAMES = ("thread_id", "session_id")
"""Where a LangChain run names its conversation: LangGraph's `configurable.thread_id`, or
`metadata` (`thread_id`, or `session_id` as LangSmith's threads read it)."""
# LangChain's per-call switch between `_stream` and `_generate`; it has already decided.
_LANGCHAIN_OPTIONS = frozenset({"stream"})


def normalize_tool_choice(choice: str | bool | Mapping[str, Any] | None) -> str | None:
    """LangChain's spellings of `tool_choice` as the core's: auto, none, required or a name.

    `any` and `True` mean "call some tool" (`required`); `False` means `none`; OpenAI's
    `{"type": "function", "function": {"name": ...}}` means that tool.
    """
    if choice is None or isinstance(choice, str):
        return "required" if choice == "any" else choice
    if isinstance(choice, bool):
        return "required" if choice else "none"
    return tool_choice_from_openai(choice)


def build_request(
    messages: Sequence[BaseMessage],
    *,
    model: str,
    defaults: Mapping[str, Any],
    stop: Sequence[str] | None,
    extra_body: Mapping[str, Any] | None,
    timeout: float | None,
    options: Mapping[str, Any],
    max_attempts: int | None = None,
    resend_unsafe: bool | None = None,
    affinity: str | None = None,
) -> ChatRequest:
    """The core request for one call.

    Args:
        messages: The conversation.
        model: The model's configured id (a per-call `model` option overrides it).
        defaults: The model's sampling fields; per-call options of the same names win.
        stop: Stop sequences for this call.
        extra_body: The model's extra payload fields; a per-call `extra_body` is merged over it.
        timeout: Seconds to wait, replacing the endpoint's configured timeout.
        options: Bound and per-call keyword arguments: the call options, `SAMPLING` and the
            core's `SERVER_SAMPLING`.
        max_attempts: The call's attempt budget (the model's `max_retries + 1`).
        resend_unsafe: Whether the core may resend what the server may have worked on.
        affinity: The run's conversation (see `run_affinity`); a per-call `affinity` wins.
    """
    unknown = set(options) - _CALL_OPTIONS - _LANGCHAIN_OPTIONS - set(SAMPLING) - SERVER_SAMPLING
    if unknown:
        raise InvalidRequestError(
            f"unexpected argument(s) {sorted(unknown)}; the server sampling parameters "
            f"({', '.join(sorted(SERVER_SAMPLING))}) are accepted by name, other "
            "server-specific parameters go in extra_body",
            model=model,
        )
    model = options.get("model") or model
    sampling = {name: options.get(name, defaults.get(name)) for name in SAMPLING}
    server_sampling = {name: value for name, value in options.items() if name in SERVER_SAMPLING}
    call_body = options.get("extra_body") or {}
    if not isinstance(call_body, Mapping):
        raise InvalidRequestError(
            f"extra_body must be a mapping, not {type(call_body).__name__}", model=model
        )
    body = {**(extra_body or {}), **call_body}
    return ChatRequest(
        model=model,
        messages=to_core_messages(messages, model=model),
        tools=tools_from_openai(options.get("tools"), model=model),
        tool_choice=normalize_tool_choice(options.get("tool_choice")),
        parallel_tool_calls=options.get("parallel_tool_calls"),
        response_format=_response_format(options.get("response_format"), model=model),
        server_sampling=server_sampling or None,
        # Anything but a list or tuple goes as given, for the core to read (a string is one
        # stop sequence) or refuse.
        stop=list(stop) if isinstance(stop, list | tuple) else stop or None,
        extra_body=body or None,
        timeout=timeout,
        max_attempts=max_attempts,
        resend_unsafe=resend_unsafe,
        affinity=options.get("affinity", affinity),
        **sampling,
    )


def run_affinity(metadata: Mapping[str, Any] | None) -> str | None:
    """The conversation a LangChain run belongs to, for affinity routing; None if unnamed.

    The run's `configurable` (set by LangGraph, `create_agent` and any chain around the
    model: `config={"configurable": {"thread_id": ...}}`) is read first, then its metadata.
    """
    config = var_child_runnable_config.get()
    sources: list[Mapping[str, Any]] = [config.get("configurable") or {}] if config else []
    if metadata:
        sources.append(metadata)
    for source in sources:
        for name in _AFFINITY_NAMES:
            named = affinity_name(source.get(name))
            if named is not None:
                return named
    return None


def _response_format(value: Any, *, model: str) -> ResponseFormat | None:
    """A `ResponseFormat`, or OpenAI's `response_format` JSON, as a `ResponseFormat`."""
    if value is None or isinstance(value, ResponseFormat):
        return value
    return response_format_from_openai(value, model=model)
