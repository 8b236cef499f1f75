"""Prometheus text from `Provider.stats()`, read back with Prometheus's own parser, and served."""

from __future__ import annotations

import dataclasses
import json

import httpx2
import pytest
from prometheus_client.parser import text_string_to_metric_families

from selfhosted_core import (
    ChatRequest,
    CircuitState,
    Config,
    EndpointStats,
    Message,
    Provider,
    prometheus_text,
    serve_metrics,
)
from selfhosted_core.prometheus import CONTENT_TYPE, stats_from_text
from tests.core import payloads
from tests.secrets_canary import KEY, assert_hidden, chat_endpoint

IDLE = EndpointStats(
    model="tiny",
    endpoint="gpu-1",
    requests=0,
    errors=0,
    in_flight=0,
    circuit=CircuitState.CLOSED,
    consecutive_failures=0,
    loading=False,
    resting_for=None,
    last_error=None,
    latency_p50=None,
    latency_p95=None,
    latency_p99=None,
)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_each_stat_is_a_sample_labelled_with_model_and_endpoint() -> None:
    busy = dataclasses.replace(
        IDLE,
        requests=7,
        errors=2,
        in_flight=1,
        circuit=CircuitState.OPEN,
        latency_p50=0.25,
        prompt_tokens=40,
        cached_prompt_tokens=30,
        server_load=3,
        resting_for=4.5,
    )
    got = samples(prometheus_text([busy]))
    labels = (("endpoint", "gpu-1"), ("model", "tiny"))
    assert got[("selfhosted_requests_total", labels)] == 7
    assert got[("selfhosted_errors_total", labels)] == 2
    assert got[("selfhosted_in_flight", labels)] == 1
    assert got[("selfhosted_latency_p50_seconds", labels)] == 0.25
    assert got[("selfhosted_prompt_tokens_total", labels)] == 40
    assert got[("selfhosted_cached_prompt_tokens_total", labels)] == 30
    assert got[("selfhosted_server_load", labels)] == 3
    assert got[("selfhosted_resting_seconds", labels)] == 4.5
    states = {
        state: got[("selfhosted_circuit_state", (*labels, ("state", state)))]
        for state in ("closed", "open", "half_open")
    }
    assert states == {"closed": 0, "open": 1, "half_open": 0}


def test_every_metric_has_one_help_and_one_type_line_and_counters_end_in_total() -> None:
    text = prometheus_text([IDLE, dataclasses.replace(IDLE, endpoint="gpu-2")])
    helps = [line.split()[2] for line in text.splitlines() if line.startswith("# HELP")]
    types = [line.split()[2:] for line in text.splitlines() if line.startswith("# TYPE")]
    assert [name for name, _ in types] == helps
    assert len(set(helps)) == len(helps)
    assert all(name.startswith("selfhosted_") for name in helps)
    assert all(name.endswith("_total") == (kind == "counter") for name, kind in types)
    families = {family.name: family.type for family in text_string_to_metric_families(text)}
    assert families["selfhosted_requests"] == "counter"
    assert families["selfhosted_in_flight"] == "gauge"


def test_a_stat_not_known_yet_has_no_sample() -> None:
    got = samples(prometheus_text([IDLE]))
    names = {name for name, _ in got}
    assert "selfhosted_latency_p50_seconds" not in names
    assert "selfhosted_server_load" not in names
    assert "selfhosted_requests_total" in names


@pytest.mark.parametrize("label", ['quote"d', "back\\slash", "new\nline", "ünïcode"])
def test_label_values_are_escaped_and_read_back_whole(label: str) -> None:
    text = prometheus_text([dataclasses.replace(IDLE, endpoint=label)])
    assert len(text.splitlines()) == text.count("\n")
    endpoints = {
        dict(labels)["endpoint"] for name, labels in samples(text) if name.startswith("selfhosted_")
    }
    assert endpoints == {label}


def test_the_text_of_a_provider_that_served_shows_no_key() -> None:
    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=payloads.VLLM_REASONING)

    transport = httpx2.MockTransport(answer)
    config = Config(endpoints=[chat_endpoint("http://chat.test:8080")])
    with Provider(config, transport=transport) as provider:
        provider.chat(ChatRequest(model="tiny", messages=[Message(role="user", content="Hi")]))
        text = prometheus_text(provider.stats())
    assert samples(text)[("selfhosted_requests_total", (("endpoint", "chat-a"), ("model", "tiny")))]
    assert_hidden(text, "the metrics")
    assert KEY not in json.dumps(text)


def test_the_metrics_endpoint_serves_the_text_on_loopback() -> None:
    class Source:
        def stats(self) -> list[EndpointStats]:
            return [IDLE]

    with serve_metrics(Source()) as server:
        assert server.url.startswith("http://127.0.0.1:")
        assert server.url.endswith("/metrics")
        reply = httpx2.get(server.url)
        missing = httpx2.get(server.url.removesuffix("/metrics") + "/other")
    assert reply.status_code == 200
    assert reply.headers["content-type"] == CONTENT_TYPE
    assert reply.text == prometheus_text([IDLE])
    assert missing.status_code == 404


def test_a_closed_metrics_endpoint_releases_its_port() -> None:
    class Source:
        def stats(self) -> list[EndpointStats]:
            return []

    server = serve_metrics(Source())
    server.close()
    port = int(server.url.rsplit(":", 1)[1].split("/")[0])
    with serve_metrics(Source(), port=port) as again:
        assert httpx2.get(again.url).text == prometheus_text([])


def test_the_text_reads_back_as_the_stats_it_was_made_of() -> None:
    stats = [
        dataclasses.replace(
            IDLE,
            endpoint='odd "label" \\ with\nnewline',
            requests=4,
            errors=1,
            loading=True,
            circuit=CircuitState.HALF_OPEN,
            resting_for=2.5,
            latency_p50=0.125,
            latency_p99=1.5,
            affinity_hits=2,
            prompt_tokens=9,
            cached_prompt_tokens=3,
            server_load=5,
        ),
        dataclasses.replace(IDLE, model="minilm", endpoint="embed-1"),
    ]
    back = stats_from_text(prometheus_text(stats))
    assert back == stats
    assert back[0].loading is True
    assert isinstance(back[0].server_load, int)


def test_reading_skips_what_is_not_a_sample_of_ours() -> None:
    text = '# HELP other_total x\nother_total 3\n\nselfhosted_requests_total{model="m",endpoint="e"} 2\n'
    [entry] = stats_from_text(text)
    assert (entry.model, entry.endpoint, entry.requests, entry.circuit) == ("m", "e", 2, "closed")
