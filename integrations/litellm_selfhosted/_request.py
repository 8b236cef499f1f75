"""Pure: what LiteLLM hands a custom handler, as core requests.

LiteLLM passes the caller's OpenAI parameters in `optional_params`, but also whatever else a
Router deployment or a call carried that LiteLLM does not know (`label`, `token_modifier`,
`max_retries`, `stream`, ...). Only parameters this module names reach the server: the OpenAI
chat parameters it maps to the core request, the core's server sampling parameters
(`SERVER_SAMPLING`, which `ChatSelfHosted` takes too; `reasoning_effort` only arrives when the
deployment lists it in `allowed_openai_params`), and `extra_body`. Anything else is dropped, and
named once in a warning so a misspelling is seen.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from litellm.litellm_core_utils.provider_affinity import get_caller_session_id

from selfhosted_core import (
    SERVER_SAMPLING,
    ChatRequest,
    EmbeddingRequest,
    InvalidRequestError,
    NotSupportedError,
    affinity_name,
)
from selfhosted_core.openai_input import (
    messages_from_openai,
    response_format_from_openai,
    tool_choice_from_openai,
    tools_from_openai,
)

logger = logging.getLogger("litellm_selfhosted")

_SAMPLING = ("temperature", "top_p", "seed", "frequency_penalty", "presence_penalty")

_MAPPED = frozenset(
    {
        *_SAMPLING,
        "max_tokens",
        "max_completion_tokens",
        "stop",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "response_format",
        "extra_body",
        "n",
    }
)

# LiteLLM's own settings and the config's endpoint fields, which a Router deployment may carry:
# never sent upstream, and not worth a warning.
_INTERNAL = frozenset(
    {
        "stream",
        "stream_options",
        "max_retries",
        "user",
        "affinity",
        "label",
        "token_modifier",
        "capabilities",
        "dimension",
        "context_window",
        "served_model",
        "server",
        "headers",
        "id",
        "url",
    }
)

# Features the core does not return; refused rather than silently answered without them.
_UNSUPPORTED = frozenset({"logprobs", "top_logprobs", "functions", "function_call", "audio"})

_warned: set[str] = set()


def chat_request(
    model: str,
    messages: Sequence[Mapping[str, Any]],
    optional_params: Mapping[str, Any],
    *,
    api_base: str | None,
    timeout: float | None,
    affinity: str | None = None,
) -> ChatRequest:
    """The core request for one LiteLLM chat call.

    Args:
        model: The model id (LiteLLM has removed the `selfhosted/` prefix).
        messages: The caller's OpenAI messages, as plain JSON.
        optional_params: What LiteLLM passed on; see the module docstring.
        api_base: The Router deployment's URL: the replica to prefer (a sibling serves when it
            cannot take the call).
        timeout: Seconds; replaces the endpoint's configured timeout.
        affinity: What the call belongs to (see `call_affinity`), for affinity routing.
    """
    options = _checked(optional_params, model)
    if options.get("n") not in (None, 1):
        raise NotSupportedError("n > 1 is not supported; make several calls", model=model)
    stop = options.get("stop")
    body = _extra_body(optional_params, model)
    server_sampling = {name: value for name, value in options.items() if name in SERVER_SAMPLING}
    sampling: dict[str, Any] = {name: options.get(name) for name in _SAMPLING}
    return ChatRequest(
        model=model,
        messages=messages_from_openai(messages, model=model),
        tools=tools_from_openai(options.get("tools"), model=model),
        tool_choice=tool_choice_from_openai(options.get("tool_choice"), model=model),
        parallel_tool_calls=options.get("parallel_tool_calls"),
        response_format=response_format_from_openai(options.get("response_format"), model=model),
        server_sampling=server_sampling or None,
        max_tokens=options.get("max_tokens", options.get("max_completion_tokens")),
        stop=[stop] if isinstance(stop, str) else stop,
        extra_body=body or None,
        timeout=timeout,
        endpoint=api_base,
        affinity=affinity,
        **sampling,
    )


def call_affinity(optional_params: Mapping[str, Any], litellm_params: Any) -> str | None:
    """What a LiteLLM call belongs to, for affinity routing; None when it names nothing.

    An `affinity=` argument; else the conversation LiteLLM itself recognises as the caller's
    (`get_caller_session_id`: `session_id`, `litellm_session_id`, `metadata.session_id`, but
    never a session id the proxy generated for the request, `missing_session_id: generate`,
    nor a trace id promoted to one, which differ per request); else `metadata.thread_id`.
    LiteLLM 1.110 does not hand the OpenAI `user` to a custom provider, so it cannot name one.
    """
    named = affinity_name(optional_params.get("affinity"))
    if named is not None or not isinstance(litellm_params, Mapping):
        return named
    named = affinity_name(get_caller_session_id(litellm_params))
    if named is not None:
        return named
    metadata = litellm_params.get("metadata")
    return affinity_name(metadata.get("thread_id")) if isinstance(metadata, Mapping) else None


def embedding_request(
    model: str,
    texts: str | Sequence[Any],
    optional_params: Mapping[str, Any],
    *,
    api_base: str | None,
    timeout: float | None,
) -> EmbeddingRequest:
    """The core request for one LiteLLM embedding call.

    LiteLLM hands a single string over as it came (it would otherwise embed each character):
    it becomes a list of one. Token-id input is refused; servers are sent text.
    """
    if isinstance(texts, str):
        inputs = [texts]
    elif isinstance(texts, Sequence) and not isinstance(texts, bytes | bytearray):
        inputs = list(texts)
    else:
        raise InvalidRequestError(
            f"input must be a text or a list of texts, not {type(texts).__name__}", model=model
        )
    for index, text in enumerate(inputs):
        if not isinstance(text, str):
            raise InvalidRequestError(
                f"input[{index}] is {type(text).__name__}; embeddings take text", model=model
            )
    body = _extra_body(optional_params, model) or None
    return EmbeddingRequest(
        model=model, input=inputs, extra_body=body, timeout=timeout, endpoint=api_base
    )


def call_timeout(timeout: Any, *, configured: float | None) -> float | None:
    """The seconds one call may take: the shorter of LiteLLM's timeout and the endpoint's.

    LiteLLM always hands a custom handler a timeout (600 s when the caller set none) and never
    enforces it; the handler does. The endpoint's configured timeout is the operator's ceiling,
    so the shorter one applies. `timeout` is seconds or an `httpx.Timeout` (its read timeout).
    """
    given = _seconds(timeout)
    if given is None or configured is None:
        return given if configured is None else configured
    return min(given, configured)


def _seconds(timeout: Any) -> float | None:
    if timeout is None or isinstance(timeout, int | float):
        return None if timeout is None else float(timeout)
    read = getattr(timeout, "read", None)
    return float(read) if isinstance(read, int | float) else None


def warn_once(name: str, message: str) -> None:
    """Log `message` as a warning the first time `name` comes up in this process."""
    if name not in _warned:
        _warned.add(name)
        logger.warning(message)


def _extra_body(optional_params: Mapping[str, Any], model: str) -> dict[str, Any]:
    given = optional_params.get("extra_body") or {}
    if not isinstance(given, Mapping):
        raise InvalidRequestError(
            f"extra_body must be a mapping, not {type(given).__name__}", model=model
        )
    return dict(given)  # the core refuses a body that replaces the request's own fields


def _checked(optional_params: Mapping[str, Any], model: str) -> dict[str, Any]:
    refused = sorted(set(optional_params) & _UNSUPPORTED)
    if refused:
        raise NotSupportedError(
            f"parameter(s) {refused} are not supported by selfhosted endpoints", model=model
        )
    options = {}
    for name, value in optional_params.items():
        if name in _MAPPED or name in SERVER_SAMPLING:
            options[name] = value
        elif name not in _INTERNAL:
            warn_once(
                name,
                f"ignored parameter {name!r}: not a chat parameter selfhosted endpoints take; "
                "put server-specific parameters in extra_body",
            )
    return options
