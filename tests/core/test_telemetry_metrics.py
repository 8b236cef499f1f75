"""OpenTelemetry metrics over mock transports, with the real SDK: the GenAI client histograms
and the per-endpoint gauges."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import pytest
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai
from opentelemetry.semconv._incubating.metrics import gen_ai_metrics

from selfhosted_core import (
    ChatRequest,
    Config,
    EmbeddingRequest,
    EndpointConnectionError,
    Message,
    Provider,
)
from selfhosted_core import _telemetry as names
from tests.core.test_telemetry import CHAT, answer, refused
from tests.driver import Driver
from tests.telemetry import Recorded, installed

LABELS = ("gauge-a", "gauge-b", "gauge-embed")


@pytest.fixture
def recorded() -> Recorded:
    return installed()


def provider_for(handler: Any = answer, **routing: Any) -> Provider:
    transport = httpx2.MockTransport(handler)
    endpoints: list[dict[str, Any]] = [
        {"url": "http://chat-a.test:8080", "id": "tiny", "label": LABELS[0]},
        {"url": "http://chat-b.test:8081", "id": "tiny", "label": LABELS[1]},
        {
            "url": "http://embed.test:9000",
            "id": "minilm",
            "label": LABELS[2],
            "capabilities": ["embedding"],
            "dimension": 2,
        },
    ]
    config = Config(endpoints=endpoints, routing={"backoff": 5.0, **routing})
    return Provider(config, transport=transport, async_transport=transport)


@pytest.fixture(params=["sync", "async"])
async def driver(request: pytest.FixtureRequest) -> AsyncIterator[Driver]:
    async with provider_for() as provider:
        yield Driver(request.param, provider)


def chat(**fields: Any) -> ChatRequest:
    return ChatRequest(model="tiny", messages=[Message(role="user", content="Hi")], **fields)


def histogram(recorded: dict[str, list[Any]], name: str) -> list[tuple[dict[str, Any], int, float]]:
    return [(dict(p.attributes), p.count, p.sum) for p in recorded.get(name, [])]


CHAT_LABELS = {
    names.OPERATION: "chat",
    names.PROVIDER: "selfhosted",
    names.REQUEST_MODEL: "tiny",
    names.RESPONSE_MODEL: "tiny-q4",
    names.SERVER_ADDRESS: "chat-a.test",
    names.SERVER_PORT: 8080,
}


def test_the_metric_names_are_the_semantic_conventions_own() -> None:
    assert names.DURATION == gen_ai_metrics.GEN_AI_CLIENT_OPERATION_DURATION
    assert names.TOKEN_USAGE == gen_ai_metrics.GEN_AI_CLIENT_TOKEN_USAGE
    assert names.TIME_TO_FIRST_CHUNK == gen_ai_metrics.GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK
    assert names.TOKEN_TYPE == gen_ai.GEN_AI_TOKEN_TYPE
    assert {gen_ai.GenAiTokenTypeValues.INPUT.value, gen_ai.GenAiTokenTypeValues.OUTPUT.value} == {
        "input",
        "output",
    }


async def test_a_chat_records_its_duration_and_its_tokens(
    driver: Driver, recorded: Recorded
) -> None:
    await driver.chat(chat(endpoint=LABELS[0]))
    points = recorded.points()
    [(labels, count, seconds)] = histogram(points, names.DURATION)
    assert (labels, count) == (CHAT_LABELS, 1)
    assert seconds > 0
    assert points[names.DURATION][0].explicit_bounds[:3] == (0.01, 0.02, 0.04)
    tokens = sorted(histogram(points, names.TOKEN_USAGE), key=lambda p: p[0][names.TOKEN_TYPE])
    assert tokens == [
        ({**CHAT_LABELS, names.TOKEN_TYPE: "input"}, 1, 3),
        ({**CHAT_LABELS, names.TOKEN_TYPE: "output"}, 1, 2),
    ]
    assert names.TIME_TO_FIRST_CHUNK not in points


async def test_a_stream_records_the_time_to_its_first_chunk(
    driver: Driver, recorded: Recorded
) -> None:
    await driver.stream(chat(endpoint=LABELS[0]))
    points = recorded.points()
    [(labels, count, seconds)] = histogram(points, names.TIME_TO_FIRST_CHUNK)
    assert (labels, count) == (CHAT_LABELS, 1)
    [(_, _, whole)] = histogram(points, names.DURATION)
    assert 0 < seconds < whole


async def test_embeddings_record_input_tokens_only(driver: Driver, recorded: Recorded) -> None:
    await driver.embed(EmbeddingRequest(model="minilm", input=["a"]))
    points = recorded.points()
    [(labels, _, count)] = histogram(points, names.TOKEN_USAGE)
    assert labels[names.TOKEN_TYPE] == "input"
    assert labels[names.OPERATION] == "embeddings"
    assert count == 2


async def test_a_failed_call_records_its_duration_with_the_error_type(recorded: Recorded) -> None:
    with provider_for(refused) as provider, pytest.raises(EndpointConnectionError):
        provider.chat(chat(max_attempts=2))
    points = recorded.points()
    [(labels, count, _)] = histogram(points, names.DURATION)
    assert labels[names.ERROR_TYPE] == "EndpointConnectionError"
    assert names.RESPONSE_MODEL not in labels
    assert count == 1
    assert names.TOKEN_USAGE not in points


def gauges(points: dict[str, list[Any]], name: str) -> dict[tuple[Any, ...], float]:
    return {
        tuple(sorted(dict(p.attributes).items())): p.value
        for p in points.get(name, [])
        if dict(p.attributes).get(names.ENDPOINT) in LABELS
    }


def test_the_gauges_show_each_endpoint_in_flight_and_its_circuit(recorded: Recorded) -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return refused(request) if request.url.host == "chat-a.test" else answer(request)

    gc.collect()  # the providers of earlier tests, which had the same labels
    with provider_for(handler, failure_threshold=1, cooldown=60) as provider:
        provider.chat(chat(endpoint=LABELS[0]))
        points = recorded.points()
    in_flight = gauges(points, names.IN_FLIGHT)
    assert in_flight == {
        ((names.REQUEST_MODEL, model), (names.ENDPOINT, label)): 0
        for label, model in zip(LABELS, ("tiny", "tiny", "minilm"), strict=True)
    }
    circuits = gauges(points, names.CIRCUIT)
    current = {
        dict(labels)[names.ENDPOINT]: dict(labels)[names.CIRCUIT_STATE]
        for labels, value in circuits.items()
        if value == 1
    }
    assert current == {LABELS[0]: "open", LABELS[1]: "closed", LABELS[2]: "closed"}
    assert len(circuits) == 9


def test_a_provider_that_is_gone_leaves_the_gauges(recorded: Recorded) -> None:
    provider = provider_for()
    provider.chat(chat())
    provider.close()
    del provider
    gc.collect()
    assert gauges(recorded.points(), names.IN_FLIGHT) == {}


def test_the_histograms_carry_no_request_text(recorded: Recorded) -> None:
    with provider_for() as provider:
        provider.chat(chat())
    shown = json.dumps({name: [str(p) for p in found] for name, found in recorded.points().items()})
    assert '"Hi"' not in shown


def test_a_meter_provider_alone_is_enough_for_the_metrics() -> None:
    script = f"""
import httpx2
from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from selfhosted_core import ChatRequest, Config, Message, Provider
reader = InMemoryMetricReader()
metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
reply = httpx2.Response(200, content={CHAT!r})
transport = httpx2.MockTransport(lambda request: reply)
config = Config(endpoints=[{{"url": "http://a.test:1", "id": "tiny"}}])
with Provider(config, transport=transport) as provider:
    provider.chat(ChatRequest(model="tiny", messages=[Message(role="user", content="Hi")]))
data = reader.get_metrics_data()
print(sorted(m.name for r in data.resource_metrics for s in r.scope_metrics for m in s.metrics))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert names.DURATION in done.stdout
    assert names.TOKEN_USAGE in done.stdout
