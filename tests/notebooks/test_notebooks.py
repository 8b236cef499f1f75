"""Every notebook under `notebooks/` runs top to bottom, and is committed stripped.

Each notebook starts its own local llama-servers (`LocalStack`) and asserts what it shows, so
executing it is a test of the documentation. It runs in a fresh kernel on this interpreter
(`sys.executable`), never on whatever kernelspec named `python3` a machine has registered; a
cell that raises fails the test with nbclient's `CellExecutionError`, which carries the cell's
source and traceback.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from traitlets import default

NOTEBOOK_DIR = Path(__file__).resolve().parents[2] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
CELL_TIMEOUT = 120
"""Seconds per cell; the slowest (importing litellm) takes about 3 s."""
KERNEL_STARTUP_TIMEOUT = 60
KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}


class _ThisInterpreterKernelSpecs(KernelSpecManager):
    """Every kernel name resolves to ipykernel on the interpreter running the tests."""

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        return KernelSpec(
            argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            display_name=f"Python 3 ({sys.executable})",
            language="python",
        )


class _ThisInterpreterKernel(AsyncKernelManager):
    @default("kernel_spec_manager")
    def _kernel_spec_manager_default(self) -> KernelSpecManager:
        return _ThisInterpreterKernelSpecs()


def read_notebook(path: Path) -> nbformat.NotebookNode:
    # nbformat's read carries no annotations.
    notebook: nbformat.NotebookNode = nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]
    return notebook


def test_the_notebooks_are_found() -> None:
    assert [path.name for path in NOTEBOOKS] == [
        "01_quickstart.ipynb",
        "02_langchain.ipynb",
        "03_litellm.ipynb",
        "04_operations.ipynb",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_notebook_runs(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # No warning filter is needed under pytest's `filterwarnings = error`: jupyter_core 5.9
    # no longer warns about its move to platformdirs (so JUPYTER_PLATFORM_DIRS stays unset),
    # and jupyter_client 8.10, nbclient 0.11 and pyzmq 27 warn neither at import nor in a run.
    # The kernel inherits the environment: a private IPython directory keeps the user's
    # profile, startup files and history out of the run.
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    notebook = read_notebook(path)
    client = NotebookClient(
        notebook,
        kernel_manager_class=_ThisInterpreterKernel,
        timeout=CELL_TIMEOUT,
        startup_timeout=KERNEL_STARTUP_TIMEOUT,
        resources={"metadata": {"path": str(NOTEBOOK_DIR)}},
    )
    # A cell that raises makes this raise CellExecutionError, with the cell and its traceback.
    client.execute()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_notebook_is_stripped(path: Path) -> None:
    notebook = read_notebook(path)
    nbformat.validate(notebook)
    assert notebook.metadata == {"kernelspec": KERNELSPEC}
    for cell in notebook.cells:
        where = f"{path.name} cell {cell.get('id')}"
        metadata: dict[str, Any] = dict(cell.metadata)
        assert set(metadata) <= {"tags"}, f"{where}: metadata {metadata}"
        assert "attachments" not in cell, where
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{where}: has outputs"
            assert cell.execution_count is None, f"{where}: execution_count {cell.execution_count}"


def test_strip_helper_agrees() -> None:
    """`notebooks/strip.py --check` finds nothing to change (its layout is nbformat's)."""
    result = subprocess.run(
        [sys.executable, str(NOTEBOOK_DIR / "strip.py"), "--check", *map(str, NOTEBOOKS)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
