from __future__ import annotations

import dataclasses

import pytest

from benchmarks.targets import SHARED, TARGETS, Outcome, Target, check, outcome
from tests.benchmarks.sample import AIOHTTP, CHAT_OPENAI, CORE, HTTPX2, LC, measurement, results


def test_cpu_target_met_with_margin() -> None:
    result = outcome(Target("cpu", "chat", CORE, HTTPX2, 1.2), results())
    assert result is not None
    assert result.observed == pytest.approx(1.1)
    assert result.required == 1.2
    assert result.met
    assert result.shortfall == pytest.approx(-0.1)
    assert result.relative == pytest.approx(-0.1 / 1.2)


def test_cpu_target_missed_by_how_much() -> None:
    result = outcome(Target("cpu", "chat", LC, CHAT_OPENAI, 0.5), results())
    assert result is not None
    assert result.observed == pytest.approx(0.6)
    assert not result.met
    assert result.shortfall == pytest.approx(0.1)
    assert result.relative == pytest.approx(0.2)


def test_throughput_target_must_reach_its_bound() -> None:
    met = outcome(Target("throughput", "achat", CORE, AIOHTTP, 0.8), results())
    missed = outcome(Target("throughput", "achat", CORE, AIOHTTP, 0.95), results())
    assert met is not None
    assert missed is not None
    assert met.observed == pytest.approx(0.9)
    assert met.met
    assert met.shortfall == pytest.approx(-0.1)
    assert not missed.met
    assert missed.shortfall == pytest.approx(0.05)


def test_exactly_on_the_bound_is_met() -> None:
    assert Outcome(Target("cpu", "chat", CORE, HTTPX2, 1.2), 1.2, 1.2).met
    assert Outcome(Target("throughput", "achat", CORE, AIOHTTP, 0.8), 0.8, 0.8).met


def test_import_targets_absolute_and_against_a_baseline() -> None:
    alone = outcome(Target("import", "import", "selfhosted_core", None, 300), results())
    assert alone is not None
    assert (alone.observed, alone.required) == pytest.approx((310, 300))
    assert not alone.met
    assert alone.shortfall == pytest.approx(10)

    bare = outcome(
        Target("import", "import", "langchain_selfhosted", "langchain_core", 100), results()
    )
    assert bare is not None
    assert (bare.observed, bare.required) == pytest.approx((600, 170))
    assert not bare.met

    chat = Target(
        "import",
        "import",
        "langchain_selfhosted",
        "langchain_core.language_models.chat_models",
        100,
    )
    models = outcome(chat, results())
    assert models is not None
    assert models.required == pytest.approx(650)
    assert models.met
    assert models.shortfall == pytest.approx(-50)


def test_unmeasured_figures_give_no_outcome() -> None:
    assert outcome(Target("cpu", "embed", CORE, HTTPX2, 1.3), results()) is None
    assert outcome(Target("import", "import", "litellm", None, 1), results()) is None
    assert outcome(Target("import", "import", "selfhosted_core", "openai", 1), results()) is None


def test_the_issue_targets_against_a_run() -> None:
    checked = check(results())
    assert [target for target, _ in checked] == list(TARGETS)
    verdicts = {
        (target.mode, target.subject, target.baseline): None if result is None else result.met
        for target, result in checked
    }
    assert verdicts == {
        ("chat", CORE, HTTPX2): True,
        ("chat", LC, CHAT_OPENAI): False,
        ("chat", "litellm selfhosted/", "litellm hosted_vllm/"): None,
        ("stream", CORE, HTTPX2): False,
        ("stream", LC, CHAT_OPENAI): None,
        ("stream", "litellm selfhosted/", "litellm hosted_vllm/"): None,
        ("achat", CORE, AIOHTTP): True,
        ("embed", CORE, HTTPX2): None,
        ("import", "selfhosted_core", None): False,
        ("import", "langchain_selfhosted", "langchain_core"): False,
        ("import", "langchain_selfhosted", "langchain_core.language_models.chat_models"): True,
        ("chat", SHARED, CORE): None,
    }


def test_added_cost_targets_are_microseconds_over_the_baseline() -> None:
    shared = measurement(SHARED, "ours", "chat", (300e-6, 310e-6), (0.9e-3, 1.1e-3))
    run = dataclasses.replace(results(), measurements=(*results().measurements, shared))
    cpu = outcome(Target("added_cpu", "chat", SHARED, CORE, 150), run)
    wall = outcome(Target("added_wall", "chat", SHARED, CORE, 100), run)
    core = run.find(CORE, "chat")
    assert core is not None
    assert cpu is not None
    assert wall is not None
    assert cpu.observed == pytest.approx((305e-6 - core.cpu_median) * 1e6)
    assert cpu.met == (cpu.observed <= 150)
    assert wall.observed == pytest.approx((1.0e-3 - core.wall_median) * 1e6)
    assert wall.met == (wall.observed <= 100)
