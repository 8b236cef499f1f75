"""Requests built by hand hold what their annotations say, or are refused before any I/O.

`ChatRequest`, `EmbeddingRequest` and the types inside them are plain dataclasses, which check
nothing when built. A caller's slip (one message where a list belongs, `stop="END"`, NaN for a
temperature) would otherwise fail deep inside with a bare `TypeError`, or go out as a body no
server reads (`"temperature": NaN` is not JSON) and come back as a 400 the router counts
against the replica. `_request.validate_chat`, `validate_embedding` and `validate_routing` run
these checks first; each raises `InvalidRequestError` naming the field and what it holds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn, TypeGuard, get_args

from selfhosted_core.errors import InvalidRequestError
from selfhosted_core.types import (
    ChatRequest,
    EmbeddingRequest,
    ImagePart,
    Message,
    ResponseFormat,
    Role,
    TextPart,
    Tool,
    ToolCall,
)

# Tuples, not sets: membership of an unhashable value (a list given as a role) is just False.
_ROLES: tuple[str, ...] = get_args(Role)
_DETAILS = (None, "auto", "low", "high")
_FORMATS = ("json_schema", "json_object")
_SAMPLING_NUMBERS = ("temperature", "top_p", "frequency_penalty", "presence_penalty")
_MAX_DEPTH = 100
"""How deeply a free-form JSON field may nest; deeper is a mistake (or a mapping holding itself)."""


def check_chat(request: ChatRequest) -> None:
    """Every field of a chat request has its annotated type; numbers are finite."""
    model = model_of(request)
    check_messages(request.messages, model)
    # Each check is skipped whole for a field left unset, as most are: this runs per request.
    if request.tools:
        for index, tool in enumerate(_sequence(request.tools, "tools", model)):
            _check_tool(tool, f"tools[{index}]", model)
    elif not isinstance(request.tools, list | tuple):
        _sequence(request.tools, "tools", model)
    if request.tool_choice is not None:
        _check_optional(request.tool_choice, str, "tool_choice", "a string", model)
    if request.parallel_tool_calls is not None:
        _check_optional(request.parallel_tool_calls, bool, "parallel_tool_calls", "a bool", model)
    if request.response_format is not None:
        _check_response_format(request.response_format, model)
    for name in _SAMPLING_NUMBERS:
        value = getattr(request, name)
        if value is not None:
            _check_number(value, name, model)
    if request.seed is not None and (
        isinstance(request.seed, bool) or not isinstance(request.seed, int)
    ):
        _refuse("seed", "an integer", request.seed, model)
    if request.stop is not None and not isinstance(request.stop, str):
        for index, stop in enumerate(_sequence(request.stop, "stop", model)):
            _check_optional(stop, str, f"stop[{index}]", "a string", model, optional=False)
    _check_body(request.extra_body, "extra_body", model, owned=_CHAT_OWNED)
    _check_body(request.server_sampling, "server_sampling", model)
    if request.affinity is not None and (
        not isinstance(request.affinity, str) or not request.affinity
    ):
        _refuse("affinity", "a non-empty string (a session or thread id)", request.affinity, model)


def check_embedding(request: EmbeddingRequest) -> None:
    """The input is a text or a sequence, and the free-form `extra_body` is JSON.

    Each item of the sequence is checked by `_request.embedding_inputs`.
    """
    model = model_of(request)
    if not isinstance(request.input, str):
        _sequence(request.input, "input", model, what="a text or a list of texts")
    _check_body(request.extra_body, "extra_body", model, owned=_EMBEDDING_OWNED)


def check_routing(request: ChatRequest | EmbeddingRequest) -> None:
    """The model id and the routing fields of either request have their annotated types."""
    if not isinstance(request.model, str):
        _refuse("model", "a model id (a string)", request.model, None)
    model = request.model
    timeout = request.timeout
    if timeout is not None and not (_is_number(timeout) and 0 < timeout < math.inf):
        _refuse("timeout", "a finite number of seconds > 0", timeout, model)
    _check_optional(request.endpoint, str, "endpoint", "a replica's label or URL", model)
    _check_optional(
        request.strict_endpoint, bool, "strict_endpoint", "a bool", model, optional=False
    )
    _check_optional(request.resend_unsafe, bool, "resend_unsafe", "a bool", model)


def check_messages(messages: object, model: str | None) -> None:
    """`messages` is a sequence of well-formed `Message`s (it may be empty)."""
    for index, message in enumerate(_sequence(messages, "messages", model)):
        if _plain(message):
            continue
        where = f"messages[{index}]"
        if not isinstance(message, Message):
            _refuse(where, "a Message", message, model)
        if message.role not in _ROLES:
            _refuse(f"{where}.role", f"one of {list(_ROLES)}", message.role, model)
        _check_content(message.content, f"{where}.content", model)
        for name in ("name", "tool_call_id", "reasoning"):
            _check_optional(getattr(message, name), str, f"{where}.{name}", "a string", model)
        for number, call in enumerate(_sequence(message.tool_calls, f"{where}.tool_calls", model)):
            _check_tool_call(call, f"{where}.tool_calls[{number}]", model)


def _plain(message: object) -> bool:
    """Whether `message` is well formed and text alone, as nearly every message is.

    Checked without naming any field, since naming one costs more than the check itself, and
    this runs for every message of every request.
    """
    return (
        type(message) is Message
        and message.role in _ROLES
        and (message.content is None or type(message.content) is str)
        and (message.name is None or type(message.name) is str)
        and (message.tool_call_id is None or type(message.tool_call_id) is str)
        and (message.reasoning is None or type(message.reasoning) is str)
        and type(message.tool_calls) in (tuple, list)
        and not message.tool_calls
    )


def model_of(request: ChatRequest | EmbeddingRequest) -> str | None:
    """The model id an error may carry: none while it is not even a string."""
    return request.model if isinstance(request.model, str) else None


def _check_content(content: object, where: str, model: str | None) -> None:
    if content is None or isinstance(content, str):
        return
    for index, part in enumerate(
        _sequence(content, where, model, what="a string or a list of parts")
    ):
        at = f"{where}[{index}]"
        if isinstance(part, TextPart):
            _check_optional(part.text, str, f"{at}.text", "a string", model, optional=False)
        elif isinstance(part, ImagePart):
            _check_optional(part.url, str, f"{at}.url", "a string", model, optional=False)
            if part.detail not in _DETAILS:
                _refuse(f"{at}.detail", f"one of {list(_DETAILS)}", part.detail, model)
        else:
            _refuse(at, "a TextPart or an ImagePart", part, model)


def _check_tool_call(call: object, where: str, model: str | None) -> None:
    if not isinstance(call, ToolCall):
        _refuse(where, "a ToolCall", call, model)
    for name in ("id", "name", "arguments"):
        _check_optional(
            getattr(call, name), str, f"{where}.{name}", "a string", model, optional=False
        )


def _check_tool(tool: object, where: str, model: str | None) -> None:
    if not isinstance(tool, Tool):
        _refuse(where, "a Tool", tool, model)
    _check_optional(tool.name, str, f"{where}.name", "a string", model, optional=False)
    _check_optional(tool.description, str, f"{where}.description", "a string", model)
    _check_optional(tool.strict, bool, f"{where}.strict", "a bool", model)
    if not isinstance(tool.parameters, Mapping):
        _refuse(f"{where}.parameters", "a JSON schema (a mapping)", tool.parameters, model)
    _check_json(tool.parameters, f"{where}.parameters", model, 0)


def _check_response_format(value: object, model: str | None) -> None:
    if not isinstance(value, ResponseFormat):
        _refuse("response_format", "a ResponseFormat", value, model)
    if value.type not in _FORMATS:
        _refuse("response_format.type", f"one of {list(_FORMATS)}", value.type, model)
    _check_body(value.schema, "response_format.schema", model)
    _check_optional(value.name, str, "response_format.name", "a string", model, optional=False)
    _check_optional(value.description, str, "response_format.description", "a string", model)
    _check_optional(value.strict, bool, "response_format.strict", "a bool", model)


_CHAT_OWNED = frozenset({"model", "messages", "stream", "stream_options", "tools", "tool_choice"})
"""Chat body fields the request itself writes. A `model` in `extra_body` would reach a model the
operator never configured, with the endpoint's key; the others are what the answer is read by."""

_EMBEDDING_OWNED = frozenset({"model", "input", "encoding_format"})
"""Embeddings body fields the request writes: its answer is checked against its inputs, as
floats (an `input` replaced in `extra_body` made the server embed other texts)."""


def _check_body(
    value: object, where: str, model: str | None, *, owned: frozenset[str] = frozenset()
) -> None:
    """An optional mapping of JSON: what a caller passes through to the server as it is.

    It may not replace a field in `owned`, which the request writes and its answer relies on.
    """
    if value is None:
        return
    if not isinstance(value, Mapping):
        _refuse(where, "a mapping", value, model)
    replaced = sorted(key for key in owned if key in value)
    if replaced:
        raise InvalidRequestError(
            f"{where} may not set {', '.join(replaced)}: the request's own fields write them",
            model=model,
        )
    _check_json(value, where, model, 0)


def _check_json(value: object, where: str, model: str | None, depth: int) -> None:
    """No NaN or infinity anywhere inside: the serializer would write them, and JSON has none.

    Other values are left to the serializer, which refuses what it cannot write.
    """
    if depth > _MAX_DEPTH:
        raise InvalidRequestError(
            f"{where} is nested more than {_MAX_DEPTH} levels deep", model=model
        )
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidRequestError(f"{where} is {value}, which JSON cannot hold", model=model)
    if isinstance(value, Mapping):
        for key, item in value.items():
            _check_json(item, f"{where}.{key}", model, depth + 1)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check_json(item, f"{where}[{index}]", model, depth + 1)


def _check_number(value: object, where: str, model: str | None) -> None:
    if value is not None and not (_is_number(value) and math.isfinite(value)):
        _refuse(where, "a finite number", value, model)


def _check_optional(
    value: object,
    kind: type,
    where: str,
    what: str,
    model: str | None,
    *,
    optional: bool = True,
) -> None:
    if (value is None and optional) or isinstance(value, kind):
        return
    _refuse(where, what, value, model)


def _sequence(
    value: object, where: str, model: str | None, *, what: str = "a list"
) -> Sequence[Any]:
    """`value` as the sequence it must be; text is one, but never the list meant here."""
    if not isinstance(value, Sequence) or isinstance(value, str | bytes | bytearray):
        _refuse(where, what, value, model)
    return value


def _is_number(value: object) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _refuse(where: str, what: str, value: object, model: str | None) -> NoReturn:
    shown = repr(value)
    if len(shown) > 60:
        shown = f"{shown[:57]}..."
    raise InvalidRequestError(
        f"{where} must be {what}, not {type(value).__name__} {shown}", model=model
    )
