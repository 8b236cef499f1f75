"""`Provider.stats()` for dashboards: Prometheus exposition text, and a tiny endpoint serving it.

```
from selfhosted_core import prometheus_text, serve_metrics

print(prometheus_text(provider.stats()))
with serve_metrics(provider, port=9464) as server:   # http://127.0.0.1:9464/metrics
    ...
```

Every metric is named `selfhosted_...` and labelled with the endpoint's `model` and `endpoint`
(its label, `display_name`); nothing else is shown, never a key. The text follows the
Prometheus text format 0.0.4: one `# HELP` and `# TYPE` per metric, counters ending in
`_total`, label values escaped.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from http.server import BaseHTTPRequestHandler

from selfhosted_core.routing import CircuitState, EndpointStats

__all__ = [
    "CONTENT_TYPE",
    "MetricsServer",
    "StatsSource",
    "prometheus_text",
    "serve_metrics",
    "stats_from_text",
]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""The media type of the Prometheus text format."""

_METRICS: tuple[tuple[str, str, str, str], ...] = (
    ("requests_total", "counter", "Attempts that ended, answers and errors.", "requests"),
    ("errors_total", "counter", "Attempts that ended in an error.", "errors"),
    ("in_flight", "gauge", "Requests being served now.", "in_flight"),
    (
        "in_flight_elsewhere",
        "gauge",
        "Requests in flight there from the other processes sharing routing state.",
        "in_flight_elsewhere",
    ),
    (
        "consecutive_failures",
        "gauge",
        "Failures since the endpoint's last success.",
        "consecutive_failures",
    ),
    ("loading", "gauge", "1 while the endpoint says it is loading its model.", "loading"),
    (
        "resting_seconds",
        "gauge",
        "Seconds until a resting or ejected endpoint takes requests again.",
        "resting_for",
    ),
    (
        "latency_p50_seconds",
        "gauge",
        "Median seconds of the latest successful requests.",
        "latency_p50",
    ),
    (
        "latency_p95_seconds",
        "gauge",
        "95th percentile seconds of the latest successful requests.",
        "latency_p95",
    ),
    (
        "latency_p99_seconds",
        "gauge",
        "99th percentile seconds of the latest successful requests.",
        "latency_p99",
    ),
    (
        "affinity_hits_total",
        "counter",
        "Keyed requests whose first attempt went to their key's choice (last replica or home).",
        "affinity_hits",
    ),
    (
        "affinity_spills_total",
        "counter",
        "Keyed requests whose key's choice this endpoint was, sent elsewhere first.",
        "affinity_spills",
    ),
    (
        "prompt_tokens_total",
        "counter",
        "Prompt tokens of the endpoint's answers, as its server reported them.",
        "prompt_tokens",
    ),
    (
        "cached_prompt_tokens_total",
        "counter",
        "Prompt tokens the server took from its prompt cache.",
        "cached_prompt_tokens",
    ),
    (
        "server_load",
        "gauge",
        "Requests running and waiting as the server last reported them.",
        "server_load",
    ),
)
"""Name (after `selfhosted_`), type, help and `EndpointStats` field of each per-endpoint
metric; a field that is None leaves the endpoint's sample out."""

_FIELDS = {f"selfhosted_{name}": field for name, _, _, field in _METRICS}
_SECONDS = frozenset({"resting_for", "latency_p50", "latency_p95", "latency_p99"})
"""The fields that are seconds; every other is a count (`loading` a flag)."""
_STATES = frozenset(state.value for state in CircuitState)
_UNKNOWN: dict[str, Any] = {
    **{field: 0 for _, _, _, field in _METRICS if field not in _SECONDS},
    **dict.fromkeys(_SECONDS),
    "server_load": None,
    "loading": False,
    "circuit": CircuitState.CLOSED,
    "last_error": None,
}
"""An endpoint's stats before the text says otherwise."""
_SAMPLE = re.compile(r"^(selfhosted_\w+)\{(.*)\} (\S+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
_UNESCAPED = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}


class StatsSource(Protocol):
    """What `serve_metrics` reads: a `Provider`, or anything else with its `stats()`."""

    def stats(self) -> Sequence[EndpointStats]:
        """One entry per endpoint."""
        ...


def prometheus_text(stats: Iterable[EndpointStats]) -> str:
    """The endpoints' stats in the Prometheus text format (see the module docstring).

    The circuit state is one `selfhosted_circuit_state` sample per state, 1 for the current.

    Example:
        >>> print(prometheus_text(provider.stats()))  # doctest: +SKIP
        # HELP selfhosted_requests_total Attempts that ended, answers and errors.
        # TYPE selfhosted_requests_total counter
        selfhosted_requests_total{model="qwen3",endpoint="gpu-1"} 12
        ...
    """
    entries = list(stats)
    labels = [f'model="{_escape(s.model)}",endpoint="{_escape(s.endpoint)}"' for s in entries]
    lines: list[str] = []
    for name, kind, description, field in _METRICS:
        lines += [f"# HELP selfhosted_{name} {description}", f"# TYPE selfhosted_{name} {kind}"]
        for entry, label in zip(entries, labels, strict=True):
            sample = getattr(entry, field)
            if sample is not None:
                lines.append(f"selfhosted_{name}{{{label}}} {_number(sample)}")
    lines += [
        "# HELP selfhosted_circuit_state 1 for the endpoint's circuit breaker state "
        "(closed: taking requests, open: ejected, half_open: probing).",
        "# TYPE selfhosted_circuit_state gauge",
    ]
    for entry, label in zip(entries, labels, strict=True):
        for state in CircuitState:
            current = int(entry.circuit is state)
            lines.append(f'selfhosted_circuit_state{{{label},state="{state.value}"}} {current}')
    return "\n".join(lines) + "\n"


def stats_from_text(text: str) -> list[EndpointStats]:
    """The stats back from `prometheus_text` (what `serve_metrics` serves), in its order.

    Only what the text carries comes back: `last_error` is None. Lines that are not samples
    of these metrics are skipped.
    """
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for line in text.splitlines():
        sample = _SAMPLE.match(line)
        if sample is None:
            continue
        name, labels, value = sample.groups()
        named = {key: _unescape(raw) for key, raw in _LABEL.findall(labels)}
        entry = found.setdefault((named.get("model", ""), named.get("endpoint", "")), {})
        if name == "selfhosted_circuit_state":
            if float(value) == 1 and named.get("state") in _STATES:
                entry["circuit"] = CircuitState(named["state"])
        elif name in _FIELDS:
            field, number = _FIELDS[name], float(value)
            entry[field] = (
                number if field in _SECONDS else bool(number) if field == "loading" else int(number)
            )
    return [
        EndpointStats(**{**_UNKNOWN, **entry, "model": model, "endpoint": endpoint})
        for (model, endpoint), entry in found.items()
    ]


def _unescape(value: str) -> str:
    return re.sub(r"\\.", lambda match: _UNESCAPED.get(match.group(), match.group()), value)


def _escape(value: str) -> str:
    """A label value as the text format needs it: backslash, double quote and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if isinstance(value, bool | int):
        return str(int(value))
    return repr(float(value))


class MetricsServer:
    """A loopback HTTP server answering `GET /metrics` with `prometheus_text(source.stats())`.

    Runs in a daemon thread from construction until `close()` (or the `with` block's end).

    Attributes:
        url: Where the metrics are, `http://HOST:PORT/metrics`.
    """

    def __init__(self, source: StatsSource, *, host: str = "127.0.0.1", port: int = 0) -> None:
        # Imported here: `http.server` (and the `email` package it loads) costs 15 ms to
        # import, which every other user of the core would pay.
        from http.server import ThreadingHTTPServer  # noqa: PLC0415

        self._server = ThreadingHTTPServer((host, port), _handler(source))
        self._server.daemon_threads = True
        bound_host, bound_port = self._server.socket.getsockname()[:2]
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        self.url = f"http://{shown}:{bound_port}/metrics"
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="selfhosted-metrics", daemon=True
        )
        self._thread.start()

    def __repr__(self) -> str:
        return f"MetricsServer(url={self.url!r})"

    def close(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def serve_metrics(source: StatsSource, *, host: str = "127.0.0.1", port: int = 0) -> MetricsServer:
    """Serve `source.stats()` for Prometheus to scrape (the LiteLLM proxy case).

    Loopback by default; give `host="0.0.0.0"` to be scraped from elsewhere. Port 0 picks a
    free one (see `MetricsServer.url`).
    """
    return MetricsServer(source, host=host, port=port)


def _handler(source: StatsSource) -> type[BaseHTTPRequestHandler]:
    """The request handler serving `source`'s stats."""
    from http.server import BaseHTTPRequestHandler  # noqa: PLC0415

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            """`/metrics` is the text; any other path is 404."""
            if self.path.split("?", 1)[0] != "/metrics":
                self.send_error(404)
                return
            body = prometheus_text(source.stats()).encode()
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: a scrape every few seconds is not worth a line on stderr."""

    return Handler
