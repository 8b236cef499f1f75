"""The tiny chat model in Hugging Face format, for servers that load ``transformers`` models.

The same weights as the GGUF (:mod:`selfhosted_core.local._chat_model`) written as a
``LlamaForCausalLM`` directory: ``config.json``, ``model.safetensors``, ``tokenizer.json`` (the
same byte-level BPE vocabulary and merges, the ChatML and tool tags as added tokens) and
``tokenizer_config.json`` carrying the chat template. vLLM serves it and behaves as
llama-server does with the GGUF: the same fixed replies, tool calls and JSON.

Two things differ from the GGUF because the layouts do:

- llama.cpp rotates adjacent pairs of each head's query and key dimensions, Hugging Face's
  llama rotates dimension ``i`` with ``i + head_dim / 2``; the query and key rows are reordered
  so that every head rotates the same pairs (what llama.cpp's converter does the other way).
- the chat template is :data:`HF_CHAT_TEMPLATE`, which adds Qwen3's ``enable_thinking``: on,
  the assistant turn opens with ``<think>`` and a newline and the model writes
  :data:`REASONING_TEXT` before its answer; off, it opens with an empty think block and the
  model answers at once. Reasoning sent back on an assistant message is rendered in its turn.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import gguf
import numpy as np

from selfhosted_core.local._cache import cache_root, cached_file
from selfhosted_core.local._chat_model import (
    CHAT_MODEL_VERSION,
    CONTEXT_LENGTH,
    HEAD_DIM,
    MODEL_NAME,
    N_FF,
    N_HEAD,
    RMS_EPS,
    ROPE_FREQ_BASE,
    chat_model_tensors,
)
from selfhosted_core.local._chat_tokenizer import (
    CONTROL,
    HF_CHAT_TEMPLATE,
    QWEN2_SPLIT,
    ChatVocab,
    build_vocab,
)
from selfhosted_core.local._safetensors import write_safetensors

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["hf_chat_model_path", "hf_chat_tensors", "write_hf_chat_model"]

# GGUF tensor names (block 0 only: the model has one layer) and their Hugging Face names.
_NAMES = {
    "token_embd.weight": "model.embed_tokens.weight",
    "output_norm.weight": "model.norm.weight",
    "output.weight": "lm_head.weight",
    "blk.0.attn_norm.weight": "model.layers.0.input_layernorm.weight",
    "blk.0.attn_q.weight": "model.layers.0.self_attn.q_proj.weight",
    "blk.0.attn_k.weight": "model.layers.0.self_attn.k_proj.weight",
    "blk.0.attn_v.weight": "model.layers.0.self_attn.v_proj.weight",
    "blk.0.attn_output.weight": "model.layers.0.self_attn.o_proj.weight",
    "blk.0.ffn_norm.weight": "model.layers.0.post_attention_layernorm.weight",
    "blk.0.ffn_gate.weight": "model.layers.0.mlp.gate_proj.weight",
    "blk.0.ffn_up.weight": "model.layers.0.mlp.up_proj.weight",
    "blk.0.ffn_down.weight": "model.layers.0.mlp.down_proj.weight",
}
_ROTATED = {"blk.0.attn_q.weight", "blk.0.attn_k.weight"}


def _unpermute(weight: np.ndarray) -> np.ndarray:
    # Row 2*i + j of a head (pair i, half j) in llama.cpp's order is row j*half + i in HF's.
    rows, cols = weight.shape
    half = HEAD_DIM // 2
    return np.ascontiguousarray(
        weight.reshape(rows // HEAD_DIM, half, 2, cols).swapaxes(1, 2).reshape(rows, cols)
    )


def hf_chat_tensors(vocab: ChatVocab | None = None) -> dict[str, np.ndarray]:
    """Return the chat model's tensors by Hugging Face name, in Hugging Face's layout.

    Example:
        >>> hf_chat_tensors()["lm_head.weight"].shape == chat_model_tensors()["output.weight"].shape
        True
    """
    tensors = chat_model_tensors(vocab)
    return {
        _NAMES[name]: _unpermute(array) if name in _ROTATED else array
        for name, array in tensors.items()
    }


def _tokenizer(vocab: ChatVocab) -> dict[str, Any]:
    byte_level = {"add_prefix_space": False, "trim_offsets": False, "use_regex": False}
    added = [
        {
            "id": index,
            "content": token,
            "single_word": False,
            "lstrip": False,
            "rstrip": False,
            "normalized": False,
            "special": token in CONTROL,
        }
        for index, token in enumerate(vocab.tokens)
        if vocab.types[index] != gguf.TokenType.NORMAL
    ]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {
            "type": "Sequence",
            "pretokenizers": [
                {
                    "type": "Split",
                    "pattern": {"Regex": QWEN2_SPLIT},
                    "behavior": "Isolated",
                    "invert": False,
                },
                {"type": "ByteLevel", **byte_level},
            ],
        },
        "post_processor": {"type": "ByteLevel", **byte_level},
        "decoder": {"type": "ByteLevel", **byte_level},
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "continuing_subword_prefix": "",
            "end_of_word_suffix": "",
            "fuse_unk": False,
            "byte_fallback": False,
            "ignore_merges": False,
            "vocab": {
                token: index
                for index, token in enumerate(vocab.tokens)
                if vocab.types[index] == gguf.TokenType.NORMAL
            },
            "merges": list(vocab.merges),
        },
    }


def _config(vocab: ChatVocab, hidden: int) -> dict[str, Any]:
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": hidden,
        "intermediate_size": N_FF,
        "num_hidden_layers": 1,
        "num_attention_heads": N_HEAD,
        "num_key_value_heads": N_HEAD,
        "head_dim": HEAD_DIM,
        "hidden_act": "silu",
        "max_position_embeddings": CONTEXT_LENGTH,
        "rms_norm_eps": RMS_EPS,
        "rope_theta": ROPE_FREQ_BASE,
        "rope_parameters": {"rope_type": "default", "rope_theta": ROPE_FREQ_BASE},
        "attention_bias": False,
        "mlp_bias": False,
        "tie_word_embeddings": False,
        "vocab_size": len(vocab),
        "bos_token_id": vocab.id("<|endoftext|>"),
        "eos_token_id": vocab.eos,
        "pad_token_id": vocab.id("<|endoftext|>"),
        "torch_dtype": "float32",
    }


def write_hf_chat_model(path: Path) -> Path:
    """Write the tiny chat model as a Hugging Face model directory (1.6 MB).

    Args:
        path: The directory to create; it must not exist yet.

    Returns:
        ``path``.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> out = Path(tempfile.mkdtemp()) / "tiny-hf"
        >>> sorted(p.name for p in write_hf_chat_model(out).iterdir())
        ['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', \
'tokenizer_config.json']
    """
    vocab = build_vocab()
    tensors = hf_chat_tensors(vocab)
    path.mkdir(parents=True)
    hidden = tensors["model.embed_tokens.weight"].shape[1]
    write_safetensors(path / "model.safetensors", tensors)
    files: dict[str, Any] = {
        "config.json": _config(vocab, hidden),
        "generation_config.json": {"eos_token_id": vocab.eos, "do_sample": False},
        "tokenizer.json": _tokenizer(vocab),
        "tokenizer_config.json": {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "chat_template": HF_CHAT_TEMPLATE,
            "eos_token": "<|im_end|>",
            "pad_token": "<|endoftext|>",
            "bos_token": None,
            "model_max_length": CONTEXT_LENGTH,
            "clean_up_tokenization_spaces": False,
        },
    }
    for name, content in files.items():
        (path / name).write_text(json.dumps(content, indent=1, ensure_ascii=False) + "\n")
    return path


def hf_chat_model_path(*, root: Path | None = None) -> Path:
    """Return the tiny chat model's Hugging Face directory, writing it on first use.

    Example:
        >>> hf_chat_model_path().name
        'selfhosted-tiny-chat-v3-hf'
    """
    target = (root or cache_root()) / "models" / f"{MODEL_NAME}-v{CHAT_MODEL_VERSION}-hf"
    return cached_file(target, write_hf_chat_model)
