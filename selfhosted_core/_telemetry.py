"""OpenTelemetry, when the application set it up: a span and metrics per chat or embeddings call.

Optional (`pip install 'selfhosted-llm[otel]'`) and free when unused: nothing is imported or
made unless the application has imported `opentelemetry` and installed a tracer provider or a
meter provider (an SDK's; the API's own proxy and no-op providers do not count). Then each call
gets an `Observation`: the span `chat {model}` or `embeddings {model}` of kind CLIENT, named and
attributed by the GenAI semantic conventions, with the library's own attributes under
`selfhosted.`: the endpoint label and server kind that served, the number of attempts, the
affinity outcome (`hit` or `spill`), and one `selfhosted.attempt` event per attempt (endpoint,
outcome, status, seconds). Message content is recorded only when the application opts in with
`OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true`; a key never is, nor an error's text.

Metrics, by the same conventions: the `gen_ai.client.operation.duration` and
`gen_ai.client.token.usage` histograms (and `gen_ai.client.operation.time_to_first_chunk` for
streams) with the standard attributes; and, from the first call on, two observable gauges over
every live `Provider`'s endpoints: `selfhosted.endpoint.in_flight` and
`selfhosted.endpoint.circuit.state` (per `selfhosted.circuit.state`, how many providers'
breakers are in that state: 1 for the current one when a single provider serves the endpoint).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
import weakref
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from selfhosted_core.config import ModelEndpoint
from selfhosted_core.types import (
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    Message,
    TextPart,
)

if TYPE_CHECKING:
    from opentelemetry import metrics
    from opentelemetry.trace import Span, Tracer

    from selfhosted_core.prometheus import StatsSource
    from selfhosted_core.routing import EndpointStats

# The GenAI semantic conventions' names (checked against `opentelemetry-semantic-conventions`
# by the tests; that package is not needed at run time).
OPERATION = "gen_ai.operation.name"
PROVIDER = "gen_ai.provider.name"
REQUEST_MODEL = "gen_ai.request.model"
REQUEST_MAX_TOKENS = "gen_ai.request.max_tokens"
REQUEST_TEMPERATURE = "gen_ai.request.temperature"
RESPONSE_MODEL = "gen_ai.response.model"
FINISH_REASONS = "gen_ai.response.finish_reasons"
FIRST_CHUNK = "gen_ai.response.time_to_first_chunk"
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
CACHED_INPUT_TOKENS = "gen_ai.usage.cache_read.input_tokens"
INPUT_MESSAGES = "gen_ai.input.messages"
OUTPUT_MESSAGES = "gen_ai.output.messages"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"
ERROR_TYPE = "error.type"
STATUS_CODE = "http.response.status_code"
TOKEN_TYPE = "gen_ai.token.type"
DURATION = "gen_ai.client.operation.duration"
TOKEN_USAGE = "gen_ai.client.token.usage"
TIME_TO_FIRST_CHUNK = "gen_ai.client.operation.time_to_first_chunk"
# The library's own.
ENDPOINT = "selfhosted.endpoint"
SERVER = "selfhosted.server"
ATTEMPTS = "selfhosted.attempts"
AFFINITY = "selfhosted.affinity"
ATTEMPT_EVENT = "selfhosted.attempt"
ATTEMPT_NUMBER = "selfhosted.attempt.number"
ATTEMPT_OUTCOME = "selfhosted.attempt.outcome"
ATTEMPT_SECONDS = "selfhosted.attempt.duration"
IN_FLIGHT = "selfhosted.endpoint.in_flight"
CIRCUIT = "selfhosted.endpoint.circuit.state"
CIRCUIT_STATE = "selfhosted.circuit.state"

PROVIDER_NAME = "selfhosted"
"""`gen_ai.provider.name`: the servers are the operator's own (LangSmith's `ls_provider` too)."""

CAPTURE_CONTENT = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
_CAPTURING = frozenset({"true", "span_only", "span_and_event"})

_SECONDS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
_TOKENS = tuple(4.0**power for power in range(14))
"""The conventions' advised bucket boundaries for durations and for token counts."""
_METRIC_KEYS = (
    OPERATION,
    PROVIDER,
    REQUEST_MODEL,
    RESPONSE_MODEL,
    SERVER_ADDRESS,
    SERVER_PORT,
    ERROR_TYPE,
)
"""The attributes the conventions give both client metrics (and `gen_ai.token.type`)."""

R = TypeVar("R", ChatResponse, EmbeddingResponse)

_SCOPE = "selfhosted_core"
"""The instrumentation scope of the tracer and the meter."""

_kit: Kit | None = None
_broken = False
"""Set when making the instruments failed: telemetry stays off, requests go on."""
_making = threading.Lock()
_sources: weakref.WeakSet[StatsSource] = weakref.WeakSet()
_tracking = threading.Lock()
"""Guards `_sources`: providers are added on request threads while a reader iterates it."""

_log = logging.getLogger("selfhosted_core")


def track(source: StatsSource) -> None:
    """Count `source`'s endpoints in the gauges while it lives (each `Provider` is tracked)."""
    with _tracking:
        _sources.add(source)


def _live_stats() -> Iterator[EndpointStats]:
    """Every tracked provider's endpoint stats (several providers may share an endpoint)."""
    with _tracking:
        sources = list(_sources)
    for source in sources:
        yield from source.stats()


class Kit:
    """The tracer and the instruments, made once the application has set OpenTelemetry up."""

    def __init__(self) -> None:
        from opentelemetry import metrics, trace  # noqa: PLC0415 - only once OTel is in use

        self.tracer: Tracer = trace.get_tracer(_SCOPE)
        meter = metrics.get_meter(_SCOPE)
        self.duration = meter.create_histogram(
            DURATION, "s", "GenAI operation duration.", explicit_bucket_boundaries_advisory=_SECONDS
        )
        self.tokens = meter.create_histogram(
            TOKEN_USAGE,
            "{token}",
            "Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=_TOKENS,
        )
        self.first_chunk = meter.create_histogram(
            TIME_TO_FIRST_CHUNK,
            "s",
            "Time to receive the first chunk of a streamed answer.",
            explicit_bucket_boundaries_advisory=_SECONDS,
        )
        meter.create_observable_gauge(
            IN_FLIGHT, [_in_flight], "{request}", "Requests being served by the endpoint now."
        )
        meter.create_observable_gauge(
            CIRCUIT, [_circuits], "1", "1 for the endpoint's circuit breaker state."
        )


def _in_flight(options: metrics.CallbackOptions) -> Iterable[metrics.Observation]:
    from opentelemetry.metrics import Observation as Measured  # noqa: PLC0415

    # Providers made from one config (a LangChain chat model and its embeddings) share
    # endpoints: their counts add up, one observation per endpoint.
    totals: Counter[tuple[str, str]] = Counter()
    for entry in _live_stats():
        totals[entry.model, entry.endpoint] += entry.in_flight
    for (model, endpoint), count in totals.items():
        yield Measured(count, {REQUEST_MODEL: model, ENDPOINT: endpoint})


def _circuits(options: metrics.CallbackOptions) -> Iterable[metrics.Observation]:
    from opentelemetry.metrics import Observation as Measured  # noqa: PLC0415

    from selfhosted_core.routing import CircuitState  # noqa: PLC0415 - routing imports this

    # Each provider keeps its own breaker: a state's value is how many are in it.
    counts: Counter[tuple[str, str, CircuitState]] = Counter()
    for entry in _live_stats():
        for state in CircuitState:
            counts[entry.model, entry.endpoint, state] += entry.circuit is state
    for (model, endpoint, state), count in counts.items():
        yield Measured(
            count, {REQUEST_MODEL: model, ENDPOINT: endpoint, CIRCUIT_STATE: state.value}
        )


def kit() -> Kit | None:
    """The instruments when OpenTelemetry is set up, else None (and nothing is imported)."""
    global _kit, _broken  # noqa: PLW0603 - once set, a provider stays set for the process
    if _kit is not None or _broken:
        return _kit
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:
        return None
    metrics = sys.modules.get("opentelemetry.metrics._internal")
    if not (_may_be_set(trace, "_TRACER_PROVIDER") or _may_be_set(metrics, "_METER_PROVIDER")):
        return None
    providers = [trace.get_tracer_provider()]
    if metrics is not None:
        providers.append(metrics.get_meter_provider())
    if not any(map(_installed, providers)):
        return None
    with _making:  # one set of instruments, whichever thread's call comes first
        if _kit is None and not _broken:
            try:
                _kit = Kit()
            except Exception:  # an installed OTel API this code cannot use: no telemetry
                _broken = True
                _log.warning("OpenTelemetry is set up but unusable here: no spans or metrics")
    return _kit


_UNKNOWN = object()


def _may_be_set(api: ModuleType | None, name: str) -> bool:
    """False when the API module's own global says no provider was set.

    A shortcut past the public getter, which reads the environment on every call while no
    provider is set (2-3 µs per call: LangChain imports OpenTelemetry whether or not it is
    used). Should the global go, the public getter decides. A provider named only by the
    `OTEL_PYTHON_TRACER_PROVIDER` variable is seen once something has asked for it.
    """
    return api is not None and getattr(api, name, _UNKNOWN) is not None


def _installed(provider: object) -> bool:
    """Whether `provider` is an SDK's: the API's own (proxy, no-op) live in its modules."""
    module = type(provider).__module__
    return not module.startswith(("opentelemetry.trace", "opentelemetry.metrics"))


def observe(operation: str, request: ChatRequest | EmbeddingRequest) -> Observation | None:
    """The observation of one call, or None while OpenTelemetry is not set up."""
    instruments = kit()
    return None if instruments is None else Observation(instruments, operation, request)


class Observation:
    """One call's span: opened when the call starts, attributed as it goes, ended once."""

    def __init__(self, kit: Kit, operation: str, request: ChatRequest | EmbeddingRequest) -> None:
        self._kit = kit
        self._name = f"{operation} {request.model}"
        attributes: dict[str, Any] = {
            OPERATION: operation,
            PROVIDER: PROVIDER_NAME,
            REQUEST_MODEL: request.model,
        }
        self._messages: tuple[Message, ...] = ()
        if isinstance(request, ChatRequest):
            if request.max_tokens is not None:
                attributes[REQUEST_MAX_TOKENS] = request.max_tokens
            if request.temperature is not None:
                attributes[REQUEST_TEMPERATURE] = request.temperature
            if os.environ.get(CAPTURE_CONTENT, "").strip().lower() in _CAPTURING:
                self._messages = tuple(request.messages)
        self._attributes = attributes
        self._span: Span | None = None
        self._started = 0.0
        self._first_chunk: float | None = None
        self._endpoint: ModelEndpoint | None = None
        self._attempts = 0
        self._affinity: str | None = None

    def start(self) -> Span:
        """Open the span (a client span, not made current: see `current`)."""
        from opentelemetry.trace import SpanKind  # noqa: PLC0415

        self._span = self._kit.tracer.start_span(
            self._name, kind=SpanKind.CLIENT, attributes=self._attributes
        )
        self._started = time.perf_counter()
        if self._messages:
            self._span.set_attribute(INPUT_MESSAGES, _messages_json(self._messages))
        return self._span

    @contextmanager
    def current(self) -> Iterator[None]:
        """Open the span and make it current while the call runs; end it with its outcome."""
        from opentelemetry import trace  # noqa: PLC0415

        span = self.start()
        try:
            with trace.use_span(span, record_exception=False, set_status_on_exception=False):
                yield
        except BaseException as exc:
            self.failed(exc)
            raise

    def routed(self, *, hit: bool) -> None:
        """The request's first attempt went to its affinity key's first choice, or not."""
        self._affinity = "hit" if hit else "spill"

    def attempt(
        self, endpoint: ModelEndpoint, number: int, outcome: str, status: int | None, seconds: float
    ) -> None:
        """One attempt ended: an event on the span, and the endpoint the call is on."""
        self._endpoint = endpoint
        self._attempts = number
        if self._span is None:
            return
        event: dict[str, Any] = {
            ENDPOINT: endpoint.display_name,
            ATTEMPT_NUMBER: number,
            ATTEMPT_OUTCOME: outcome,
            ATTEMPT_SECONDS: seconds,
        }
        if status is not None:
            event[STATUS_CODE] = status
        self._span.add_event(ATTEMPT_EVENT, event)

    def first_chunk(self) -> None:
        """A stream delivered its first chunk."""
        if self._first_chunk is None:
            self._first_chunk = time.perf_counter() - self._started

    def answered(self, response: R) -> R:
        """The call's answer: its attributes, then the span ends; returns `response`."""
        attributes: dict[str, Any] = {}
        if response.model:
            attributes[RESPONSE_MODEL] = response.model
        usage = response.usage
        if usage is not None:
            attributes[INPUT_TOKENS] = usage.prompt_tokens
            if isinstance(response, ChatResponse):
                attributes[OUTPUT_TOKENS] = usage.completion_tokens
            if usage.cached_prompt_tokens is not None:
                attributes[CACHED_INPUT_TOKENS] = usage.cached_prompt_tokens
        if isinstance(response, ChatResponse):
            if response.finish_reason:
                attributes[FINISH_REASONS] = (response.finish_reason,)
            attributes[SERVER] = response.server.value
            if self._messages:
                attributes[OUTPUT_MESSAGES] = _answer_json(response)
        if self._first_chunk is not None:
            attributes[FIRST_CHUNK] = self._first_chunk
        self._end(attributes)
        return response

    def failed(self, error: BaseException) -> None:
        """The call ended in `error`: its type (never its text), then the span ends."""
        from opentelemetry.trace import Status, StatusCode  # noqa: PLC0415

        if self._span is not None:
            self._span.set_status(Status(StatusCode.ERROR))
        self._end({ERROR_TYPE: type(error).__name__})

    def closed(self) -> None:
        """The caller stopped reading a stream before its end: not an error."""
        self._end({})

    def _end(self, attributes: dict[str, Any]) -> None:
        span = self._span
        if span is None:
            return
        self._span = None
        endpoint = self._endpoint
        if endpoint is not None:
            parts = urlsplit(endpoint.url)
            attributes[ENDPOINT] = endpoint.display_name
            if parts.hostname:
                attributes[SERVER_ADDRESS] = parts.hostname
            attributes[SERVER_PORT] = parts.port or (443 if parts.scheme == "https" else 80)
        attributes[ATTEMPTS] = self._attempts
        if self._affinity is not None:
            attributes[AFFINITY] = self._affinity
        span.set_attributes(attributes)
        span.end()
        self._measure(attributes)

    def _measure(self, ended: dict[str, Any]) -> None:
        """The call's duration, and its tokens when the answer counted them."""
        seconds = time.perf_counter() - self._started
        found = {**self._attributes, **ended}
        labels = {key: found[key] for key in _METRIC_KEYS if key in found}
        kit = self._kit
        kit.duration.record(seconds, labels)
        for key, kind in ((INPUT_TOKENS, "input"), (OUTPUT_TOKENS, "output")):
            if key in ended:
                kit.tokens.record(ended[key], {**labels, TOKEN_TYPE: kind})
        if self._first_chunk is not None:
            kit.first_chunk.record(self._first_chunk, labels)


def _text(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list | tuple):
        return "".join(part.text for part in content if isinstance(part, TextPart))
    return ""


def _messages_json(messages: tuple[Message, ...]) -> str:
    """The conversation in the conventions' `gen_ai.input.messages` shape (opted in only)."""
    return json.dumps(
        [
            {"role": m.role, "parts": [{"type": "text", "content": _text(m.content)}]}
            for m in messages
        ]
    )


def _answer_json(response: ChatResponse) -> str:
    message: dict[str, Any] = {
        "role": "assistant",
        "parts": [{"type": "text", "content": response.content or ""}],
    }
    if response.finish_reason:
        message["finish_reason"] = response.finish_reason
    return json.dumps([message])
