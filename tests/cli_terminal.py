"""A `Terminal` whose stdout and stderr are recorded, for tests of the `selfhosted` command."""

from __future__ import annotations

import io
from dataclasses import dataclass, field

from rich.console import Console

from selfhosted_cli import main
from selfhosted_cli._terminal import Terminal


def _console() -> Console:
    return Console(file=io.StringIO(), width=240, color_system=None, highlight=False)


@dataclass
class Run:
    """Runs the command line with recorded output; `out` and `err` hold what it wrote."""

    terminal: Terminal = field(default_factory=lambda: Terminal(_console(), _console()))

    def __call__(self, *argv: str) -> int:
        return main(list(argv), terminal=self.terminal)

    @property
    def out(self) -> str:
        file = self.terminal.out.file
        assert isinstance(file, io.StringIO)
        return file.getvalue()

    @property
    def err(self) -> str:
        file = self.terminal.err.file
        assert isinstance(file, io.StringIO)
        return file.getvalue()
