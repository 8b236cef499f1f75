"""Read and write ``.safetensors`` files with numpy alone (no torch, no safetensors package).

The format is an 8-byte little-endian header length, a JSON header mapping each tensor name to
its dtype, shape and byte range, then the raw little-endian data.
"""

from __future__ import annotations

import json
import struct
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["read_safetensors", "write_safetensors"]

_DTYPES: dict[str, np.dtype[Any]] = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U8": np.dtype("u1"),
}


def read_safetensors(path: Path) -> dict[str, np.ndarray[Any, Any]]:
    """Load every tensor in a safetensors file as a numpy array.

    The arrays are read-only views of a memory map, so loading costs no copy.

    Args:
        path: The ``.safetensors`` file.

    Returns:
        Tensor name to array, in the file's order; the ``__metadata__`` entry is skipped.

    Raises:
        ValueError: The file is truncated or uses a dtype numpy cannot represent (e.g. BF16).
    """
    raw = np.memmap(path, dtype=np.uint8, mode="r")
    if raw.size < 8:
        raise ValueError(f"{path}: too short to be a safetensors file")
    (header_len,) = struct.unpack("<Q", raw[:8].tobytes())
    data_start = 8 + header_len
    header: dict[str, Any] = json.loads(raw[8:data_start].tobytes())
    tensors: dict[str, np.ndarray[Any, Any]] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = _DTYPES.get(info["dtype"])
        if dtype is None:
            raise ValueError(f"{path}: tensor {name!r} has unsupported dtype {info['dtype']}")
        begin, end = info["data_offsets"]
        if data_start + end > raw.size:
            raise ValueError(f"{path}: tensor {name!r} extends past the end of the file")
        chunk = raw[data_start + begin : data_start + end]
        tensors[name] = chunk.view(dtype).reshape(info["shape"])
    return tensors


def write_safetensors(path: Path, tensors: dict[str, np.ndarray[Any, Any]]) -> Path:
    """Write float32 arrays as a safetensors file that `read_safetensors` and torch both load.

    Args:
        path: The file to write.
        tensors: Tensor name to float array; written in this order, as little-endian F32
            (float64 is narrowed).

    Returns:
        ``path``.

    Raises:
        ValueError: A tensor is not floating point.

    Example:
        >>> from pathlib import Path
        >>> out = write_safetensors(Path("/tmp/one.safetensors"), {"w": np.ones((2, 3))})
        >>> read_safetensors(out)["w"].shape
        (2, 3)
    """
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    blobs: list[bytes] = []
    offset = 0
    for name, array in tensors.items():
        if not np.issubdtype(array.dtype, np.floating):
            raise ValueError(f"tensor {name!r} is {array.dtype}; only floats are written (F32)")
        blob = np.ascontiguousarray(array, dtype="<f4").tobytes()
        header[name] = {
            "dtype": "F32",
            "shape": list(array.shape),
            "data_offsets": [offset, offset + len(blob)],
        }
        blobs.append(blob)
        offset += len(blob)
    encoded = json.dumps(header, separators=(",", ":")).encode()
    # The data starts on an 8-byte boundary, as the format's reference writer keeps it.
    encoded += b" " * (-len(encoded) % 8)
    with path.open("wb") as out:
        out.write(struct.pack("<Q", len(encoded)))
        out.write(encoded)
        for blob in blobs:
            out.write(blob)
    return path
