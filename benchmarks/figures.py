"""What a benchmark run measured, and the arithmetic the runner, report and targets share.

Everything here is data in, numbers out: the runner fills `Results`, and the report, the chart
and the target check only read it. Raw samples are kept; medians and ratios are derived, so
`results.json` holds both what was measured and what was concluded from it.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from benchmarks import clients

# The floor a mode's ratios are taken against: the least a client could do. Async requests are
# held to aiohttp, the usual async floor, rather than to httpx2's async client.
FLOORS = {
    "chat": clients.Httpx2.name,
    "stream": clients.Httpx2.name,
    "embed": clients.Httpx2.name,
    "achat": clients.Aiohttp.name,
}

T = TypeVar("T")


def rotated(items: Sequence[T], turn: int) -> list[T]:
    """`items` started `turn` places further on, wrapping round: each takes every position."""
    shift = turn % len(items)
    return [*items[shift:], *items[:shift]]


@dataclass(frozen=True)
class Measurement:
    """One client in one mode: seconds per request in each rep, client's and server's."""

    client: str
    group: str
    mode: str
    requests: int
    cpu: tuple[float, ...]
    wall: tuple[float, ...]
    server_cpu: tuple[float, ...]

    @property
    def cpu_median(self) -> float:
        """Median client CPU seconds per request."""
        return statistics.median(self.cpu)

    @property
    def wall_median(self) -> float:
        """Median wall seconds per request."""
        return statistics.median(self.wall)

    @property
    def server_cpu_median(self) -> float:
        """Median server CPU seconds per request while serving this client."""
        return statistics.median(self.server_cpu)

    @property
    def requests_per_second(self) -> float:
        """Throughput: one over the median wall time per request."""
        return 1 / self.wall_median


@dataclass(frozen=True)
class ImportTiming:
    """One module imported in fresh interpreters: seconds to import, and RSS after it."""

    module: str
    seconds: tuple[float, ...]
    rss: tuple[int, ...]

    @property
    def seconds_median(self) -> float:
        """Median wall seconds of the import statement."""
        return statistics.median(self.seconds)


@dataclass(frozen=True)
class Machine:
    """Where the figures were measured."""

    cpu: str
    cores: int
    python: str
    load: float
    packages: dict[str, str]


@dataclass(frozen=True)
class Results:
    """One benchmark run."""

    date: str
    machine: Machine
    reps: int
    seconds: float
    measurements: tuple[Measurement, ...]
    imports: tuple[ImportTiming, ...]
    bare_rss: tuple[int, ...]
    worker_rss: dict[str, int] = field(default_factory=dict)
    failures: tuple[str, ...] = ()

    def modes(self) -> list[str]:
        """The modes measured, in the order first measured."""
        return list(dict.fromkeys(m.mode for m in self.measurements))

    def in_mode(self, mode: str) -> list[Measurement]:
        """The measurements of one mode."""
        return [m for m in self.measurements if m.mode == mode]

    def find(self, client: str, mode: str) -> Measurement | None:
        """One client's measurement in one mode, if it was measured."""
        return next((m for m in self.in_mode(mode) if m.client == client), None)

    def cpu_ratio(self, measurement: Measurement) -> float | None:
        """CPU per request over the floor's in the same mode; None when the floor is absent."""
        floor = self.find(FLOORS[measurement.mode], measurement.mode)
        return None if floor is None else measurement.cpu_median / floor.cpu_median

    def throughput_ratio(self, measurement: Measurement) -> float | None:
        """Requests per second over the floor's in the same mode; None without the floor."""
        floor = self.find(FLOORS[measurement.mode], measurement.mode)
        return (
            None if floor is None else measurement.requests_per_second / floor.requests_per_second
        )

    def import_timing(self, module: str) -> ImportTiming | None:
        """One module's import timing, if it was measured."""
        return next((i for i in self.imports if i.module == module), None)

    @property
    def bare_rss_median(self) -> float:
        """Median RSS of a bare interpreter, in bytes."""
        return statistics.median(self.bare_rss)

    def rss_over_bare(self, timing: ImportTiming) -> int:
        """Median RSS after the import minus the median RSS of a bare interpreter."""
        return int(statistics.median(timing.rss) - self.bare_rss_median)


@dataclass(frozen=True)
class ServerCost:
    """The server's CPU per request set against the cheapest client's in one mode."""

    mode: str
    cheapest: Measurement

    @property
    def server_cpu(self) -> float:
        """Median server CPU seconds per request while serving the cheapest client."""
        return self.cheapest.server_cpu_median

    @property
    def times_cheaper(self) -> float:
        """How many times less CPU the server spends on a request than the cheapest client."""
        return self.cheapest.cpu_median / self.server_cpu if self.server_cpu else math.inf


# The server must cost at most a tenth of the cheapest client, or it, not the clients, would
# decide the ratios.
SERVER_TIMES_CHEAPER = 10.0


def server_cost(results: Results, mode: str) -> ServerCost | None:
    """The server's cost in `mode`, paired with the runs of the cheapest client."""
    measured = results.in_mode(mode)
    if not measured:
        return None
    return ServerCost(mode, min(measured, key=lambda m: m.cpu_median))
