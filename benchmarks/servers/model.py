"""A random-weight llama whose prefill costs what a real model's does per token, on one core.

The programmed chat model of `selfhosted_core.local` is a single tiny layer: a prompt of
thousands of tokens prefills in milliseconds, so a prompt cache would save nothing measurable.
This one has the shape of a small real model (several layers of a few hundred dimensions,
about 50 M parameters) with random weights, so prefill costs a few ms per token at `-t 1`,
the order of magnitude a 7-8 B model costs per token on a GPU.

It reuses the chat model's vocabulary, tokenizer and chat template
(`selfhosted_core.local._chat_tokenizer`), so llama-server tokenizes any text (byte-level BPE,
close to one token per ASCII character) and formats chats the same way. Only letter tokens get
output weights, so the one token a benchmark request generates is always a letter: every
answer carries content, and time to first token is the time to the first content delta.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path

import gguf
import numpy as np

from selfhosted_core.local._cache import cache_root, cached_file
from selfhosted_core.local._chat_tokenizer import add_chat_tokenizer, build_vocab

__all__ = ["DEFAULT_SPEC", "ModelSpec", "model_path", "model_tensors", "write_model"]

# Bump whenever the written bytes change for the same spec: it is part of the cache key.
MODEL_VERSION = 1
_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


@dataclass(frozen=True)
class ModelSpec:
    """The shape of the random model; every field is part of the cached file's name.

    Attributes:
        layers: Transformer blocks.
        width: Embedding (residual) dimension.
        feed_forward: Hidden dimension of each block's gated feed-forward.
        heads: Attention heads (`width` must divide evenly).
        context: Training context written to the file.
        seed: Seed of the weights.
    """

    layers: int = 5
    width: int = 640
    feed_forward: int = 2048
    heads: int = 10
    context: int = 8192
    seed: int = 0

    @property
    def parameters(self) -> int:
        """The parameters of the blocks (attention and feed-forward; the vocabulary is ~300)."""
        per_block = 4 * self.width * self.width + 3 * self.width * self.feed_forward
        return self.layers * per_block

    @property
    def key(self) -> str:
        """A short stable digest of the spec and the writer's version."""
        text = repr((MODEL_VERSION, sorted(asdict(self).items())))
        return hashlib.blake2b(text.encode(), digest_size=6).hexdigest()

    @property
    def file_name(self) -> str:
        """The cached file's name: the shape in words, then the digest."""
        return f"bench-llama-{self.layers}x{self.width}-ff{self.feed_forward}-{self.key}.f32.gguf"


DEFAULT_SPEC = ModelSpec()


def model_tensors(spec: ModelSpec, vocab_size: int, letters: list[int]) -> dict[str, np.ndarray]:
    """Return the random tensors by GGUF name, shaped as numpy (rows = output features).

    Args:
        spec: The model's shape and seed.
        vocab_size: Tokens in the vocabulary.
        letters: Ids of the tokens the model may emit; every other output row is zero.

    Returns:
        Float32 arrays; the same for the same arguments.
    """
    if spec.width % spec.heads:
        raise ValueError(f"width {spec.width} is not a multiple of heads {spec.heads}")
    rng = np.random.default_rng(spec.seed)
    scale = 0.02

    def normal(*shape: int, std: float = scale) -> np.ndarray:
        values: np.ndarray = rng.standard_normal(shape, dtype=np.float32) * np.float32(std)
        return values

    ones = np.ones(spec.width, dtype=np.float32)
    output = np.zeros((vocab_size, spec.width), dtype=np.float32)
    # Letters only, with large weights: the top letter takes almost all the probability.
    output[letters] = normal(len(letters), spec.width, std=1.0)
    tensors = {
        "token_embd.weight": normal(vocab_size, spec.width, std=1.0),
        "output_norm.weight": ones,
        "output.weight": output,
    }
    for block in range(spec.layers):
        name = f"blk.{block}"
        tensors |= {
            f"{name}.attn_norm.weight": ones,
            f"{name}.attn_q.weight": normal(spec.width, spec.width),
            f"{name}.attn_k.weight": normal(spec.width, spec.width),
            f"{name}.attn_v.weight": normal(spec.width, spec.width),
            f"{name}.attn_output.weight": normal(spec.width, spec.width),
            f"{name}.ffn_norm.weight": ones,
            f"{name}.ffn_gate.weight": normal(spec.feed_forward, spec.width),
            f"{name}.ffn_up.weight": normal(spec.feed_forward, spec.width),
            f"{name}.ffn_down.weight": normal(spec.width, spec.feed_forward),
        }
    return tensors


def write_model(path: Path, spec: ModelSpec = DEFAULT_SPEC) -> Path:
    """Write the random model as a GGUF file (about 4 bytes per parameter).

    Args:
        path: Where to write; the parent directory must exist.
        spec: The model's shape and seed.

    Returns:
        ``path``.
    """
    vocab = build_vocab()
    letters = [vocab.id(letter) for letter in _LETTERS]
    head_dim = spec.width // spec.heads
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name(f"selfhosted-bench-{spec.key}")
    writer.add_context_length(spec.context)
    writer.add_embedding_length(spec.width)
    writer.add_block_count(spec.layers)
    writer.add_feed_forward_length(spec.feed_forward)
    writer.add_head_count(spec.heads)
    writer.add_head_count_kv(spec.heads)
    writer.add_key_length(head_dim)
    writer.add_value_length(head_dim)
    writer.add_rope_dimension_count(head_dim)
    writer.add_rope_freq_base(10_000.0)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_vocab_size(len(vocab))
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    add_chat_tokenizer(writer, vocab)
    for name, array in model_tensors(spec, len(vocab), letters).items():
        writer.add_tensor(name, array)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def model_path(spec: ModelSpec = DEFAULT_SPEC, *, root: Path | None = None) -> Path:
    """Return the random model's GGUF for `spec`, writing it on first use.

    Args:
        spec: The model's shape and seed; its fields key the cached file.
        root: The cache directory; defaults to `selfhosted_core.local.cache_root`.

    Returns:
        The path of the GGUF file, under ``<cache>/models/``.
    """
    target = (root or cache_root()) / "models" / spec.file_name
    return cached_file(target, lambda staged: write_model(staged, spec))
