"""`selfhosted local up|down`, and getting the embedded servers ready with visible progress."""

from __future__ import annotations

import argparse
import json
import os
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

import yaml
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from selfhosted_cli._commands import run_dir
from selfhosted_cli._terminal import CommandError, Terminal

if TYPE_CHECKING:
    from selfhosted_core.local import LocalStack

__all__ = ["local_down", "local_up", "prepare", "prepare_vllm", "start_stack"]

_STATE = "servers.json"
_ENDPOINTS = "endpoints.yaml"


_COLUMNS = (
    SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
    TaskProgressColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
)  # fmt: skip


def prepare(term: Terminal) -> Path:
    """The llama-server binary and both models; what is missing is built or made, with progress.

    Returns:
        The binary's path.
    """
    from selfhosted_core.local import (  # noqa: PLC0415 - numpy stays off the other commands
        LLAMA_SERVER_ENV_VAR,
        LlamaServerBuildError,
        chat_model_path,
        embedding_model_path,
        find_llama_server,
    )

    try:
        binary = find_llama_server(build=False)
    except LlamaServerBuildError:
        if os.environ.get(LLAMA_SERVER_ENV_VAR):  # a wrong path given: no build would fix it
            raise
        with Progress(*_COLUMNS, console=term.err) as progress:
            # find_llama_server says what it builds, how long it takes and where the log is.
            task = progress.add_task("llama-server build", total=100)
            binary = find_llama_server(
                on_percent=lambda done: progress.update(task, completed=done)
            )
    with term.err.status("preparing the models (the first time takes a few seconds)"):
        chat_model_path()
        embedding_model_path()
    return binary


def prepare_vllm(term: Terminal) -> Path:
    """Get vLLM's environment and both models in Hugging Face form ready, with progress.

    Returns:
        The Python of the environment that runs vLLM.
    """
    from selfhosted_core.local import (  # noqa: PLC0415 - numpy stays off the other commands
        VLLM_PYTHON_ENV_VAR,
        VllmInstallError,
        embedding_model_dir,
        find_vllm,
        hf_chat_model_path,
    )

    try:
        python = find_vllm(install=False)
    except VllmInstallError:
        if os.environ.get(VLLM_PYTHON_ENV_VAR):  # a wrong path given: no install would fix it
            raise
        with Progress(*_COLUMNS, console=term.err) as progress:
            # find_vllm says what it installs, how long it takes and where the log is.
            task = progress.add_task("vLLM install", total=100)
            python = find_vllm(on_percent=lambda done: progress.update(task, completed=done))
    with term.err.status("preparing the models (the first time takes a few seconds)"):
        hf_chat_model_path()
        embedding_model_dir()
    return python


def start_stack(term: Terminal, stack: LocalStack) -> LocalStack:
    """Start the servers under a spinner; show where each listens."""
    with term.err.status(f"starting {len(stack.servers)} servers"):
        stack.start()
    table = Table(title="local servers", title_justify="left")
    for name in ("endpoint", "model", "url", "pid", "log"):
        table.add_column(name, overflow="fold")
    for label, server in stack.servers.items():
        cells = (label, server.alias, server.base_url, str(server.pid), str(server.log_path))
        table.add_row(*map(Text, cells))
    term.out.print(table)
    return stack


def local_up(args: argparse.Namespace, term: Terminal) -> int:
    """Start detached servers and write `endpoints.yaml` and the state file into the run folder."""
    from selfhosted_core.local import LocalStack, stop_detached  # noqa: PLC0415 - as above

    run = run_dir(args.dir)
    run.mkdir(parents=True, exist_ok=True)
    for pid in _read_state(run).values():
        stop_detached(pid)
    if args.server == "vllm":
        stack = LocalStack(
            chat_replicas=0, vllm_replicas=args.replicas, embedding_server="vllm",
            python=prepare_vllm(term), log_dir=run, detach=True,
        )  # fmt: skip
    else:
        stack = LocalStack(
            chat_replicas=args.replicas, binary=prepare(term), log_dir=run, detach=True
        )
    start_stack(term, stack)
    endpoints = run / _ENDPOINTS
    endpoints.write_text(yaml.safe_dump({"endpoints": stack.endpoints()}, sort_keys=False))
    state = {label: {"pid": s.pid, "url": s.base_url} for label, s in stack.servers.items()}
    (run / _STATE).write_text(json.dumps(state, indent=2))
    term.out.print(f"endpoints file: {endpoints}", soft_wrap=True, markup=False)
    term.out.print(
        f"use it with:    export SELFHOSTED_CONFIG={endpoints}", soft_wrap=True, markup=False
    )
    stop = "selfhosted local down" + (f" --dir {shlex.quote(str(args.dir))}" if args.dir else "")
    term.out.print(f"stop them with: {stop}", soft_wrap=True, markup=False)
    return 0


def local_down(args: argparse.Namespace, term: Terminal) -> int:
    """Stop the servers `local up` started and remove its files."""
    from selfhosted_core.local import stop_detached  # noqa: PLC0415 - as above

    run = run_dir(args.dir)
    state = _read_state(run)
    if not state:
        term.out.print("no servers running")
        return 0
    for label, pid in state.items():
        stopped = stop_detached(pid)
        term.out.print(f"{label:<10} {'stopped' if stopped else 'was not running'}")
    (run / _STATE).unlink()
    (run / _ENDPOINTS).unlink(missing_ok=True)
    return 0


def _read_state(run: Path) -> dict[str, int]:
    """Each server's pid by label, from the state file `local up` wrote."""
    path = run / _STATE
    if not path.is_file():
        return {}
    try:
        state = json.loads(path.read_text())
        return {str(label): int(entry["pid"]) for label, entry in state.items()}
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise CommandError(
            f"{path} is not a state file `selfhosted local up` wrote ({exc}); stop its servers "
            "by hand if any run, then delete the file"
        ) from exc
