"""Strip notebooks for committing: no outputs, no execution counts, minimal metadata.

Usage (from the repository root)::

    python notebooks/strip.py notebooks/*.ipynb          # rewrite the files in place
    python notebooks/strip.py --check notebooks/*.ipynb  # exit 1 if any file would change

Cells keep their source, id and ``tags`` (tags can change how a notebook runs); code cells
lose their outputs and execution counts, markdown cells their attachments. The notebook metadata
becomes the plain Python 3 kernelspec, which drops widget state, ``language_info`` and whatever
else an editor stored.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

KERNELSPEC: dict[str, str] = {
    "display_name": "Python 3",
    "language": "python",
    "name": "python3",
}
"""The only notebook metadata kept."""
_KEPT_CELL_METADATA = ("tags",)


def strip(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Strip a notebook in place and return it.

    Args:
        notebook: A notebook as read by `nbformat.read` (version 4).

    Returns:
        The same notebook, stripped.
    """
    notebook.metadata.clear()
    notebook.metadata["kernelspec"] = dict(KERNELSPEC)
    for cell in notebook.cells:
        for key in [key for key in cell.metadata if key not in _KEPT_CELL_METADATA]:
            del cell.metadata[key]
        cell.pop("attachments", None)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    return notebook


def read(path: Path) -> nbformat.NotebookNode:
    """Read a notebook in the format version it has."""
    # nbformat's read, writes and validate carry no annotations.
    notebook: nbformat.NotebookNode = nbformat.read(path, as_version=nbformat.NO_CONVERT)  # type: ignore[no-untyped-call]
    return notebook


def stripped_text(path: Path) -> str:
    """Return the text the file at `path` has once stripped (validated, nbformat's layout)."""
    notebook = strip(read(path))
    nbformat.validate(notebook)
    text: str = nbformat.writes(notebook)  # type: ignore[no-untyped-call]
    return text if text.endswith("\n") else text + "\n"


def main(argv: list[str] | None = None) -> int:
    """Strip the notebooks named on the command line, or with ``--check`` only report them.

    Returns:
        The exit status: 1 when ``--check`` found a notebook that is not stripped, else 0.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("notebooks", nargs="+", type=Path, help="the .ipynb files")
    parser.add_argument(
        "--check", action="store_true", help="change nothing; exit 1 if a file is not stripped"
    )
    args = parser.parse_args(argv)
    unstripped = []
    for path in args.notebooks:
        text = stripped_text(path)
        if path.read_text(encoding="utf-8") == text:
            continue
        unstripped.append(path)
        if args.check:
            print(f"not stripped: {path}", file=sys.stderr)
        else:
            path.write_text(text, encoding="utf-8")
            print(f"stripped: {path}")
    return 1 if args.check and unstripped else 0


if __name__ == "__main__":
    sys.exit(main())
