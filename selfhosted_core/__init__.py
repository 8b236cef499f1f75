"""selfhosted-llm core: one framework-neutral client for self-hosted inference servers.

Example:
    >>> from selfhosted_core import ChatRequest, Config, Message, Provider
    >>> provider = Provider(Config.load("endpoints.yaml"))  # doctest: +SKIP
    >>> provider.chat(ChatRequest(model="qwen3", messages=[Message(role="user", content="Hi")]))
    ... # doctest: +SKIP
"""

from __future__ import annotations

import logging

from selfhosted_core.config import (
    Capability,
    Config,
    LoadSignals,
    ModelEndpoint,
    ModelRouting,
    RoutingPolicy,
    RoutingState,
    RoutingStrategy,
    StateBackend,
)
from selfhosted_core.errors import (
    APIStatusError,
    Attempt,
    AuthenticationError,
    BadRequestError,
    CapabilityError,
    ConfigurationError,
    ContextWindowExceededError,
    EndpointConnectionError,
    EndpointTimeoutError,
    InvalidRequestError,
    NotFoundError,
    NotSupportedError,
    RateLimitError,
    ResponseError,
    SelfHostedError,
    ServerError,
    Stage,
    UnknownModelError,
)
from selfhosted_core.profiles import ServerKind, ServerProfile
from selfhosted_core.prometheus import MetricsServer, prometheus_text, serve_metrics
from selfhosted_core.provider import Provider
from selfhosted_core.routing import CircuitState, EndpointStats, affinity_name
from selfhosted_core.streams import AsyncChatStream, ChatStream
from selfhosted_core.types import (
    SERVER_SAMPLING,
    ChatChunk,
    ChatRequest,
    ChatResponse,
    ContentPart,
    EmbeddingRequest,
    EmbeddingResponse,
    EndpointHealth,
    HealthReport,
    HealthStatus,
    ImagePart,
    InvalidToolCall,
    Message,
    ModelInfo,
    ResponseFormat,
    Role,
    TextPart,
    Tool,
    ToolCall,
    ToolCallChunk,
    Usage,
)

__all__ = [
    "SERVER_SAMPLING",
    "APIStatusError",
    "AsyncChatStream",
    "Attempt",
    "AuthenticationError",
    "BadRequestError",
    "Capability",
    "CapabilityError",
    "ChatChunk",
    "ChatRequest",
    "ChatResponse",
    "ChatStream",
    "CircuitState",
    "Config",
    "ConfigurationError",
    "ContentPart",
    "ContextWindowExceededError",
    "EmbeddingRequest",
    "EmbeddingResponse",
    "EndpointConnectionError",
    "EndpointHealth",
    "EndpointStats",
    "EndpointTimeoutError",
    "HealthReport",
    "HealthStatus",
    "ImagePart",
    "InvalidRequestError",
    "InvalidToolCall",
    "LoadSignals",
    "Message",
    "MetricsServer",
    "ModelEndpoint",
    "ModelInfo",
    "ModelRouting",
    "NotFoundError",
    "NotSupportedError",
    "Provider",
    "RateLimitError",
    "ResponseError",
    "ResponseFormat",
    "Role",
    "RoutingPolicy",
    "RoutingState",
    "RoutingStrategy",
    "SelfHostedError",
    "ServerError",
    "ServerKind",
    "ServerProfile",
    "Stage",
    "StateBackend",
    "TextPart",
    "Tool",
    "ToolCall",
    "ToolCallChunk",
    "UnknownModelError",
    "Usage",
    "affinity_name",
    "prometheus_text",
    "serve_metrics",
]

# A library's logger: silent until the application configures logging (Python's own advice for
# libraries), instead of Python's last-resort handler printing warnings to stderr.
logging.getLogger(__name__).addHandler(logging.NullHandler())
