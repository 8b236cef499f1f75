"""The runner behind `make bench`: measure every client in every mode, report, check targets.

It starts the canned server and one worker per client (all at once: litellm's take seconds to
import), checks each client's answers, calibrates each (client, mode) to run about `--seconds`,
then runs them all `--reps` times, the clients taking turns in an order rotated every rep so
that drift in a shared machine's load spreads over everyone. After the workers are gone, the
imports are timed in fresh interpreters. A missed target is reported; a wrong answer or a
worker error makes the exit status 1.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import select
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from benchmarks import chart, imports, report, targets
from benchmarks.clients import CLIENTS
from benchmarks.figures import ImportTiming, Measurement, Results, rotated
from benchmarks.machine import machine
from benchmarks.worker import CONCURRENCY, MODES

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
# A sync run of fewer requests would be all timer and pipe; an async run must keep every one
# of the CONCURRENCY lanes busy for at least two requests.
MIN_REQUESTS = {"chat": 3, "stream": 3, "embed": 3, "achat": 2 * CONCURRENCY}
# Generous: nine workers importing at once on a small machine take tens of seconds.
TIMEOUT = 300.0


class BenchError(Exception):
    """A client answered wrongly, a worker failed, or the server would not start."""


@dataclass(frozen=True)
class Options:
    """What to measure and how long."""

    reps: int
    seconds: float
    modes: tuple[str, ...]
    clients: tuple[str, ...]
    imports: tuple[str, ...]
    import_reps: int
    out: Path


def _names(text: str, known: Sequence[str], what: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in known]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown {what} {unknown}; known: {list(known)}")
    return names


def parse(argv: Sequence[str] | None = None) -> Options:
    """Options from the command line; `--quick` is the smoke test's one-rep, tiny-count run."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--reps", type=int, default=7, help="runs per client and mode")
    parser.add_argument("--seconds", type=float, default=0.25, help="target seconds per run")
    parser.add_argument(
        "--only",
        type=lambda text: _names(text, MODES, "mode"),
        default=MODES,
        help="comma-separated modes (default: all)",
    )
    parser.add_argument(
        "--clients",
        type=lambda text: _names(text, list(CLIENTS), "client"),
        default=tuple(CLIENTS),
        help="comma-separated client names (default: all)",
    )
    parser.add_argument(
        "--imports",
        type=lambda text: _names(text, imports.MODULES, "module"),
        default=imports.MODULES,
        help="comma-separated modules whose import to time (default: all; '' for none)",
    )
    parser.add_argument("--import-reps", type=int, default=5, help="fresh imports per module")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where results are written")
    parser.add_argument("--quick", action="store_true", help="1 rep, minimal request counts")
    args = parser.parse_args(argv)
    if args.quick:
        args.reps, args.seconds, args.import_reps = 1, 0.0, 1
    return Options(
        reps=args.reps,
        seconds=args.seconds,
        # Modes in the workers' order, whatever order they were asked for in.
        modes=tuple(mode for mode in MODES if mode in args.only),
        clients=args.clients,
        imports=args.imports,
        import_reps=args.import_reps,
        out=args.out,
    )


def scaled_count(count: int, wall: float, seconds: float, minimum: int) -> int:
    """The request count at which a run that took `wall` for `count` would take `seconds`."""
    if wall <= 0:
        return max(minimum, count)
    return max(minimum, round(count * seconds / wall))


def environment() -> dict[str, str]:
    """Every subprocess's environment: litellm must not fetch its cost map at import."""
    return {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}


def progress(message: str) -> None:
    """A line on stderr, so that stdout carries only the report."""
    print(f"bench: {message}", file=sys.stderr, flush=True)


class Server:
    """The canned server in its own process; its CPU time is read from the kernel."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.server"],
            cwd=ROOT,
            env=environment(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        port = self.process.stdout.readline().strip()
        if not port.isdigit():
            self.close()
            raise BenchError(f"the canned server did not start (it said {port!r})")
        self.base_url = f"http://127.0.0.1:{port}/v1"

    def cpu(self) -> float:
        """CPU seconds the server's threads have used so far.

        /proc/PID/task/*/schedstat counts nanoseconds; psutil's `cpu_times` counts 10 ms clock
        ticks, too coarse for a server that should spend a few ms in a quarter-second run.
        """
        total = 0
        for task in Path(f"/proc/{self.process.pid}/task").iterdir():
            total += int((task / "schedstat").read_text().split()[0])
        return total / 1e9

    def close(self) -> None:
        """Stop the server: it serves until its stdin closes."""
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)
        self.process.stdout.close()

    def __enter__(self) -> Server:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class Worker:
    """One client's worker process, spoken to in JSON lines (see `benchmarks.worker`)."""

    def __init__(self, client: str, base_url: str, log: Path) -> None:
        self.client = client
        self.log = log
        self.modes: tuple[str, ...] = ()
        # Its stderr goes to a file, shown only if something goes wrong.
        with log.open("w") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "benchmarks.worker", client, base_url],
                cwd=ROOT,
                env=environment(),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
            )

    def _reply(self) -> dict[str, Any]:
        stdout = self.process.stdout
        assert stdout is not None
        # Each command has exactly one reply line, so the pipe's buffer is empty when waiting.
        ready, _, _ = select.select([stdout], [], [], TIMEOUT)
        line = stdout.readline() if ready else ""
        if not line:
            state = "exited" if ready else f"said nothing for {TIMEOUT:g} s"
            stderr = self.log.read_text().strip()[-2000:]
            raise BenchError(f"{self.client}: the worker {state}; its stderr ends:\n{stderr}")
        reply: dict[str, Any] = json.loads(line)
        if "error" in reply:
            raise BenchError(f"{self.client}: {reply['error']}")
        return reply

    def ready(self) -> None:
        """Wait until the client is built, and learn which modes it offers."""
        self.modes = tuple(self._reply()["modes"])

    def ask(self, op: str, **fields: object) -> dict[str, Any]:
        """Send one command and return its reply; an error reply raises `BenchError`."""
        stdin = self.process.stdin
        assert stdin is not None
        with contextlib.suppress(BrokenPipeError):  # it died: reading its reply says so
            stdin.write(json.dumps({"op": op, **fields}) + "\n")
            stdin.flush()
        return self._reply()

    @property
    def alive(self) -> bool:
        """Whether the worker process is still running."""
        return self.process.poll() is None

    def close(self) -> None:
        """End the worker: it exits when its stdin closes; killed if it will not."""
        if self.process.stdin is not None and not self.process.stdin.closed:
            with contextlib.suppress(BrokenPipeError):  # already gone
                self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


def calibrate(worker: Worker, mode: str, seconds: float) -> int:
    """The request count that makes one run of `mode` last about `seconds`.

    The first run also warms the client up. When it is too short to scale from, one more run
    at about a tenth of the target gives a figure worth scaling.
    """
    minimum = MIN_REQUESTS[mode]
    count = minimum
    wall = float(worker.ask("run", mode=mode, n=count)["wall"])
    if wall < seconds / 10:
        count = scaled_count(count, wall, seconds / 10, minimum)
        wall = float(worker.ask("run", mode=mode, n=count)["wall"])
    return scaled_count(count, wall, seconds, minimum)


@dataclass
class Samples:
    """A (client, mode)'s per-request figures as the reps come in."""

    requests: int
    cpu: list[float] = field(default_factory=list)
    wall: list[float] = field(default_factory=list)
    server_cpu: list[float] = field(default_factory=list)


class Session:
    """The server and the workers of one run, and what has been measured and gone wrong."""

    def __init__(self, server: Server, workers: list[Worker]) -> None:
        self.server = server
        self.workers = workers
        self.plan: list[tuple[Worker, str]] = []
        self.samples: dict[tuple[str, str], Samples] = {}
        self.broken: set[tuple[str, str]] = set()
        self.failures: list[str] = []

    def fail(self, worker: Worker, mode: str, exc: BenchError) -> None:
        """Record a failure; a dead worker takes all its modes with it, an error reply one."""
        self.failures.append(f"{mode}: {exc}")
        gone = worker.modes if not worker.alive else (mode,)
        self.broken.update((worker.client, each) for each in gone)

    def check(self, modes: tuple[str, ...]) -> None:
        """Wait for each worker, then check its answers in each of `modes` it offers."""
        for worker in self.workers:
            try:
                worker.ready()
            except BenchError as exc:
                self.failures.append(str(exc))
                continue
            for mode in modes:
                if mode not in worker.modes or (worker.client, mode) in self.broken:
                    continue
                try:
                    worker.ask("check", mode=mode)
                except BenchError as exc:
                    self.fail(worker, mode, exc)
                else:
                    self.plan.append((worker, mode))

    def calibrate(self, seconds: float) -> None:
        """Fix each checked (client, mode)'s request count per run."""
        for worker, mode in self.plan:
            if (worker.client, mode) in self.broken:
                continue
            try:
                self.samples[worker.client, mode] = Samples(calibrate(worker, mode, seconds))
            except BenchError as exc:
                self.fail(worker, mode, exc)

    def rep(self, modes: tuple[str, ...], turn: int) -> None:
        """One run of every (client, mode), mode by mode, the clients' order rotated by `turn`."""
        for mode in modes:
            for worker in rotated([worker for worker, each in self.plan if each == mode], turn):
                key = (worker.client, mode)
                if key in self.samples and key not in self.broken:
                    self.once(worker, mode, self.samples[key])

    def once(self, worker: Worker, mode: str, sample: Samples) -> None:
        """One timed run, with the server's CPU over the same span."""
        before = self.server.cpu()
        try:
            reply = worker.ask("run", mode=mode, n=sample.requests)
        except BenchError as exc:
            self.fail(worker, mode, exc)
            return
        sample.server_cpu.append((self.server.cpu() - before) / sample.requests)
        sample.cpu.append(float(reply["cpu"]) / sample.requests)
        sample.wall.append(float(reply["wall"]) / sample.requests)

    def memory(self) -> dict[str, int]:
        """Each live worker's resident memory now, after its runs."""
        rss = {}
        for worker in self.workers:
            if worker.alive and worker.modes:
                try:
                    rss[worker.client] = int(worker.ask("rss")["rss"])
                except BenchError as exc:
                    self.failures.append(str(exc))
        return rss

    def measurements(self) -> list[Measurement]:
        """What was measured in full, modes in the workers' order, clients in `CLIENTS` order."""
        order = {client: index for index, client in enumerate(CLIENTS)}
        done = sorted(
            (key for key in self.samples if key not in self.broken),
            key=lambda key: (MODES.index(key[1]), order[key[0]]),
        )
        return [
            Measurement(
                client=client,
                group=CLIENTS[client].group,
                mode=mode,
                requests=self.samples[client, mode].requests,
                cpu=tuple(self.samples[client, mode].cpu),
                wall=tuple(self.samples[client, mode].wall),
                server_cpu=tuple(self.samples[client, mode].server_cpu),
            )
            for client, mode in done
        ]


def measure(options: Options) -> tuple[list[Measurement], dict[str, int], list[str]]:
    """Every client in every mode it offers: measurements, worker memory and failures."""
    with contextlib.ExitStack() as stack:
        logs = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-")))
        server = stack.enter_context(Server())
        progress(f"server at {server.base_url}; starting {len(options.clients)} workers")
        started = time.perf_counter()
        workers = []
        for index, client in enumerate(options.clients):
            workers.append(Worker(client, server.base_url, logs / f"{index}.log"))
            stack.callback(workers[-1].close)
        session = Session(server, workers)
        session.check(options.modes)
        progress(f"workers ready and answers checked in {time.perf_counter() - started:.1f} s")
        session.calibrate(options.seconds)
        for turn in range(options.reps):
            started = time.perf_counter()
            session.rep(options.modes, turn)
            progress(f"rep {turn + 1}/{options.reps} took {time.perf_counter() - started:.1f} s")
        memory = session.memory()
    return session.measurements(), memory, session.failures


def run(options: Options) -> Results:
    """Measure the clients, then (with the workers gone, so the machine is quieter) imports."""
    facts = machine()
    measurements, memory, failures = measure(options)
    timings: tuple[ImportTiming, ...] = ()
    bare: tuple[int, ...] = ()
    if options.imports:
        progress(f"timing {len(options.imports)} imports, {options.import_reps} reps")
        timings, bare = imports.measure(options.imports, options.import_reps, ROOT, environment())
    return Results(
        date=datetime.date.today().isoformat(),
        machine=facts,
        reps=options.reps,
        seconds=options.seconds,
        measurements=tuple(measurements),
        imports=timings,
        bare_rss=bare,
        worker_rss=memory,
        failures=tuple(failures),
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run, print the report, write results.md, results.json and ratios.png; 1 on a failure."""
    options = parse(argv)
    started = time.perf_counter()
    try:
        results = run(options)
    except BenchError as exc:
        progress(f"failed: {exc}")
        return 1
    checked = targets.check(results)
    text = report.markdown(results, checked)
    options.out.mkdir(parents=True, exist_ok=True)
    (options.out / "results.md").write_text(text)
    (options.out / "results.json").write_text(
        json.dumps(report.to_json(results, checked), indent=2) + "\n"
    )
    chart.draw(results, options.out / "ratios.png")
    print(text, end="")
    progress(f"wrote results.md, results.json and ratios.png to {options.out}")
    progress(f"took {time.perf_counter() - started:.0f} s")
    if results.failures:
        progress(f"{len(results.failures)} failure(s), listed under Failures above")
        return 1
    return 0
