from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.imports import MODULES
from benchmarks.run import (
    MIN_REQUESTS,
    ROOT,
    Server,
    Session,
    Worker,
    environment,
    parse,
    scaled_count,
)
from benchmarks.worker import MODES
from tests.benchmarks.sample import CORE, HTTPX2

PNG = b"\x89PNG\r\n\x1a\n"


def test_defaults_measure_everything() -> None:
    options = parse([])
    assert (options.reps, options.seconds, options.import_reps) == (7, 0.25, 5)
    assert options.modes == MODES
    assert options.imports == MODULES
    assert len(options.clients) == 11


def test_quick_and_restricted() -> None:
    options = parse(["--quick", "--only", "achat,chat", "--clients", f"{HTTPX2},{CORE}"])
    assert (options.reps, options.seconds, options.import_reps) == (1, 0.0, 1)
    assert options.modes == ("chat", "achat")
    assert options.clients == (HTTPX2, CORE)
    assert parse(["--imports", ""]).imports == ()


def test_unknown_names_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse(["--clients", "curl"])
    assert "unknown client ['curl']" in capsys.readouterr().err


def test_scaled_count() -> None:
    # 3 requests in 1 ms: 750 requests fill a quarter second
    assert scaled_count(3, 0.001, 0.25, 3) == 750
    assert scaled_count(128, 0.5, 0.25, 128) == 128  # never under the minimum
    assert scaled_count(3, 0.0, 0.25, 3) == 3  # a clock that saw nothing scales nothing


def test_quick_run_of_two_clients_writes_results(tmp_path: Path) -> None:
    argv = ["--quick", "--clients", f"{HTTPX2},{CORE}", "--imports", "httpx2", "--out"]
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", *argv, str(tmp_path)],
        cwd=ROOT,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "| selfhosted_core Provider | ours |" in done.stdout
    data = json.loads((tmp_path / "results.json").read_text())
    measured = {(m["client"], m["mode"]): m for m in data["measurements"]}
    # httpx2 has all four modes; achat's floor (aiohttp) was not run, so no ratio there
    assert set(measured) == {(client, mode) for client in (HTTPX2, CORE) for mode in MODES}
    for (_, mode), m in measured.items():
        assert m["requests"] == MIN_REQUESTS[mode]
        assert min(m["cpu_median"], m["wall_median"], m["server_cpu_median"]) > 0
    assert measured[CORE, "chat"]["cpu_ratio_to_floor"] > 0
    assert measured[CORE, "achat"]["cpu_ratio_to_floor"] is None
    assert data["imports"]["modules"][0]["module"] == "httpx2"
    assert set(data["worker_rss"]) == {HTTPX2, CORE}
    assert data["failures"] == []
    assert (tmp_path / "results.md").read_text() == done.stdout
    assert (tmp_path / "ratios.png").read_bytes().startswith(PNG)


def test_failures_are_recorded_and_the_rest_goes_on(tmp_path: Path) -> None:
    with Server() as server:
        # Nothing listens on port 9: every check fails. An unknown client's worker dies.
        refused = Worker(HTTPX2, "http://127.0.0.1:9/v1", tmp_path / "refused.log")
        dead = Worker("no such client", server.base_url, tmp_path / "dead.log")
        good = Worker(CORE, server.base_url, tmp_path / "good.log")
        session = Session(server, [refused, dead, good])
        try:
            session.check(("chat", "embed"))
            session.calibrate(0.0)
            session.rep(("chat", "embed"), 0)
        finally:
            for worker in (refused, dead, good):
                worker.close()
    assert [(worker.client, mode) for worker, mode in session.plan] == [
        (CORE, "chat"),
        (CORE, "embed"),
    ]
    assert [m.client for m in session.measurements()] == [CORE, CORE]
    refusals, death = session.failures[:2], session.failures[2]
    assert all(HTTPX2 in failure and "ConnectError" in failure for failure in refusals)
    assert "no such client: the worker exited; its stderr ends:" in death
    assert "KeyError" in death
    assert len(session.failures) == 3
