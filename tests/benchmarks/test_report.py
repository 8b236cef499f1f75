from __future__ import annotations

import json

import pytest

from benchmarks.report import describe, markdown, micros, ratio, table, to_json, verdict
from benchmarks.targets import TARGETS, Outcome, Target, check
from tests.benchmarks.sample import CHAT_OPENAI, CORE, HTTPX2, LC, results


def test_numbers_are_formatted_for_reading() -> None:
    assert micros(330e-6) == "330"
    assert micros(12_345e-6) == "12,345"
    assert micros(15.25e-6) == "15.2"
    assert ratio(1.1) == "1.10\u00d7"
    assert ratio(None) == "-"


def test_table_aligns_numbers_right() -> None:
    assert table(["a", "n"], [["x", "1"]], align="lr") == "| a | n |\n| --- | --: |\n| x | 1 |"


def test_verdicts_say_by_how_much() -> None:
    missed = Outcome(Target("cpu", "stream", CORE, HTTPX2, 1.5), 1.6, 1.5)
    assert verdict(missed) == "**MISSED** by 0.10\u00d7 (7%)"
    met = Outcome(Target("import", "import", "selfhosted_core", None, 300), 240, 300)
    assert verdict(met) == "met, 60 ms (20%) to spare"


def test_targets_described_with_which_baseline_is_which() -> None:
    words = [describe(target) for target in TARGETS]
    assert words[1] == f"chat: {LC} CPU/request \u2264 0.5\u00d7 {CHAT_OPENAI}"
    assert "requests/s \u2265 0.8\u00d7 aiohttp + json.loads" in words[6]
    assert words[8] == "import: `selfhosted_core` \u2264 300 ms"
    assert "`langchain_core` + 100 ms (against a bare `import langchain_core`" in words[9]
    assert "`langchain_core.language_models.chat_models` + 100 ms (against" in words[10]


def test_markdown_has_every_section_with_the_figures() -> None:
    text = markdown(results(), check(results()))
    assert text.startswith("# selfhosted-llm benchmarks, 2026-11-25\n")
    assert "Test CPU, 2 cores, Python 3.11.7" in text
    assert "httpx2 2.16.2" in text
    assert f"| {CORE} | ours | 500 | 330 | 420 | 1.10\u00d7 |" in text
    assert f"| {HTTPX2} | floor | 500 | 300 | 400 | 1.00\u00d7 |" in text
    # achat adds requests per second and its ratio to aiohttp's
    assert f"| {CORE} | ours | 500 | 220 | 222 | 2.20\u00d7 | 4,500 | 0.90\u00d7 |" in text
    assert "## embed" not in text
    assert "Server: 15.0 \u00b5s CPU/request" in text
    assert "20.0\u00d7 cheaper, ok" in text
    assert "| `selfhosted_core` | 310 | 30.0 |" in text
    assert f"| {CORE} | ours | 55.0 |" in text
    assert "| 0.60\u00d7 | \u2264 0.50\u00d7 | **MISSED** by 0.10\u00d7 (20%) |" in text
    assert "| 600 ms | \u2264 650 ms | met, 50 ms (8%) to spare |" in text
    assert "not measured in this run" in text
    assert "Targets: 3 of 7 measured targets met (6 not measured); missed:" in text
    assert "## Failures" not in text


def test_markdown_flags_a_server_too_close_to_the_cheapest_client() -> None:
    run = results()
    dear = tuple(
        type(m)(**{**m.__dict__, "server_cpu": tuple(c / 5 for c in m.cpu)})
        for m in run.measurements
    )
    text = markdown(type(run)(**{**run.__dict__, "measurements": dear}), check(run))
    assert "5.0\u00d7 cheaper, **TOO CLOSE**" in text


def test_markdown_lists_failures() -> None:
    run = results()
    failed = type(run)(**{**run.__dict__, "failures": ("chat: litellm openai/: wrong answer",)})
    assert "## Failures\n\n- chat: litellm openai/: wrong answer\n" in markdown(failed, ())


def test_json_has_raw_samples_and_derived_figures() -> None:
    data = json.loads(json.dumps(to_json(results(), check(results()))))
    core = next(m for m in data["measurements"] if (m["client"], m["mode"]) == (CORE, "chat"))
    assert core["cpu"] == [330e-6, 340e-6, 320e-6]
    assert core["cpu_ratio_to_floor"] == pytest.approx(1.1)
    assert data["server"]["chat"]["cheapest_client"] == HTTPX2
    assert data["imports"]["modules"][0]["rss_over_bare"] == 30 * 2**20
    assert data["targets"][0]["met"] is True
    assert data["targets"][2]["met"] is None
    assert data["machine"]["cpu"] == "Test CPU"
