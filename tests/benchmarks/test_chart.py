from __future__ import annotations

from pathlib import Path

from benchmarks.chart import draw
from tests.benchmarks.sample import CORE, results

PNG = b"\x89PNG\r\n\x1a\n"


def test_draws_a_png_of_the_ratios(tmp_path: Path) -> None:
    draw(results(), tmp_path / "ratios.png")
    assert (tmp_path / "ratios.png").read_bytes().startswith(PNG)


def test_draws_a_note_when_no_floor_was_measured(tmp_path: Path) -> None:
    run = results()
    alone = tuple(m for m in run.measurements if m.client == CORE)
    draw(type(run)(**{**run.__dict__, "measurements": alone}), tmp_path / "ratios.png")
    assert (tmp_path / "ratios.png").read_bytes().startswith(PNG)
