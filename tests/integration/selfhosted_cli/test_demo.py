"""`selfhosted demo`, end to end on its own local servers, as `make demo` runs it."""

from __future__ import annotations

import re

import pytest

from selfhosted_cli import _demo
from selfhosted_cli._terminal import Terminal
from selfhosted_core import Config
from selfhosted_core.local import TOOL_RESULT_ANSWER_TEXT
from tests.cli_terminal import Run
from tests.integration.selfhosted_cli.test_local import alive


def test_demo_runs_every_step_and_stops_its_servers(monkeypatch: pytest.MonkeyPatch) -> None:
    reports: list[_demo.DemoReport] = []
    configs: list[Config] = []
    original = _demo.run_demo

    def recording(config: Config, term: Terminal) -> _demo.DemoReport:
        configs.append(config)
        reports.append(original(config, term))
        return reports[-1]

    monkeypatch.setattr(_demo, "run_demo", recording)
    run = Run()
    assert run("demo") == 0
    (report,) = reports
    assert report.tool_calls == [{"name": "get_weather", "args": {"city": "Oslo"}}]
    assert report.tool_results == ["Oslo: sunny, 21 °C"]
    assert report.agent_answer == TOOL_RESULT_ANSWER_TEXT
    assert set(report.spread) == {"chat-1", "chat-2"}
    assert sum(report.spread.values()) == _demo.ROUTER_CALLS
    assert report.structured == {"city": "Oslo", "temperature_c": 0, "summary": "a"}
    assert report.ranking[0][1] == _demo.DOCUMENTS[0]
    assert [score for score, _ in report.ranking] == sorted(
        (score for score, _ in report.ranking), reverse=True
    )
    for printed in (
        "agent → tool call get_weather({'city': 'Oslo'})",
        f"agent:  {TOOL_RESULT_ANSWER_TEXT}",
        "Forecast validated: Forecast(city='Oslo', temperature_c=0, summary='a')",
        f"│ 1    │ {report.ranking[0][0]:.3f}  │ {_demo.DOCUMENTS[0]}",
        "servers stopped; demo finished in",
    ):
        assert printed in run.out
    pids = [int(pid) for pid in re.findall(r"│ http://127\.0\.0\.1:\d+/v1 │ (\d+) +│", run.out)]
    assert len(pids) == 3
    assert not any(alive(pid) for pid in pids)
    assert [endpoint.label for endpoint in configs[0].endpoints] == [
        "chat-1",
        "chat-2",
        "embedding",
    ]
