"""`python -m tests.install [--uv PATH] [--jobs N] [--only LABEL]`: the install matrix, run by `make test`.

Builds the wheel and sdist (`python -m build`, `twine check`), then, in fresh uv venvs made in
parallel, installs each extra alone from the wheel and runs its smoke (`smoke.py`), and runs
the unit tests on each of `UNIT_PYTHONS`. Prints one line per job with its time; a failed
job's log follows. Exits 1 if any failed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tests.install.matrix import (
    EXTRAS,
    EXTRAS_PYTHON,
    UNIT_EXTRAS,
    UNIT_PYTHONS,
    UNIT_TEST_ARGS,
    Extra,
    find_python,
    pytest_counts,
)

ROOT = Path(__file__).resolve().parents[2]
SMOKE = Path(__file__).with_name("smoke.py")


@dataclass
class Job:
    """One venv: what it installs and what runs in it; `log` collects every command's output."""

    label: str
    python: Path
    install: str
    check: list[str]
    cwd: Path
    log: list[str] = field(default_factory=list)
    seconds: float = 0.0
    install_seconds: float = 0.0
    ok: bool = False
    summary: str = ""


def main() -> int:
    """Run the matrix; the exit status."""
    parser = argparse.ArgumentParser(prog="python -m tests.install")
    parser.add_argument("--uv", default=os.environ.get("UV") or shutil.which("uv") or "uv")
    # All at once by default: the unit runs mostly wait (retry backoffs), so the extras'
    # installs and smokes fit inside them.
    parser.add_argument("--jobs", type=int, default=0, help="jobs at once (default: all)")
    parser.add_argument(
        "--only", action="append", default=[], metavar="LABEL",
        help="run only the jobs whose label starts so (`proxy`, `unit 3.10`); repeatable",
    )  # fmt: skip
    args = parser.parse_args()
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "PATH": path_with(args.uv)}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="selfhosted-install-") as temporary:
        work = Path(temporary)
        wheel = build(work / "dist", env)
        print(f"built and checked {wheel.name} and its sdist in {elapsed(started)}")
        pythons: dict[str, Path] = {}
        for version in (EXTRAS_PYTHON, *UNIT_PYTHONS):
            found = find_python(version)
            if found is None:
                print(f"FAILED: no Python {version} on this machine (pyenv install {version})")
                return 1
            pythons[version] = found
        jobs = [
            *(unit_job(version, pythons[version], wheel) for version in UNIT_PYTHONS),
            *(extra_job(extra, pythons[EXTRAS_PYTHON], wheel, work) for extra in EXTRAS),
        ]
        if args.only:
            jobs = [job for job in jobs if job.label.startswith(tuple(args.only))]
        with ThreadPoolExecutor(max_workers=args.jobs or len(jobs)) as pool:
            done = list(pool.map(lambda job: run_job(job, work, args.uv, env), jobs))
    for job in done:
        state = "ok" if job.ok else "FAILED"
        print(
            f"{state:6} {job.label:12} {job.seconds:6.1f} s "
            f"(install {job.install_seconds:.1f} s) {job.summary}"
        )
    failed = [job for job in done if not job.ok]
    for job in failed:
        print(f"\n--- {job.label} ---\n" + "\n".join(job.log)[-8000:])
    print(f"install matrix: {len(done) - len(failed)}/{len(done)} ok in {elapsed(started)}")
    return 1 if failed else 0


def path_with(uv: str) -> str:
    """PATH with uv's folder first, for `python -m build --installer uv`."""
    found = shutil.which(uv)
    folder = str(Path(found).parent) if found else ""
    return os.pathsep.join(part for part in (folder, os.environ.get("PATH", "")) if part)


def elapsed(since: float) -> str:
    """Seconds since `since`, for the log."""
    return f"{time.perf_counter() - since:.1f} s"


def build(outdir: Path, env: dict[str, str]) -> Path:
    """The wheel and sdist of this checkout, checked by twine; the wheel's path."""
    command = [sys.executable, "-m", "build", "--installer", "uv", "--outdir", str(outdir)]
    # The sdist, then the wheel built from the sdist: a file the sdist lacks fails here.
    checked([*command, str(ROOT)], env)
    built = sorted(outdir.iterdir())
    checked([sys.executable, "-m", "twine", "check", "--strict", *map(str, built)], env)
    (wheel,) = (path for path in built if path.suffix == ".whl")
    return wheel


def checked(command: list[str], env: dict[str, str]) -> None:
    """Run `command`; on failure, stop the matrix with its output."""
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.exit(f"FAILED: {' '.join(command)}\n{result.stdout[-4000:]}{result.stderr[-4000:]}")


def extra_job(extra: Extra, python: Path, wheel: Path, work: Path) -> Job:
    """Install `extra` alone on `python`; the smoke in a folder of its own."""
    folder = work / extra.label
    folder.mkdir()
    spec = folder / "spec.json"
    spec.write_text(json.dumps(extra.spec()))
    return Job(
        f"{extra.label} {EXTRAS_PYTHON}",
        python,
        extra.install(wheel),
        [str(SMOKE), str(spec)],
        folder,
    )


def unit_job(version: str, python: Path, wheel: Path) -> Job:
    """The unit tests on `python`, every extra installed, from the checkout's folder."""
    install = f"{Extra(UNIT_EXTRAS, ()).requirement} @ {wheel.resolve().as_uri()}"
    check = ["-m", "pytest", "-q", "-p", "no:cacheprovider", *UNIT_TEST_ARGS]
    return Job(f"unit {version}", python, install, check, ROOT)


def run_job(job: Job, work: Path, uv: str, env: dict[str, str]) -> Job:
    """Make the venv, install, run the check; the job, filled in."""
    started = time.perf_counter()
    venv = work / f"venv-{job.label.replace(' ', '-')}"
    python = venv / "bin" / "python"
    steps = [
        [uv, "venv", "--quiet", "--python", str(job.python), str(venv)],
        [uv, "pip", "install", "--quiet", "--python", str(python), job.install],
    ]
    for step in steps:
        if not step_ok(job, step, env, ROOT):
            job.seconds = time.perf_counter() - started
            return job
    job.install_seconds = time.perf_counter() - started
    # The venv's own environment, as an activated shell has it: no VIRTUAL_ENV of the parent.
    check_env = {key: value for key, value in env.items() if key != "VIRTUAL_ENV"}
    job.ok = step_ok(job, [str(python), *job.check], check_env, job.cwd)
    job.seconds = time.perf_counter() - started
    if job.label.startswith("unit"):
        counts = pytest_counts("\n".join(job.log))
        job.summary = ", ".join(f"{number} {kind}" for kind, number in counts.items())
    elif job.ok:
        job.summary = job.log[-1].rstrip().rsplit("\n", 1)[-1]  # the smoke's last check
    return job


def step_ok(job: Job, command: list[str], env: dict[str, str], cwd: Path) -> bool:
    """Run one command of `job`, its output into the job's log; whether it succeeded."""
    result = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=1800
    )
    job.log.append(f"$ {' '.join(command)}\n{result.stdout}{result.stderr}")
    return result.returncode == 0


if __name__ == "__main__":
    sys.exit(main())
