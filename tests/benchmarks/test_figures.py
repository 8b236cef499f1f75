from __future__ import annotations

import pytest

from benchmarks.figures import FLOORS, ServerCost, rotated, server_cost
from tests.benchmarks.sample import AIOHTTP, CORE, HTTPX2, LC, MIB, results


def test_rotated_gives_every_item_every_position() -> None:
    items = ["a", "b", "c"]
    turns = [rotated(items, turn) for turn in range(3)]
    assert turns == [["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"]]
    assert rotated(items, 4) == turns[1]


def test_medians_and_ratios_to_the_floor() -> None:
    run = results()
    core = run.find(CORE, "chat")
    assert core is not None
    assert core.cpu_median == pytest.approx(330e-6)
    assert run.cpu_ratio(core) == pytest.approx(1.1)
    floor = run.find(HTTPX2, "chat")
    assert floor is not None
    assert run.cpu_ratio(floor) == 1.0


def test_achat_is_held_to_aiohttp_in_requests_per_second() -> None:
    run = results()
    core = run.find(CORE, "achat")
    assert core is not None
    assert FLOORS["achat"] == AIOHTTP
    assert core.requests_per_second == pytest.approx(4500)
    assert run.throughput_ratio(core) == pytest.approx(0.9)
    assert run.cpu_ratio(core) == pytest.approx(2.2)


def test_no_ratio_without_the_floor() -> None:
    run = results()
    lone = run.find(CORE, "chat")
    assert lone is not None
    stripped = type(run)(**{**run.__dict__, "measurements": (lone,)})
    assert stripped.cpu_ratio(lone) is None
    assert stripped.throughput_ratio(lone) is None


def test_modes_in_measured_order_and_lookup() -> None:
    run = results()
    assert run.modes() == ["chat", "stream", "achat"]
    assert [m.client for m in run.in_mode("stream")] == [HTTPX2, CORE]
    assert run.find(LC, "embed") is None


def test_server_cost_pairs_the_server_with_the_cheapest_client() -> None:
    cost = server_cost(results(), "chat")
    assert cost is not None
    assert cost.cheapest.client == HTTPX2
    assert cost.server_cpu == pytest.approx(15e-6)
    assert cost.times_cheaper == pytest.approx(20)
    assert server_cost(results(), "embed") is None


def test_a_server_that_costs_nothing_measurable_is_infinitely_cheaper() -> None:
    floor = results().find(HTTPX2, "chat")
    assert floor is not None
    free = type(floor)(**{**floor.__dict__, "server_cpu": (0.0, 0.0, 0.0)})
    assert ServerCost("chat", free).times_cheaper == float("inf")


def test_import_memory_is_over_a_bare_interpreter() -> None:
    run = results()
    timing = run.import_timing("selfhosted_core")
    assert timing is not None
    assert timing.seconds_median == pytest.approx(0.31)
    assert run.bare_rss_median == 10 * MIB
    assert run.rss_over_bare(timing) == 30 * MIB
    assert run.import_timing("litellm") is None
