"""Pure renderers: core results in, rich renderables and one-line strings out."""

from __future__ import annotations

import math
from collections.abc import Sequence

from rich.markup import escape
from rich.table import Table
from rich.text import Text

from selfhosted_cli._terminal import CommandError
from selfhosted_core import (
    AuthenticationError,
    CapabilityError,
    ChatResponse,
    CircuitState,
    ConfigurationError,
    ContextWindowExceededError,
    EndpointConnectionError,
    EndpointStats,
    EndpointTimeoutError,
    HealthReport,
    HealthStatus,
    ModelInfo,
    NotFoundError,
    RateLimitError,
    ResponseError,
    ServerError,
    UnknownModelError,
)

__all__ = [
    "cosine_matrix",
    "describe_error",
    "embeddings_table",
    "health_table",
    "models_table",
    "similarity_table",
    "stats_table",
    "usage_line",
]

_STATUS_STYLE = {
    HealthStatus.OK: "green",
    HealthStatus.LOADING: "yellow",
    HealthStatus.UNAUTHORIZED: "red",
    HealthStatus.DOWN: "bold red",
}

_CIRCUIT_STYLE = {
    CircuitState.CLOSED: "green",
    CircuitState.HALF_OPEN: "yellow",
    CircuitState.OPEN: "bold red",
}

_HINTS: tuple[tuple[type[BaseException], str], ...] = (
    (UnknownModelError, "`selfhosted models` lists the configured ids"),
    (ConfigurationError, "fix the configuration (the README's configuration reference)"),
    (CapabilityError, "choose a model that declares it (`selfhosted models`)"),
    (EndpointConnectionError, "is the server running? `selfhosted check` shows every endpoint"),
    (EndpointTimeoutError, "the server is slow or stuck: check its load, or raise `timeout`"),
    (AuthenticationError, "check the endpoint's `api_key`"),
    (ContextWindowExceededError, "shorten the prompt or ask for fewer tokens"),
    (NotFoundError, "does the server serve this model? `selfhosted check` shows what it lists"),
    (RateLimitError, "the server is busy: retry later"),
    (ServerError, "the server failed: see its log"),
    (ResponseError, "the server's reply was malformed: run again with --verbose for detail"),
)


def describe_error(exc: BaseException) -> str:
    """One line: what failed (with model and endpoint when known) and what to do about it.

    Multi-line messages (several configuration problems, a YAML parser's report) are joined.
    """
    hint = next((text for kind, text in _HINTS if isinstance(exc, kind)), None)
    message = _one_line(str(exc))
    if isinstance(exc, CommandError) or hint is None:
        return message
    return f"{message} — {hint}"


def _one_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    joined = ""
    for line in lines:
        joined += line if not joined else (" " if joined.endswith(":") else "; ") + line
    return joined


def health_table(report: HealthReport) -> Table:
    """One row per endpoint: model, label, URL, server and version, status, latency, context."""
    table = Table(title="endpoints", title_justify="left")
    table.add_column("model")
    table.add_column("endpoint")
    table.add_column("url", overflow="fold", min_width=12)
    table.add_column("server")
    table.add_column("status")
    table.add_column("latency", justify="right", no_wrap=True)
    table.add_column("context", justify="right", no_wrap=True)
    details = any(entry.detail for entry in report.endpoints)
    if details:
        table.add_column("detail", overflow="fold")
    for entry in report.endpoints:
        server = entry.server.value if entry.server else "—"
        if entry.version:
            server = f"{server} {entry.version}"
        row = [
            Text(entry.model),
            Text(entry.endpoint),
            Text(entry.url),
            Text(server),
            Text(entry.status.value, style=_STATUS_STYLE[entry.status]),
            Text(f"{entry.latency_ms:.0f} ms" if entry.latency_ms is not None else "—"),
            Text(f"{entry.context_window:,}" if entry.context_window else "—"),
        ]
        if details:
            row.append(Text(entry.detail or ""))
        table.add_row(*row)
    return table


def stats_table(stats: Sequence[EndpointStats], report: HealthReport | None = None) -> Table:
    """One row per endpoint: its health and circuit, load, requests, latency, prompt cache.

    `report` is the latest health check, in the same (configuration) order as `stats`; without
    one (stats read from another process) there is no health column.
    """
    table = Table(title="endpoint stats", title_justify="left")
    table.add_column("model")
    table.add_column("endpoint")
    if report is not None:
        table.add_column("health")
    table.add_column("circuit")
    for name in ("in flight", "load", "requests", "errors", "p50", "p95", "cache hits"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("last error", overflow="fold")
    for position, entry in enumerate(stats):
        health = []
        if report is not None:
            status = report.endpoints[position].status
            health.append(Text(status.value, style=_STATUS_STYLE[status]))
        cache = (
            f"{entry.cached_prompt_tokens / entry.prompt_tokens:.0%}"
            if entry.prompt_tokens
            else "—"
        )
        table.add_row(
            Text(entry.model),
            Text(entry.endpoint),
            *health,
            Text(entry.circuit.value, style=_CIRCUIT_STYLE[entry.circuit]),
            str(entry.in_flight),
            str(entry.server_load) if entry.server_load is not None else "—",
            str(entry.requests),
            str(entry.errors),
            _milliseconds(entry.latency_p50),
            _milliseconds(entry.latency_p95),
            cache,
            Text(entry.last_error or ""),
        )
    return table


def _milliseconds(seconds: float | None) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds is not None else "—"


def models_table(models: Sequence[ModelInfo]) -> Table:
    """One row per model id: capabilities, dimension, replicas and their labels."""
    table = Table(title="models", title_justify="left")
    for name in ("id", "capabilities", "dimension", "context", "replicas", "endpoints"):
        table.add_column(name, justify="right" if name in ("dimension", "replicas") else "left")
    for model in models:
        table.add_row(
            Text(model.id),
            ", ".join(sorted(capability.value for capability in model.capabilities)),
            str(model.dimension) if model.dimension else "—",
            f"{model.context_window:,}" if model.context_window else "—",
            str(model.replicas),
            Text(", ".join(model.endpoints)),
        )
    return table


def usage_line(response: ChatResponse, seconds: float) -> str:
    """`model via endpoint · tokens · time · finish`, with markup escaped."""
    parts = [f"{response.model or '?'} via {response.endpoint}"]
    usage = response.usage
    if usage is None:
        parts.append("usage not reported")
    else:
        tokens = (
            f"{usage.prompt_tokens} prompt + {usage.completion_tokens} completion"
            f" = {usage.total_tokens} tokens"
        )
        if usage.cached_prompt_tokens:
            tokens += f" ({usage.cached_prompt_tokens} cached)"
        if usage.token_modifier != 1.0:
            tokens += f", billed {usage.billed_tokens:g}"
        parts.append(tokens)
    parts.append(f"{seconds:.2f} s")
    parts.append(f"finish: {response.finish_reason or '?'}")
    return escape(" · ".join(parts))


def cosine_matrix(vectors: Sequence[Sequence[float]]) -> list[list[float]]:
    """Cosine similarity of every pair of vectors (0 for a zero vector)."""
    norms = [math.sqrt(math.fsum(x * x for x in vector)) for vector in vectors]
    return [
        [
            math.fsum(x * y for x, y in zip(a, b, strict=True)) / (na * nb) if na and nb else 0.0
            for b, nb in zip(vectors, norms, strict=True)
        ]
        for a, na in zip(vectors, norms, strict=True)
    ]


def embeddings_table(texts: Sequence[str], vectors: Sequence[Sequence[float]]) -> Table:
    """Each text with its vector's size, norm and first values."""
    table = Table(title="embeddings", title_justify="left")
    for name, justify in (("#", "right"), ("text", "left"), ("dim", "right"), ("norm", "right")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    table.add_column("first values")
    for number, (text, vector) in enumerate(zip(texts, vectors, strict=True), start=1):
        head = ", ".join(f"{value:+.3f}" for value in vector[:4])
        norm = math.sqrt(math.fsum(x * x for x in vector))
        table.add_row(
            str(number), Text(text), str(len(vector)), f"{norm:.3f}", Text(f"[{head}, …]")
        )
    return table


def similarity_table(texts: Sequence[str], matrix: Sequence[Sequence[float]]) -> Table:
    """The cosine similarity matrix, rows labelled by text and columns by number."""
    table = Table(title="cosine similarity", title_justify="left")
    table.add_column("text")
    for number in range(1, len(texts) + 1):
        table.add_column(f"#{number}", justify="right", no_wrap=True, min_width=5)
    for text, row in zip(texts, matrix, strict=True):
        table.add_row(Text(text), *(f"{value:.3f}" for value in row))
    return table
