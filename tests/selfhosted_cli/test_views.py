"""The pure renderers: error lines with hints, health and model tables, usage, similarity."""

from __future__ import annotations

import io

import pytest
from rich.console import Console
from rich.table import Table

from selfhosted_cli._terminal import CommandError
from selfhosted_cli._views import (
    cosine_matrix,
    describe_error,
    embeddings_table,
    health_table,
    models_table,
    similarity_table,
    stats_table,
    usage_line,
)
from selfhosted_core import (
    AuthenticationError,
    Capability,
    ChatResponse,
    CircuitState,
    ConfigurationError,
    ContextWindowExceededError,
    EndpointConnectionError,
    EndpointHealth,
    EndpointStats,
    HealthReport,
    HealthStatus,
    ModelInfo,
    SelfHostedError,
    ServerKind,
    UnknownModelError,
    Usage,
)


def render(table: Table) -> str:
    console = Console(file=io.StringIO(), width=200, color_system=None)
    console.print(table)
    file = console.file
    assert isinstance(file, io.StringIO)
    return file.getvalue()


@pytest.mark.parametrize(
    ("error", "hint"),
    [
        (UnknownModelError("x", known=["tiny"]), "`selfhosted models` lists"),
        (ConfigurationError("endpoints[0].url: bad"), "configuration reference"),
        (EndpointConnectionError("connection refused", endpoint="gpu-1"), "is the server running"),
        (AuthenticationError("HTTP 401", status_code=401, body="", endpoint="gpu-1"), "api_key"),
        (
            ContextWindowExceededError("too long", status_code=400, body="", endpoint="gpu-1"),
            "shorten the prompt",
        ),
    ],
)
def test_error_line_says_what_where_and_what_to_do(error: SelfHostedError, hint: str) -> None:
    line = describe_error(error)
    assert "\n" not in line
    assert line.startswith(str(error))
    assert hint in line
    if error.endpoint:
        assert f"endpoint={error.endpoint!r}" in line


def test_command_errors_carry_their_own_advice() -> None:
    assert describe_error(CommandError("choose -m")) == "choose -m"


def test_health_table_shows_version_status_and_details() -> None:
    report = HealthReport(
        (
            EndpointHealth(
                model="tiny", endpoint="chat-1", url="http://a:1/v1", status=HealthStatus.OK,
                latency_ms=3.4, server=ServerKind.LLAMA_CPP, version="b1-0c1e570",
                context_window=2048,
            ),
            EndpointHealth(
                model="tiny", endpoint="chat-2", url="http://b:1/v1", status=HealthStatus.DOWN,
                detail="connection refused",
            ),
        )
    )  # fmt: skip
    lines = render(health_table(report)).splitlines()
    first = next(line for line in lines if "chat-1" in line)
    second = next(line for line in lines if "chat-2" in line)
    for cell in ("tiny", "http://a:1/v1", "llama.cpp b1-0c1e570", "ok", "3 ms", "2,048"):
        assert cell in first
    for cell in ("down", "connection refused"):
        assert cell in second


def test_stats_table_shows_health_circuit_load_latency_and_cache_hits() -> None:
    stats = [
        EndpointStats(
            model="tiny", endpoint="gpu-[b]1[/b]", requests=9, errors=1, in_flight=2,
            circuit=CircuitState.HALF_OPEN, consecutive_failures=1, loading=False,
            resting_for=None, last_error="ServerError: [red]boom[/red]", latency_p50=0.012,
            latency_p95=0.25, latency_p99=0.3, prompt_tokens=200, cached_prompt_tokens=150,
            server_load=3,
        ),
    ]  # fmt: skip
    report = HealthReport(
        (
            EndpointHealth(
                model="tiny", endpoint="gpu-1", url="http://a:1/v1", status=HealthStatus.OK
            ),
        )
    )
    row = next(line for line in render(stats_table(stats, report)).splitlines() if "tiny" in line)
    for cell in ("gpu-[b]1[/b]", "ok", "half_open", "12 ms", "250 ms", "75%", "[red]boom[/red]"):
        assert cell in row
    assert [cell.strip() for cell in row.split("│")[5:9]] == ["2", "3", "9", "1"]


def test_models_table_lists_replicas_and_capabilities() -> None:
    info = ModelInfo(
        id="minilm", label="minilm", capabilities=frozenset({Capability.EMBEDDING}),
        dimension=384, token_modifier=1.0, provider_id="SelfHosted", replicas=2,
        endpoints=("e-1", "e-2"),
    )  # fmt: skip
    row = next(line for line in render(models_table([info])).splitlines() if "minilm" in line)
    for cell in ("embedding", "384", "2", "e-1, e-2"):
        assert cell in row


def test_usage_line_reports_tokens_cache_billing_and_escapes_markup() -> None:
    usage = Usage(
        prompt_tokens=10, completion_tokens=5, total_tokens=15, cached_prompt_tokens=4,
        token_modifier=2.0,
    )  # fmt: skip
    answer = ChatResponse(
        id=None, model="[m]", content="x", usage=usage, endpoint="e", finish_reason="stop"
    )
    assert usage_line(answer, 0.123) == (
        "\\[m] via e · 10 prompt + 5 completion = 15 tokens (4 cached), billed 30 · 0.12 s"
        " · finish: stop"
    )
    unknown = ChatResponse(id=None, model="m", content="x", endpoint="e")
    assert "usage not reported" in usage_line(unknown, 1.0)


def test_cosine_matrix() -> None:
    matrix = cosine_matrix([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    assert matrix[0] == pytest.approx([1.0, 2**-0.5, 0.0])
    assert matrix[1][1] == pytest.approx(1.0)
    assert matrix[2] == [0.0, 0.0, 0.0]


MARKUP = "[/x][bold]"


def test_text_from_servers_and_configs_is_never_markup() -> None:
    entry = EndpointHealth(
        model=f"m{MARKUP}", endpoint=f"gpu{MARKUP}", url=f"http://a:1/v1?{MARKUP}",
        status=HealthStatus.OK, server=ServerKind.TGI, version=f"3.3{MARKUP}",
        detail=f"lists: other{MARKUP}",
    )  # fmt: skip
    info = ModelInfo(
        id=f"m{MARKUP}", label="m", capabilities=frozenset({Capability.CHAT}), dimension=None,
        token_modifier=1.0, provider_id="SelfHosted", replicas=1, endpoints=(f"gpu{MARKUP}",),
    )  # fmt: skip
    texts = [f"one {MARKUP}", "two"]
    rendered = "".join(
        render(table)
        for table in (
            health_table(HealthReport((entry,))),
            models_table([info]),
            embeddings_table(texts, [[1.0, 0.0], [0.0, 1.0]]),
            similarity_table(texts, [[1.0, 0.0], [0.0, 1.0]]),
        )
    )
    assert rendered.count(MARKUP) == 9


def test_multi_line_messages_become_one_line() -> None:
    error = ConfigurationError(["endpoints[0].url: bad", "endpoints[1].dimension: required"])
    assert describe_error(error) == (
        "2 configuration problems: endpoints[0].url: bad; endpoints[1].dimension: required"
        " — fix the configuration (the README's configuration reference)"
    )
