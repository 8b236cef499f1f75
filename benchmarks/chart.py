"""`ratios.png`: per mode, each client's CPU per request over the floor's, as bars."""

from __future__ import annotations

from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from benchmarks.figures import FLOORS, Results

COLOURS = {"ours": "#d62728", "peer": "#1f77b4", "floor": "#7f7f7f"}
TICKS = (1 / 8, 1 / 4, 1 / 2, 1, 2, 4, 8, 16, 32, 64, 128)


def draw(results: Results, path: Path) -> None:
    """One horizontal bar chart per mode of CPU per request over the floor's, on one log axis.

    Each bar runs from the floor (1x, the dashed line) to the client's ratio, so a bar's length
    is how many times dearer (rightwards) or cheaper (leftwards) than the floor a client is.
    """
    floors = {mode: results.find(FLOORS[mode], mode) for mode in results.modes()}
    charted = {mode: floor for mode, floor in floors.items() if floor is not None}
    rows = {
        mode: sorted(
            (m.cpu_median / floor.cpu_median, m.client, m.group) for m in results.in_mode(mode)
        )
        for mode, floor in charted.items()
    }
    heights = [len(mode_rows) for mode_rows in rows.values()]
    figure = Figure(figsize=(9, 1.4 + 0.35 * sum(heights) + 0.8 * len(heights)))
    # The Agg canvas renders without a display and without touching pyplot's global state.
    FigureCanvasAgg(figure)
    if not rows:
        figure.text(0.5, 0.5, "no floor was measured, so there are no ratios", ha="center")
        figure.savefig(path, dpi=110)
        return
    ratios = [value for mode_rows in rows.values() for value, _, _ in mode_rows]
    low, high = min(*ratios, 1.0) / 1.5, max(*ratios, 1.0) * 1.5
    axes = figure.subplots(len(rows), 1, sharex=True, squeeze=False, height_ratios=heights)
    for ax, (mode, mode_rows) in zip(axes[:, 0], rows.items(), strict=True):
        values = [value for value, _, _ in mode_rows]
        ax.barh(
            [name for _, name, _ in mode_rows],
            [value - 1 for value in values],
            left=1,
            color=[COLOURS[group] for _, _, group in mode_rows],
        )
        for y, value in enumerate(values):
            # Beside the bar's far end: right of dearer bars, left of cheaper ones.
            outward = 1 if value >= 1 else -1
            ax.annotate(
                f"{value:.2f}",
                (value, y),
                xytext=(4 * outward, 0),
                textcoords="offset points",
                ha="left" if outward > 0 else "right",
                va="center",
            )
        ax.axvline(1.0, color="black", linewidth=1, linestyle="--")
        ax.set_title(f"{mode}: CPU per request over {charted[mode].client}'s", loc="left")
    ax = axes[-1, 0]
    ax.set_xscale("log")
    ax.set_xlim(low, high)
    ax.set_xticks([tick for tick in TICKS if low <= tick <= high])
    ax.set_xticklabels(
        [f"{tick:g}\N{MULTIPLICATION SIGN}" for tick in TICKS if low <= tick <= high]
    )
    ax.minorticks_off()
    figure.legend(
        handles=[Patch(color=colour, label=group) for group, colour in COLOURS.items()],
        loc="upper right",
        ncols=3,
        frameon=False,
    )
    figure.tight_layout(rect=(0, 0, 1, 0.97))
    figure.savefig(path, dpi=110)
