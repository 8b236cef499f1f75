"""One-time setup steps (a build, an install): commands logged in full, their progress reported."""

from __future__ import annotations

import subprocess
import time
from collections import deque
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping
    from typing import TextIO

    from selfhosted_core.local._errors import LocalSetupError

__all__ = ["LOG_TAIL_LINES", "elapsed", "run_logged", "say", "tail"]

LOG_TAIL_LINES = 40
"""How many of a log's last lines an error message quotes."""


def say(out: TextIO, message: str) -> None:
    """Print one progress line, marked as this package's."""
    print(f"[selfhosted-llm] {message}", file=out, flush=True)


def elapsed(started: float) -> str:
    """Minutes and seconds since `started` (a `time.monotonic` reading), as ``4m05s``."""
    minutes, seconds = divmod(int(time.monotonic() - started), 60)
    return f"{minutes}m{seconds:02d}s"


def tail(lines: Iterable[str]) -> str:
    """The last lines of an output, joined: what an error message quotes."""
    return "\n".join(list(lines)[-LOG_TAIL_LINES:])


def run_logged(
    command: list[str],
    *,
    log: TextIO,
    progress: Callable[[str], int | None],
    report: Callable[[int], object],
    started: float,
    step: str,
    error: type[LocalSetupError],
    env: Mapping[str, str] | None = None,
) -> None:
    """Run one step, writing every line to `log` and reporting each new percentage.

    Args:
        command: The command.
        log: Where every output line goes.
        progress: Reads a percentage from an output line, or ``None``.
        report: Called with each percentage that differs from the last.
        started: When the whole job started (for the elapsed time in errors).
        step: The step's name in errors.
        error: What a failed step raises.
        env: The command's environment; defaults to this process's.

    Raises:
        LocalSetupError: The command failed (as `error`), with the log's last lines.
    """
    lines: deque[str] = deque(maxlen=LOG_TAIL_LINES)
    last_percent = -1
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            lines.append(line.rstrip("\n"))
            percent = progress(line)
            if percent is not None and percent != last_percent:
                last_percent = percent
                report(percent)
    if proc.returncode != 0:
        raise error(
            f"{step} failed with exit code {proc.returncode} after {elapsed(started)}; "
            f"last lines of {log.name}:\n{tail(lines)}"
        )
