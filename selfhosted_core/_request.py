"""Pure payload building: a neutral request plus an endpoint's profile give the JSON to send."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from selfhosted_core._checks import check_chat, check_embedding, check_routing
from selfhosted_core.config import Capability, ModelEndpoint
from selfhosted_core.errors import InvalidRequestError
from selfhosted_core.profiles import ServerProfile
from selfhosted_core.types import (
    SERVER_SAMPLING,
    ChatRequest,
    EmbeddingRequest,
    ImagePart,
    Message,
    ResponseFormat,
    TextPart,
    Tool,
)

_TOOL_CHOICE_KEYWORDS = frozenset({"auto", "none", "required"})


def chat_payload(
    request: ChatRequest, endpoint: ModelEndpoint, profile: ServerProfile, *, stream: bool
) -> dict[str, Any]:
    """The chat completion body for `endpoint`, for a request `validate_chat` accepted.

    Sends `max_tokens`, never `max_completion_tokens`, which many servers reject; asks for
    usage on every stream; sends `parallel_tool_calls` and `strict` only when the caller set
    them, and the server sampling parameters given a value; merges `extra_body` last so
    callers can reach any server-specific parameter.
    """
    payload: dict[str, Any] = {
        "model": endpoint.upstream_model,
        "messages": wire_messages(request.messages, endpoint, profile),
    }
    tools = list(request.tools)
    tool_choice: Any = request.tool_choice
    if tool_choice is not None and tool_choice not in _TOOL_CHOICE_KEYWORDS:
        if profile.named_tool_choice:
            tool_choice = {"type": "function", "function": {"name": tool_choice}}
        else:
            tools = [tool for tool in tools if tool.name == request.tool_choice]
            tool_choice = "required"
    if tools:
        payload["tools"] = [_tool(tool) for tool in tools]
    if tool_choice is not None:
        payload["tool_choice"] = tool_choice
    if request.parallel_tool_calls is not None:
        payload["parallel_tool_calls"] = request.parallel_tool_calls
    if request.response_format is not None:
        payload["response_format"] = _response_format(request.response_format, profile)
    payload.update(_sampling(request))
    if stream:
        payload["stream"] = True
        payload["stream_options"] = {"include_usage": True}
    if request.extra_body:
        payload.update(request.extra_body)
    return payload


def validate_routing(request: ChatRequest | EmbeddingRequest) -> None:
    """Reject routing intent no call could follow, before any I/O, for chat and embeddings.

    A model id or a routing field of the wrong type, a budget below one send, or strictness
    about no named replica.
    """
    check_routing(request)
    budget = request.max_attempts
    if budget is None and not request.strict_endpoint:
        return
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int)):
        raise InvalidRequestError(
            f"max_attempts must be an integer, not {budget!r}", model=request.model
        )
    if budget is not None and budget < 1:
        raise InvalidRequestError(
            f"max_attempts must be at least 1 (the first send), not {budget}", model=request.model
        )
    if request.strict_endpoint and request.endpoint is None:
        raise InvalidRequestError(
            "strict_endpoint needs an endpoint to keep to", model=request.model
        )


def validate_chat(request: ChatRequest) -> None:
    """Reject requests no server could answer; the provider calls this once, before any I/O.

    First each field must hold what its annotation says (see `_checks`).
    """
    check_chat(request)
    if not request.messages:
        raise InvalidRequestError("a chat request needs at least one message", model=request.model)
    _check_max_tokens(request)
    unknown = (
        sorted(set(request.server_sampling) - SERVER_SAMPLING) if request.server_sampling else []
    )
    if unknown:
        raise InvalidRequestError(
            f"server_sampling names {unknown}, which are not server sampling parameters "
            f"({', '.join(sorted(SERVER_SAMPLING))}); other server parameters go in extra_body",
            model=request.model,
        )
    response_format = request.response_format
    if (
        response_format is not None
        and response_format.type == "json_schema"
        and not response_format.schema
    ):
        raise InvalidRequestError(
            "a json_schema response_format needs a schema", model=request.model
        )
    choice = request.tool_choice
    if choice is None or choice in ("auto", "none"):
        return
    if not request.tools:
        raise InvalidRequestError(
            f"tool_choice {choice!r} given without tools", model=request.model
        )
    names = [tool.name for tool in request.tools]
    if choice != "required" and choice not in names:
        raise InvalidRequestError(
            f"tool_choice names {choice!r}, which is not among the tools offered: {names}",
            model=request.model,
        )


def chat_warnings(request: ChatRequest) -> list[str]:
    """What servers will not do as a valid `request` asks, one sentence each.

    Pure, so every adapter decides alike; the provider logs each as one warning on the
    `selfhosted_core` logger per request (each `chat`, `achat`, `stream` or `astream` call),
    not once per process. Tools with a json_schema `response_format` are one: grammar-
    constrained servers hold the whole answer to the schema, so no tool call can come back
    (`tool_choice="none"` asks for none, so it is no conflict).
    """
    schema = request.response_format is not None and request.response_format.type == "json_schema"
    if schema and request.tools and request.tool_choice != "none":
        return [
            "tools and a json_schema response_format in one request: grammar-constrained "
            "servers (llama-server, vLLM) cannot return a tool call when the output is "
            f"constrained to a schema, so the schema wins (model={request.model!r})"
        ]
    return []


def _check_max_tokens(request: ChatRequest) -> None:
    """`max_tokens`, when set, is an integer of at least 1, as OpenAI and vLLM require.

    Below 1 servers disagree (llama-server reads -1 as "no limit"), so the same request would
    mean different things on different replicas; a bool would go out as JSON `true`.
    """
    value: object = request.max_tokens
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        problem = f"{type(value).__name__} {value!r}"
    elif value < 1:
        problem = (
            f"{value} (llama-server reads -1 as no limit, OpenAI refuses it); leave max_tokens "
            "unset for the server's own limit"
        )
    else:
        return
    raise InvalidRequestError(
        f"max_tokens must be an integer of at least 1, not {problem}", model=request.model
    )


def embedding_inputs(request: EmbeddingRequest) -> list[str]:
    """The texts to embed, the request checked; a bare string is one text, not its characters."""
    check_embedding(request)
    texts = [request.input] if isinstance(request.input, str) else list(request.input)
    for position, text in enumerate(texts):
        if not isinstance(text, str):
            raise InvalidRequestError(
                f"input[{position}] is {type(text).__name__}; embeddings take text",
                model=request.model,
            )
    return texts


def embedding_payload(
    texts: list[str], request: EmbeddingRequest, endpoint: ModelEndpoint
) -> dict[str, Any]:
    """The embeddings body: always text input (servers differ on token ids), floats asked for."""
    payload: dict[str, Any] = {
        "model": endpoint.upstream_model,
        "input": texts,
        "encoding_format": "float",
    }
    if request.extra_body:
        payload.update(request.extra_body)
    return payload


def wire_messages(
    messages: Sequence[Message], endpoint: ModelEndpoint, profile: ServerProfile
) -> list[dict[str, Any]]:
    """The messages as the endpoint reads them, for chat and token counting alike.

    An assistant message's `reasoning` goes back under the profile's `reasoning_field`, and
    only to endpoints that declare the `reasoning` capability: other servers' templates do not
    expect it.
    """
    reasoning_field = (
        profile.reasoning_field if Capability.REASONING in endpoint.capabilities else None
    )
    return [_message(message, reasoning_field) for message in messages]


def _sampling(request: ChatRequest) -> dict[str, Any]:
    """The sampling settings given a value: OpenAI's, `stop`, then the server sampling ones."""
    sent: dict[str, Any] = {}
    for name in (
        "temperature",
        "top_p",
        "max_tokens",
        "seed",
        "frequency_penalty",
        "presence_penalty",
    ):
        value = getattr(request, name)
        if value is not None:
            sent[name] = value
    if request.stop is not None:
        # A bare string is one stop sequence, as OpenAI reads it, not one per character.
        sent["stop"] = [request.stop] if isinstance(request.stop, str) else list(request.stop)
    for name, value in (request.server_sampling or {}).items():
        if value is not None:
            sent[name] = value
    return sent


def _message(message: Message, reasoning_field: str | None) -> dict[str, Any]:
    wire: dict[str, Any] = {"role": message.role}
    content = message.content
    if isinstance(content, str) or content is None:
        wire["content"] = content
    else:
        wire["content"] = [_part(part) for part in content]
    if message.name is not None:
        wire["name"] = message.name
    if message.tool_calls:
        wire["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
            for call in message.tool_calls
        ]
    if message.tool_call_id is not None:
        wire["tool_call_id"] = message.tool_call_id
    if reasoning_field and message.role == "assistant" and message.reasoning is not None:
        wire[reasoning_field] = message.reasoning
    return wire


def _part(part: TextPart | ImagePart) -> dict[str, Any]:
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text}
    image: dict[str, Any] = {"url": part.url}
    if part.detail is not None:
        image["detail"] = part.detail
    return {"type": "image_url", "image_url": image}


def _tool(tool: Tool) -> dict[str, Any]:
    function: dict[str, Any] = {"name": tool.name, "parameters": dict(tool.parameters)}
    if tool.description is not None:
        function["description"] = tool.description
    if tool.strict is not None:
        function["strict"] = tool.strict
    return {"type": "function", "function": function}


def _response_format(response_format: ResponseFormat, profile: ServerProfile) -> dict[str, Any]:
    if response_format.type == "json_object" and profile.json_object_format:
        return {"type": "json_object"}
    schema = dict(response_format.schema or {"type": "object"})
    if profile.response_format_style == "tgi":
        return {"type": "json", "value": schema}
    spec: dict[str, Any] = {"name": response_format.name, "schema": schema}
    if response_format.description is not None:
        spec["description"] = response_format.description
    if response_format.strict is not None:
        spec["strict"] = response_format.strict
    return {"type": "json_schema", "json_schema": spec}
