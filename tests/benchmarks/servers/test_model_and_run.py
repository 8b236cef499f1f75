from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np
import pytest

from benchmarks.servers.arms import ARMS
from benchmarks.servers.model import ModelSpec, model_path, model_tensors
from benchmarks.servers.run import options, schedule
from selfhosted_core.local._chat_tokenizer import CHAT_TEMPLATE, build_vocab


def test_spec_keys_the_cached_file() -> None:
    spec = ModelSpec()
    assert spec.parameters == 5 * (4 * 640 * 640 + 3 * 640 * 2048)
    assert ModelSpec().file_name == spec.file_name
    assert ModelSpec(layers=4).file_name != spec.file_name
    assert ModelSpec(seed=1).key != spec.key


def test_tensors_are_seeded_and_only_letters_are_emitted() -> None:
    spec = ModelSpec(layers=1, width=64, feed_forward=128, heads=4)
    tensors = model_tensors(spec, 10, [2, 5])
    again = model_tensors(spec, 10, [2, 5])
    assert all(np.array_equal(tensors[name], again[name]) for name in tensors)
    assert tensors["blk.0.ffn_gate.weight"].shape == (128, 64)
    assert tensors["blk.0.attn_q.weight"].dtype == np.float32
    rows = np.abs(tensors["output.weight"]).sum(axis=1)
    assert [index for index, total in enumerate(rows) if total > 0] == [2, 5]
    with pytest.raises(ValueError, match="multiple of heads"):
        model_tensors(ModelSpec(width=65, heads=4), 10, [2])


def test_model_file_carries_the_chat_tokenizer(tmp_path: Path) -> None:
    spec = ModelSpec(layers=1, width=64, feed_forward=128, heads=4)
    path = model_path(spec, root=tmp_path)
    assert path == tmp_path / "models" / spec.file_name
    reader = gguf.GGUFReader(path)
    template = reader.fields["tokenizer.chat_template"]
    assert bytes(template.parts[template.data[0]]).decode() == CHAT_TEMPLATE
    tokens = reader.fields["tokenizer.ggml.tokens"]
    assert len(tokens.data) == len(build_vocab())
    assert model_path(spec, root=tmp_path).stat().st_mtime == path.stat().st_mtime


def test_arms_interleave_and_rotate() -> None:
    names = [(rep, workload, arm.name) for rep, workload, arm in schedule(2)]
    a, b, c = (arm.name for arm in ARMS)
    assert names == [
        (0, "shared", a), (0, "shared", b), (0, "shared", c),
        (0, "distinct", a), (0, "distinct", b), (0, "distinct", c),
        (1, "shared", b), (1, "shared", c), (1, "shared", a),
        (1, "distinct", b), (1, "distinct", c), (1, "distinct", a),
    ]  # fmt: skip
    assert {a, b, c} == {"affinity", "least_in_flight", "litellm_shuffle"}


def test_small_defaults_and_checked_options() -> None:
    parsed = options([])
    assert (parsed.reps, parsed.sessions, parsed.turns, parsed.prefix_tokens) == (1, 4, 5, 1500)
    assert options(["--reps", "3", "--sessions", "6", "--turns", "2"]).reps == 3
    with pytest.raises(SystemExit):
        options(["--turns", "0"])
