from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.imports import measure, probe
from benchmarks.run import ROOT, environment


def test_probe_times_an_import_and_reads_rss() -> None:
    seconds, rss = probe("json", ROOT, environment())
    assert 0 < seconds < 5
    assert rss > 1_000_000


def test_probe_reports_a_failed_import() -> None:
    with pytest.raises(RuntimeError, match="no_such_module_here"):
        probe("no_such_module_here", ROOT, environment())


def test_measure_interleaves_reps_and_measures_a_bare_interpreter(tmp_path: Path) -> None:
    timings, bare = measure(("json", "decimal"), 2, tmp_path, environment())
    assert [timing.module for timing in timings] == ["json", "decimal"]
    assert all(len(timing.seconds) == len(timing.rss) == 2 for timing in timings)
    assert len(bare) == 2
