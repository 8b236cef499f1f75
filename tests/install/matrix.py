"""What the install matrix installs and checks; pure definitions, no I/O but the file system.

`python -m tests.install` (run by `make test`) builds the wheel and sdist, then installs each
extra of `EXTRAS` alone from the wheel into a fresh uv venv and runs `smoke.py` there, and runs
the unit tests (`UNIT_TEST_ARGS`) on each of `UNIT_PYTHONS`.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DISTRIBUTION = "selfhosted-llm"

MAIN_PYTHON = "3.11"
"""The Python of `.venv`, on which `make test` runs everything else."""

UNIT_PYTHONS = ("3.10", "3.13")
"""The oldest and newest supported Pythons: the unit tests run on each too."""

EXTRAS_PYTHON = "3.12"
"""The Python each extra is installed alone on, so that every supported Python runs something."""

NEEDS_SERVER = ("tests/integration", "tests/local", "tests/notebooks")
"""The suites that start real llama-servers (see `tests/conftest.py`): not unit tests."""

UNIT_TEST_ARGS = ("tests", *(f"--ignore={path}" for path in NEEDS_SERVER))
"""pytest's arguments for the unit tests: everything but the real-server suites."""

UNIT_EXTRAS = "all,dev,bench"
"""What the unit tests import: every extra, the test tools and the benchmark peers."""

PROXY_ENDPOINTS: dict[str, Any] = {
    "endpoints": [
        # A closed port: listing the proxy's models asks no upstream.
        {"url": "http://127.0.0.1:9/v1", "id": "tiny", "capabilities": ["chat"]},
        {
            "url": "http://127.0.0.1:9/v1",
            "id": "minilm",
            "capabilities": ["embedding"],
            "dimension": 384,
        },
    ]
}
"""The endpoints the proxy smoke writes `proxy_config()` for."""

PROXY_MODELS = ("minilm", "tiny")
"""The model ids the proxy's `GET /v1/models` must list for `PROXY_ENDPOINTS`, sorted."""

_COMMON_COMMANDS: tuple[tuple[str, ...], ...] = (
    ("selfhosted", "--help"),
    ("selfhosted", "--version"),
    ("python", "-m", "selfhosted_cli", "--version"),
    ("selfhosted", "models", "-c", "{endpoints}"),
)


@dataclass(frozen=True)
class Extra:
    """One extra installed alone (`name` empty: the core), and what its smoke checks."""

    name: str
    imports: tuple[str, ...]
    proxy: bool = False

    @property
    def label(self) -> str:
        """The extra's name, `core` for none."""
        return self.name or "core"

    @property
    def requirement(self) -> str:
        """What a user types: `selfhosted-llm[proxy]` (`selfhosted-llm` for the core)."""
        return f"{DISTRIBUTION}[{self.name}]" if self.name else DISTRIBUTION

    def install(self, wheel: Path) -> str:
        """The requirement, from the wheel built from this checkout."""
        return f"{self.requirement} @ {wheel.resolve().as_uri()}"

    def spec(self) -> dict[str, Any]:
        """The JSON `smoke.py` reads: what to import, run and start."""
        return {
            "label": self.label,
            "imports": list(self.imports),
            "commands": [list(command) for command in _COMMON_COMMANDS],
            "endpoints": PROXY_ENDPOINTS,
            "proxy_models": list(PROXY_MODELS) if self.proxy else None,
        }


_CORE = ("selfhosted_core", "selfhosted_core._aiohttp", "selfhosted_cli", "selfhosted_cli._views")

EXTRAS = (
    Extra("", _CORE),
    Extra(
        "langchain",
        (
            *_CORE,
            "langchain_core",
            "langchain_selfhosted",
            "langchain_selfhosted.chat_models",
            "langchain_selfhosted.embeddings",
        ),
    ),
    Extra("litellm", (*_CORE, "litellm", "litellm_selfhosted")),
    Extra(
        "proxy",
        (*_CORE, "litellm_selfhosted", "litellm.proxy.proxy_server", "litellm.proxy.proxy_cli"),
        proxy=True,
    ),
    Extra("local", (*_CORE, "numpy", "gguf", "filelock", "pip", "selfhosted_core.local")),
    Extra(
        "demo",
        (
            *_CORE,
            "langchain.agents",
            "langchain_selfhosted",
            "litellm_selfhosted",
            "selfhosted_core.local",
            "pip",
            "selfhosted_cli._demo",
        ),
    ),
    Extra("otel", (*_CORE, "opentelemetry.trace", "opentelemetry.metrics")),
    Extra("redis", (*_CORE, "redis", "selfhosted_core._redis")),
)
"""Every extra a user installs on its own; `all`, `dev` and `bench` are for this checkout."""


def find_python(version: str, *, pyenv_root: Path | None = None) -> Path | None:
    """An interpreter of `version` (`3.10`): pyenv's newest patch release, else one on PATH.

    pyenv's shims answer only for the versions selected globally, so its installs are looked
    at directly; uv would otherwise find the shim and give up on it.
    """
    root = pyenv_root if pyenv_root is not None else Path.home() / ".pyenv"
    pattern = re.compile(rf"{re.escape(version)}\.(\d+)")
    patches = []
    for folder in root.glob(f"versions/{version}.*"):
        match = pattern.fullmatch(folder.name)
        binary = folder / "bin" / f"python{version}"
        if match and binary.is_file():
            patches.append((int(match[1]), binary))
    if patches:
        return max(patches)[1]
    found = shutil.which(f"python{version}")
    if found is None:
        return None
    runs = subprocess.run([found, "-c", "pass"], capture_output=True, check=False)
    return Path(found) if runs.returncode == 0 else None


_COUNT = re.compile(r"(\d+) (passed|failed|skipped|xfailed|xpassed|errors?|deselected)")


def pytest_counts(output: str) -> dict[str, int]:
    """The counts of pytest's last summary line (`12 passed, 1 skipped in 3.2s`)."""
    summary = next(
        (line for line in reversed(output.splitlines()) if re.search(r" in [\d.]+s", line)), ""
    )
    counts: dict[str, int] = {}
    for number, kind in _COUNT.findall(summary):
        counts["error" if kind.startswith("error") else kind] = int(number)
    return counts
