"""Every command of the README's `selfhosted` block works as written, in order, on real servers."""

from __future__ import annotations

import io
import re
import shlex
from pathlib import Path

import pytest

from selfhosted_core.local import PLAIN_ANSWER_TEXT
from tests.cli_terminal import Run

README = Path(__file__).parents[3] / "README.md"


def readme_commands() -> list[list[str]]:
    text = README.read_text()
    section = text[text.index("## The `selfhosted` command") :]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert block is not None
    return [shlex.split(line, comments=True) for line in block.group(1).splitlines()]


def test_readme_block_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SELFHOSTED_CONFIG", "SELFHOSTED_BASE_URL", "SELFHOSTED_MODEL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("selfhosted_cli._commands.run_dir", lambda given=None: given or tmp_path)
    monkeypatch.setattr("selfhosted_cli._local.run_dir", lambda given=None: given or tmp_path)
    monkeypatch.setattr("sys.stdin", io.StringIO("Hello from stdin"))
    commands = readme_commands()
    assert commands[0][:2] == ["selfhosted", "local"]
    outputs: dict[str, Run] = {}
    try:
        for argv in commands:
            assert argv[0] == "selfhosted"
            run = Run()
            assert run(*argv[1:]) == 0, f"{shlex.join(argv)} failed: {run.err}"
            outputs[shlex.join(argv[1:3])] = run
    finally:
        Run()("local", "down")
    assert outputs["check"].out.count("│ ok ") == 3
    assert outputs["chat -m"].out == PLAIN_ANSWER_TEXT + "\n"
    assert " via chat-2 " in outputs["chat --no-stream"].err
    assert "a kitten" in outputs["embed -m"].out
    assert len(outputs["embed --json"].out) > 384
    assert "stopped" in outputs["local down"].out
    assert not (tmp_path / "servers.json").exists()
