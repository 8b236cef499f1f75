"""The one cache directory every local artefact (binary, GGUF models) lives under."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from filelock import FileLock

__all__ = ["cache_root", "cached_file", "pip_download"]


def cache_root() -> Path:
    """Return ``$XDG_CACHE_HOME/selfhosted-llm``, falling back to ``~/.cache/selfhosted-llm``.

    Returns:
        The cache directory; it is not created here.

    Example:
        >>> cache_root().name
        'selfhosted-llm'
    """
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "selfhosted-llm"


def cached_file(target: Path, make: Callable[[Path], object]) -> Path:
    """Return `target`, first making it with `make(staging_path)` if it does not exist.

    A file lock keeps two processes from making it at once, and the file (or directory)
    appears under its name only when complete (made under a staging name, then renamed).
    """
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target.with_name(f"{target.name}.lock"))):
        if target.exists():
            return target
        staged = target.with_name(f".{target.name}.tmp")
        if staged.is_dir():
            shutil.rmtree(staged)
        make(staged)
        os.replace(staged, target)
    return target


def pip_download(
    spec: str, dest: Path, *, form: Literal["sdist", "wheel"]
) -> subprocess.CompletedProcess[str]:
    """Download one distribution (no dependencies) with pip, so pip's index settings apply."""
    only = ["--no-binary", ":all:"] if form == "sdist" else ["--only-binary", ":all:"]
    return subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", *only,
         "--disable-pip-version-check", spec, "-d", str(dest)],
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
