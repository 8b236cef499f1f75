"""The real OpenTelemetry SDK, installed once for the process, and what it recorded per test.

OpenTelemetry lets a process set its tracer and meter providers once, so the first test that
asks installs them (an in-memory span exporter, an in-memory metric reader with delta
histograms) and every later one shares them; `Recorded.fresh()` forgets what came before.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


@dataclass
class Recorded:
    """The process's exporter and reader."""

    spans: InMemorySpanExporter
    reader: InMemoryMetricReader

    def fresh(self) -> Recorded:
        self.spans.clear()
        self.reader.get_metrics_data()  # delta histograms: the next read starts from here
        return self

    def finished(self) -> list[ReadableSpan]:
        return list(self.spans.get_finished_spans())

    def points(self) -> dict[str, list[Any]]:
        """Every data point read now, by metric name."""
        data = self.reader.get_metrics_data()
        found: dict[str, list[Any]] = {}
        if data is None:
            return found
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    found.setdefault(metric.name, []).extend(metric.data.data_points)
        return found


_installed: Recorded | None = None


def installed() -> Recorded:
    """The SDK, set as the process's tracer and meter providers on the first call."""
    global _installed  # noqa: PLW0603
    if _installed is None:
        spans = InMemorySpanExporter()
        tracing = TracerProvider()
        tracing.add_span_processor(SimpleSpanProcessor(spans))
        trace.set_tracer_provider(tracing)
        reader = InMemoryMetricReader(
            preferred_temporality={Histogram: AggregationTemporality.DELTA}
        )
        metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
        _installed = Recorded(spans, reader)
    return _installed.fresh()


def attributes(span: ReadableSpan) -> dict[str, Any]:
    """A span's attributes as plain values (sequences as tuples)."""
    return {key: _plain(value) for key, value in (span.attributes or {}).items()}


def events(span: ReadableSpan) -> Iterator[tuple[str, dict[str, Any]]]:
    for event in span.events:
        yield event.name, {key: _plain(value) for key, value in (event.attributes or {}).items()}


def _plain(value: Any) -> Any:
    return (
        tuple(value) if not isinstance(value, str | bytes) and hasattr(value, "__iter__") else value
    )


def text_of(span: ReadableSpan) -> str:
    """Everything a span shows: name, attributes, events, status."""
    return repr((span.name, dict(span.attributes or {}), list(_event_texts(span)), span.status))


def _event_texts(span: ReadableSpan) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for event in span.events:
        yield event.name, dict(event.attributes or {})
