"""The facts about this machine and its packages that a result is meaningless without."""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path

from benchmarks.figures import Machine

PACKAGES = ("httpx2", "openai", "langchain-openai", "langchain-core", "litellm", "aiohttp")


def cpu_model(cpuinfo: str) -> str:
    """The first `model name` in /proc/cpuinfo text (ARM kernels print none: the platform's)."""
    for line in cpuinfo.splitlines():
        name, _, value = line.partition(":")
        if name.strip() == "model name":
            return value.strip()
    return platform.processor() or "unknown"


def version(package: str) -> str:
    """The installed version of a distribution, or "not installed"."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine() -> Machine:
    """This machine now; the load average says how shared it was when the run started."""
    return Machine(
        cpu=cpu_model(Path("/proc/cpuinfo").read_text()),
        cores=os.cpu_count() or 1,
        python=platform.python_version(),
        load=os.getloadavg()[0],
        packages={package: version(package) for package in PACKAGES},
    )
