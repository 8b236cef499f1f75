"""The tiny chat model in Hugging Face format: the same weights, tokenizer and template."""

from __future__ import annotations

import json
from pathlib import Path

import jinja2
import numpy as np
import pytest

from selfhosted_core.local._chat_model import CHAT_MODEL_VERSION, HEAD_DIM, chat_model_tensors
from selfhosted_core.local._chat_tokenizer import CHAT_TEMPLATE, HF_CHAT_TEMPLATE, build_vocab
from selfhosted_core.local._hf_chat_model import (
    hf_chat_model_path,
    hf_chat_tensors,
    write_hf_chat_model,
)
from selfhosted_core.local._safetensors import read_safetensors


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return hf_chat_model_path(root=tmp_path_factory.mktemp("hf-cache"))


def _permute(weight: np.ndarray) -> np.ndarray:
    """llama.cpp's converter (convert_hf_to_gguf.py `LlamaModel.permute`): HF rows to GGUF's."""
    rows = weight.shape[0]
    halves = weight.reshape(rows // HEAD_DIM, 2, HEAD_DIM // 2, -1)
    permuted: np.ndarray = halves.swapaxes(1, 2).reshape(weight.shape)
    return permuted


def test_weights_are_the_ggufs_in_hugging_face_layout(model_dir: Path) -> None:
    gguf = chat_model_tensors()
    hf = read_safetensors(model_dir / "model.safetensors")
    assert hf.keys() == hf_chat_tensors().keys()
    np.testing.assert_array_equal(
        _permute(hf["model.layers.0.self_attn.q_proj.weight"]), gguf["blk.0.attn_q.weight"]
    )
    np.testing.assert_array_equal(
        _permute(hf["model.layers.0.self_attn.k_proj.weight"]), gguf["blk.0.attn_k.weight"]
    )
    np.testing.assert_array_equal(hf["lm_head.weight"], gguf["output.weight"])
    np.testing.assert_array_equal(hf["model.embed_tokens.weight"], gguf["token_embd.weight"])
    config = json.loads((model_dir / "config.json").read_text())
    assert (config["architectures"], config["vocab_size"], config["head_dim"]) == (
        ["LlamaForCausalLM"],
        len(build_vocab()),
        HEAD_DIM,
    )
    assert config["hidden_size"] == gguf["token_embd.weight"].shape[1]


def _render(template: str, **context: object) -> str:
    environment = jinja2.Environment(trim_blocks=True, lstrip_blocks=True)
    rendered: str = environment.from_string(template).render(add_generation_prompt=True, **context)
    return rendered


def test_template_adds_qwen3_thinking_to_the_ggufs() -> None:
    messages = [{"role": "user", "content": "Hi"}]
    plain = _render(CHAT_TEMPLATE, messages=messages)
    assert plain.endswith("<|im_start|>assistant\n")
    assert _render(HF_CHAT_TEMPLATE, messages=messages) == plain + "<think>\n"
    off = _render(HF_CHAT_TEMPLATE, messages=messages, enable_thinking=False)
    assert off == plain + "<think>\n\n</think>\n\n"
    history = [
        *messages,
        {"role": "assistant", "content": "Hello!", "reasoning_content": "A greeting."},
        {"role": "user", "content": "Again"},
    ]
    assert "<|im_start|>assistant\n<think>\nA greeting.\n</think>\n\nHello!<|im_end|>" in _render(
        HF_CHAT_TEMPLATE, messages=history
    )
    assert "A greeting." not in _render(CHAT_TEMPLATE, messages=history)


def test_directory_is_versioned_cached_and_complete(tmp_path: Path) -> None:
    first = hf_chat_model_path(root=tmp_path)
    assert first.name == f"selfhosted-tiny-chat-v{CHAT_MODEL_VERSION}-hf"
    stamp = (first / "model.safetensors").stat().st_mtime_ns
    assert hf_chat_model_path(root=tmp_path) == first
    assert (first / "model.safetensors").stat().st_mtime_ns == stamp
    again = write_hf_chat_model(tmp_path / "again")
    for name in ("model.safetensors", "tokenizer.json", "tokenizer_config.json", "config.json"):
        assert (again / name).read_bytes() == (first / name).read_bytes()
    assert not list(tmp_path.glob("models/.*.tmp"))
