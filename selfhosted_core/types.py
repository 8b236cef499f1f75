"""Framework-neutral request and response types.

Adapters (LangChain, LiteLLM) convert to and from these; the core never sees framework types.
All are plain dataclasses: cheap to build on the per-chunk hot path and easy to read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Literal

from selfhosted_core.config import Capability
from selfhosted_core.profiles import ServerKind

__all__ = [
    "SERVER_SAMPLING",
    "ChatChunk",
    "ChatRequest",
    "ChatResponse",
    "ContentPart",
    "EmbeddingRequest",
    "EmbeddingResponse",
    "EndpointHealth",
    "HealthReport",
    "HealthStatus",
    "ImagePart",
    "InvalidToolCall",
    "Message",
    "ModelInfo",
    "ResponseFormat",
    "Role",
    "TextPart",
    "Tool",
    "ToolCall",
    "ToolCallChunk",
    "Usage",
]

Role = Literal["system", "developer", "user", "assistant", "tool"]
"""Who speaks a message."""


@dataclass(frozen=True, slots=True)
class TextPart:
    """A text piece of a multi-part message."""

    text: str


@dataclass(frozen=True, slots=True)
class ImagePart:
    """An image given by URL (`https://...` or a `data:image/...;base64,...` URL)."""

    url: str
    detail: Literal["auto", "low", "high"] | None = None


ContentPart = TextPart | ImagePart
"""One piece of a multi-part message."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCall:
    """A well-formed tool call: `arguments` is the JSON text, `args` the parsed object."""

    id: str
    name: str
    arguments: str
    args: Mapping[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class InvalidToolCall:
    """A tool call whose arguments did not parse; the raw text and the reason are kept."""

    id: str
    name: str | None
    arguments: str
    error: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    """One chat message.

    Example:
        >>> Message(role="user", content="What is 2 + 2?")
        Message(role='user', content='What is 2 + 2?', ...)
    """

    role: Role
    content: str | Sequence[ContentPart] | None = None
    name: str | None = None
    tool_calls: Sequence[ToolCall] = ()
    tool_call_id: str | None = None
    reasoning: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Tool:
    """A function the model may call; `parameters` is its JSON schema."""

    name: str
    description: str | None = None
    parameters: Mapping[str, Any] = field(
        default_factory=lambda: {"type": "object", "properties": {}}
    )
    strict: bool | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseFormat:
    """Structured output: `json_schema` with a schema, or free-form `json_object`."""

    type: Literal["json_schema", "json_object"]
    schema: Mapping[str, Any] | None = None
    name: str = "response"
    description: str | None = None
    strict: bool | None = None


SERVER_SAMPLING = frozenset(
    {
        "top_k",
        "min_p",
        "typical_p",
        "repetition_penalty",
        "repeat_penalty",
        "logit_bias",
        "reasoning_effort",
    }
)
"""The server sampling parameters: those beyond `ChatRequest`'s own fields that llama-server,
vLLM or SGLang read (`repeat_penalty` is llama-server's spelling, `repetition_penalty` vLLM's
and SGLang's), sent as given when `ChatRequest.server_sampling` names them. Both adapters
accept exactly these by name; any other server parameter goes in `extra_body`."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatRequest:
    """A chat completion request.

    `tool_choice` is `auto`, `none`, `required`, or the name of one of `tools`.
    `extra_body` is merged into the payload last, for server-specific parameters.
    `server_sampling` maps names from `SERVER_SAMPLING` to their values (None: not sent).
    `timeout` (seconds) replaces the endpoint's configured timeout for this request.

    How it is routed and resent, when the config's `routing` is not to decide alone:
    `endpoint` names the replica (URL or label) to prefer: it serves the request when it can
    take it, and a sibling does when it cannot have started it (ejected, resting, refused or
    reset before answering). `strict_endpoint` keeps the request on that replica whatever
    happens (a probe of one server). `max_attempts` replaces `routing.max_attempts` (sends
    at most, the first included) and `resend_unsafe` replaces `routing.resend_unsafe`.
    `affinity` names what the request belongs to (a session, a thread, a user): under the
    `affinity` strategy, requests with the same name go to the same replica while it can take
    them; without it, the prompt's leading prefix decides (see `RoutingPolicy.strategy`).

    Example:
        >>> ChatRequest(model="qwen3", messages=[Message(role="user", content="Hi")], max_tokens=64)
        ChatRequest(model='qwen3', ...)
    """

    model: str
    messages: Sequence[Message]
    tools: Sequence[Tool] = ()
    tool_choice: str | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: Sequence[str] | None = None
    seed: int | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    extra_body: Mapping[str, Any] | None = None
    timeout: float | None = None
    endpoint: str | None = None
    strict_endpoint: bool = False
    max_attempts: int | None = None
    resend_unsafe: bool | None = None
    server_sampling: Mapping[str, Any] | None = None
    affinity: str | None = None

    def required_capabilities(self) -> frozenset[Capability]:
        """The capabilities an endpoint must declare to serve this request."""
        needed = {Capability.CHAT}
        if self.tools:
            needed.add(Capability.FUNCTION_CALL)
        if self.response_format is not None:
            needed.add(Capability.STRUCTURED_OUTPUT)
        if any(
            isinstance(part, ImagePart)
            for message in self.messages
            if not isinstance(message.content, str | None)
            for part in message.content
        ):
            needed.add(Capability.VISION)
        return frozenset(needed)


@dataclass(frozen=True, slots=True, kw_only=True)
class Usage:
    """Token counts as the server reported them, plus the billed figure.

    `billed_tokens` is `total_tokens` times the endpoint's token modifier.
    """

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cached_prompt_tokens: int | None = None
    reasoning_tokens: int | None = None
    token_modifier: float = 1.0

    @property
    def billed_tokens(self) -> float:
        """Total tokens multiplied by the endpoint's token modifier."""
        return self.total_tokens * self.token_modifier


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatResponse:
    """A complete (or, in `SelfHostedError.partial`, partial) chat answer.

    Attributes:
        content: The answer text, None when the model only called tools.
        reasoning: The model's reasoning, from whichever of the three forms the server used.
        tool_calls: Calls whose arguments parsed as a JSON object.
        invalid_tool_calls: Calls whose arguments did not; raw text and error kept.
        finish_reason: `stop`, `length`, `tool_calls`, `content_filter`, or the server's word.
        usage: Token counts; None when the server reported none (never a fake zero).
        model: The model name as the server reported it.
        endpoint: The label of the endpoint that answered.
        server: The server kind of that endpoint.
        timings: llama-server's `timings` object, when present.
    """

    id: str | None
    model: str | None
    content: str | None
    reasoning: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    invalid_tool_calls: tuple[InvalidToolCall, ...] = ()
    finish_reason: str | None = None
    usage: Usage | None = None
    endpoint: str = ""
    server: ServerKind = ServerKind.GENERIC
    system_fingerprint: str | None = None
    created: int | None = None
    timings: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCallChunk:
    """A piece of a streamed tool call; `index` identifies the call across chunks.

    `id` and `name` come on the first piece of each call (ids are generated when the server
    sends none); `arguments` holds the next fragment of the JSON text.
    """

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatChunk:
    """One increment of a streamed answer; empty fields mean nothing new arrived."""

    content: str | None = None
    reasoning: str | None = None
    tool_calls: tuple[ToolCallChunk, ...] = ()
    finish_reason: str | None = None
    usage: Usage | None = None
    id: str | None = None
    model: str | None = None
    endpoint: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class EmbeddingRequest:
    """Texts to embed with an embedding model.

    `timeout` replaces the endpoint's for this call; `endpoint`, `strict_endpoint`,
    `max_attempts` and `resend_unsafe` route and resend it as they do a `ChatRequest`.
    """

    model: str
    input: Sequence[str]
    extra_body: Mapping[str, Any] | None = None
    timeout: float | None = None
    endpoint: str | None = None
    strict_endpoint: bool = False
    max_attempts: int | None = None
    resend_unsafe: bool | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class EmbeddingResponse:
    """One vector per input, in input order."""

    model: str | None
    embeddings: list[list[float]]
    usage: Usage | None = None
    endpoint: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelInfo:
    """A configured model as callers see it (replicas folded into one entry).

    `context_window` is `Provider.context_window(id)` at the time of listing: the smallest
    configured or health-reported context size of the replicas, None while unknown.
    """

    id: str
    label: str
    capabilities: frozenset[Capability]
    dimension: int | None
    token_modifier: float
    provider_id: str
    replicas: int
    endpoints: tuple[str, ...]
    context_window: int | None = None


class HealthStatus(str, Enum):
    """The state of one endpoint as a health check saw it."""

    OK = "ok"
    LOADING = "loading"
    UNAUTHORIZED = "unauthorized"
    DOWN = "down"


@dataclass(frozen=True, slots=True, kw_only=True)
class EndpointHealth:
    """One endpoint's health: status, latency, and what the server told about itself.

    `server` is the kind the server revealed, else the one the config declared. `version` is
    the server software's own version string when it tells one (llama-server: its build, e.g.
    `b6123-abc1234`).
    """

    model: str
    endpoint: str
    url: str
    status: HealthStatus
    latency_ms: float | None = None
    server: ServerKind | None = None
    version: str | None = None
    context_window: int | None = None
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class HealthReport:
    """Health of every endpoint; one endpoint down never hides the others."""

    endpoints: tuple[EndpointHealth, ...]

    @property
    def ok(self) -> bool:
        """Whether every endpoint answered ok."""
        return all(entry.status is HealthStatus.OK for entry in self.endpoints)

    def for_model(self, model: str) -> tuple[EndpointHealth, ...]:
        """The entries of one model's replicas."""
        return tuple(entry for entry in self.endpoints if entry.model == model)
