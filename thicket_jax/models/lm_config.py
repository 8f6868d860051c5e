"""Configuration of a decoder-only transformer (Llama and Qwen2 families)."""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True, kw_only=True)
class LMConfig:
  """Shape and numerics of a Llama / Qwen2 decoder.

  Attributes:
    family: "llama" (SmolLM2, Llama 3) or "qwen2" (q/k/v biases).
    vocab_size, dim, n_layers, n_heads, n_kv_heads, head_dim, ffn_dim: sizes.
    rope_theta: rotary base; norm_eps: RMSNorm epsilon.
    tie_embeddings: the output head is the transposed token embedding.
    dtype: "float32" or "bfloat16" for the weights (activations follow).
    eos_ids: token ids that end a sequence.
  """
  family: str = "llama"
  vocab_size: int
  dim: int
  n_layers: int
  n_heads: int
  n_kv_heads: int
  head_dim: int
  ffn_dim: int
  rope_theta: float = 10000.0
  norm_eps: float = 1e-5
  tie_embeddings: bool = True
  dtype: str = "float32"
  eos_ids: tuple[int, ...] = ()

  def __post_init__(self):
    if self.family not in ("llama", "qwen2"):
      raise ValueError(f"family must be 'llama' or 'qwen2', got {self.family!r}")
    if self.n_heads % self.n_kv_heads:
      raise ValueError(f"n_heads={self.n_heads} must be a multiple of n_kv_heads={self.n_kv_heads}")
    if self.dtype not in ("float32", "bfloat16"):
      raise ValueError(f"dtype must be 'float32' or 'bfloat16', got {self.dtype!r}")
    object.__setattr__(self, "eos_ids", tuple(int(i) for i in self.eos_ids))

  @property
  def qkv_bias(self) -> bool:
    return self.family == "qwen2"

  @classmethod
  def tiny(cls, family: str = "llama", **overrides) -> "LMConfig":
    base = dict(family=family, vocab_size=97, dim=32, n_layers=2, n_heads=4, n_kv_heads=2,
                head_dim=8, ffn_dim=48, rope_theta=10000.0, norm_eps=1e-5,
                tie_embeddings=family == "llama", eos_ids=(2,))
    return cls(**{**base, **overrides})

  @classmethod
  def from_hf(cls, hf: dict[str, Any], dtype: str = "float32") -> "LMConfig":
    """From a Hugging Face `config.json` dict (model_type llama or qwen2)."""
    family = hf.get("model_type", "llama")
    if family not in ("llama", "qwen2"):
      raise ValueError(f"unsupported model_type {family!r} (llama and qwen2 are supported)")
    heads = hf["num_attention_heads"]
    eos = hf.get("eos_token_id", ())
    return cls(family=family, vocab_size=hf["vocab_size"], dim=hf["hidden_size"],
               n_layers=hf["num_hidden_layers"], n_heads=heads,
               n_kv_heads=hf.get("num_key_value_heads", heads),
               head_dim=hf.get("head_dim") or hf["hidden_size"] // heads,
               ffn_dim=hf["intermediate_size"], rope_theta=float(hf.get("rope_theta", 10000.0)),
               norm_eps=float(hf.get("rms_norm_eps", 1e-6)),
               tie_embeddings=bool(hf.get("tie_word_embeddings", False)), dtype=dtype,
               eos_ids=tuple(eos) if isinstance(eos, (list, tuple)) else (eos,))

  def to_dict(self) -> dict[str, Any]:
    return dataclasses.asdict(self)
