"""The numpy-only safetensors reader."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from selfhosted_core.local._safetensors import read_safetensors, write_safetensors


def _write(path: Path, tensors: dict[str, np.ndarray], *, dtypes: dict[str, str]) -> None:
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    blobs = b""
    for name, array in tensors.items():
        data = array.tobytes()
        header[name] = {
            "dtype": dtypes[name],
            "shape": list(array.shape),
            "data_offsets": [len(blobs), len(blobs) + len(data)],
        }
        blobs += data
    encoded = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(encoded)) + encoded + blobs)


def test_round_trip(tmp_path: Path) -> None:
    weights = np.arange(6, dtype="<f4").reshape(2, 3)
    half = np.array([1.5, -2.0], dtype="<f2")
    ids = np.array([[0, 1, 2]], dtype="<i8")
    path = tmp_path / "m.safetensors"
    _write(
        path, {"w": weights, "h": half, "ids": ids}, dtypes={"w": "F32", "h": "F16", "ids": "I64"}
    )
    loaded = read_safetensors(path)
    assert list(loaded) == ["w", "h", "ids"]
    np.testing.assert_array_equal(loaded["w"], weights)
    np.testing.assert_array_equal(loaded["h"], half)
    np.testing.assert_array_equal(loaded["ids"], ids)
    assert loaded["w"].shape == (2, 3)


def test_unsupported_dtype(tmp_path: Path) -> None:
    path = tmp_path / "bf16.safetensors"
    _write(path, {"b": np.zeros(2, dtype="<u2")}, dtypes={"b": "BF16"})
    with pytest.raises(ValueError, match="unsupported dtype BF16"):
        read_safetensors(path)


def test_truncated(tmp_path: Path) -> None:
    path = tmp_path / "cut.safetensors"
    _write(path, {"w": np.zeros(8, dtype="<f4")}, dtypes={"w": "F32"})
    path.write_bytes(path.read_bytes()[:-4])
    with pytest.raises(ValueError, match="past the end"):
        read_safetensors(path)


def test_written_files_read_back_with_aligned_data(tmp_path: Path) -> None:
    tensors: dict[str, np.ndarray] = {
        "a": np.arange(6, dtype=np.float32).reshape(2, 3),
        "b": np.ones(5),
    }
    path = write_safetensors(tmp_path / "w.safetensors", tensors)
    loaded = read_safetensors(path)
    assert list(loaded) == ["a", "b"]
    np.testing.assert_array_equal(loaded["a"], tensors["a"])
    assert loaded["b"].dtype == np.float32
    np.testing.assert_array_equal(loaded["b"], np.ones(5, dtype=np.float32))
    (header_len,) = struct.unpack("<Q", path.read_bytes()[:8])
    assert header_len % 8 == 0
    assert json.loads(path.read_bytes()[8 : 8 + header_len])["__metadata__"] == {"format": "pt"}
