"""Import cost: each module imported in a fresh interpreter, timed, and its RSS read after.

A bare interpreter is measured the same way, so a module's memory is what importing it adds.
The modules take turns within each rep, so a slow spell of a shared machine spreads over all
of them instead of landing on one.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from benchmarks.figures import ImportTiming, rotated

MODULES = (
    "selfhosted_core",
    "langchain_selfhosted",
    "litellm_selfhosted",
    "openai",
    "langchain_openai",
    "litellm",
    "httpx2",
    "langchain_core",
    "langchain_core.language_models.chat_models",
)

# Times the import statement alone (interpreter start-up is the same for every module), then
# reads the resident set size the kernel reports.
_PROBE = """
import importlib, sys, time
start = time.perf_counter()
if len(sys.argv) > 1:
    importlib.import_module(sys.argv[1])
seconds = time.perf_counter() - start
with open("/proc/self/status") as status:
    kib = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
print(seconds, kib * 1024)
"""


def probe(module: str | None, cwd: Path, env: dict[str, str]) -> tuple[float, int]:
    """(import seconds, RSS bytes) of one fresh interpreter importing `module` (None: nothing)."""
    argv = [sys.executable, "-c", _PROBE] + ([] if module is None else [module])
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"importing {module} failed:\n{done.stderr.strip()[-2000:]}")
    seconds, rss = done.stdout.split()
    return float(seconds), int(rss)


def measure(
    modules: tuple[str, ...], reps: int, cwd: Path, env: dict[str, str]
) -> tuple[tuple[ImportTiming, ...], tuple[int, ...]]:
    """Every module's timings over `reps` interleaved reps, and the bare interpreter's RSS."""
    seconds: dict[str | None, list[float]] = {module: [] for module in (None, *modules)}
    rss: dict[str | None, list[int]] = {module: [] for module in (None, *modules)}
    for rep in range(reps):
        for module in rotated((None, *modules), rep):
            took, resident = probe(module, cwd, env)
            seconds[module].append(took)
            rss[module].append(resident)
    timings = tuple(
        ImportTiming(module, tuple(seconds[module]), tuple(rss[module])) for module in modules
    )
    return timings, tuple(rss[None])
