"""Checkpoint loading: GGUF files (llama.cpp) and Hugging Face safetensors directories.

Both are mapped to Hugging Face tensor names first, then to this package's params
dict (linear weights transposed to [in, out]). GGUF files of the llama
architecture store Q and K rows permuted for llama.cpp's RoPE; that is undone.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any, Iterable

import jax
import jax.numpy as jnp
import numpy as np

from thicket_jax.models.lm_config import LMConfig
from thicket_jax.models.transformer import abstract_params

_STOP_TOKENS = ("<|im_end|>", "<|eot_id|>", "<|endoftext|>", "<|end_of_text|>")

_LAYER_RULES = [  # HF suffix -> (our path inside layers/i, transpose)
    ("input_layernorm.weight", ("attn_norm", "scale"), False),
    ("post_attention_layernorm.weight", ("mlp_norm", "scale"), False),
    ("self_attn.q_proj.weight", ("attn", "q", "kernel"), True),
    ("self_attn.k_proj.weight", ("attn", "k", "kernel"), True),
    ("self_attn.v_proj.weight", ("attn", "v", "kernel"), True),
    ("self_attn.o_proj.weight", ("attn", "o", "kernel"), True),
    ("self_attn.q_proj.bias", ("attn", "q", "bias"), False),
    ("self_attn.k_proj.bias", ("attn", "k", "bias"), False),
    ("self_attn.v_proj.bias", ("attn", "v", "bias"), False),
    ("mlp.gate_proj.weight", ("mlp", "gate", "kernel"), True),
    ("mlp.up_proj.weight", ("mlp", "up", "kernel"), True),
    ("mlp.down_proj.weight", ("mlp", "down", "kernel"), True),
]
_GLOBAL_RULES = {
    "model.embed_tokens.weight": (("embed", "embedding"), False),
    "model.norm.weight": (("final_norm", "scale"), False),
    "lm_head.weight": (("lm_head", "kernel"), True),
}
_GGUF_TO_HF = {
    "token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight",
    "output.weight": "lm_head.weight",
}
_GGUF_LAYER_TO_HF = {
    "attn_norm.weight": "input_layernorm.weight", "ffn_norm.weight": "post_attention_layernorm.weight",
    "attn_q.weight": "self_attn.q_proj.weight", "attn_k.weight": "self_attn.k_proj.weight",
    "attn_v.weight": "self_attn.v_proj.weight", "attn_output.weight": "self_attn.o_proj.weight",
    "attn_q.bias": "self_attn.q_proj.bias", "attn_k.bias": "self_attn.k_proj.bias",
    "attn_v.bias": "self_attn.v_proj.bias", "ffn_gate.weight": "mlp.gate_proj.weight",
    "ffn_up.weight": "mlp.up_proj.weight", "ffn_down.weight": "mlp.down_proj.weight",
}


def _hf_to_path(name: str) -> tuple[tuple, bool] | None:
  if name in _GLOBAL_RULES:
    return _GLOBAL_RULES[name]
  m = re.fullmatch(r"model\.layers\.(\d+)\.(.+)", name)
  if m:
    for suffix, path, transpose in _LAYER_RULES:
      if m.group(2) == suffix:
        return ("layers", int(m.group(1))) + path, transpose
  return None


def assemble_params(cfg: LMConfig, tensors: Iterable[tuple[str, Any]]) -> dict[str, Any]:
  """Builds the params dict from (HF name, array [out, in] for linears) pairs; checks shapes."""
  abstract = abstract_params(cfg)
  expected = {tuple(getattr(k, "key", getattr(k, "idx", None)) for k in path): leaf
              for path, leaf in jax.tree_util.tree_leaves_with_path(abstract)}
  found: dict[tuple, Any] = {}
  dtype = jnp.dtype(cfg.dtype)
  for name, array in tensors:
    rule = _hf_to_path(name)
    if rule is None:
      if "rotary_emb" in name or name.endswith("rope_freqs.weight"):
        continue
      raise ValueError(f"unexpected tensor {name!r} in the checkpoint")
    path, transpose = rule
    if path not in expected:
      raise ValueError(f"tensor {name!r} does not fit a {cfg.family} model with this config")
    arr = np.asarray(array)
    arr = arr.T if transpose else arr
    want = expected[path].shape
    if tuple(arr.shape) != tuple(want):
      raise ValueError(f"tensor {name!r} has shape {arr.shape}, the config expects {want}")
    found[path] = jnp.asarray(arr, dtype)
  missing = [".".join(map(str, p)) for p in expected if p not in found]
  if missing:
    raise ValueError(f"checkpoint is missing {len(missing)} tensor(s), e.g. {missing[:3]}")
  params: dict[str, Any] = {}
  for path, value in found.items():
    node = params
    for k in path[:-1]:
      node = node.setdefault(k, {})
    node[path[-1]] = value
  return params


def _stop_ids(vocab: dict[str, int], eos: Iterable[int]) -> tuple[int, ...]:
  ids = {int(i) for i in eos if i is not None}
  ids |= {vocab[t] for t in _STOP_TOKENS if t in vocab}
  return tuple(sorted(ids))


# --- GGUF -------------------------------------------------------------------------------------

def _field(reader, key, default=None):
  f = reader.fields.get(key)
  return default if f is None else f.contents()


def unpermute_qk(w_out_in: np.ndarray, n_heads: int) -> np.ndarray:
  """Undoes llama.cpp's Q/K row permutation: [d_out, d_in] -> HF rotate-half order."""
  d_out, d_in = w_out_in.shape
  head_dim = d_out // n_heads
  return w_out_in.reshape(n_heads, head_dim // 2, 2, d_in).swapaxes(1, 2).reshape(d_out, d_in)


def permute_qk(w_out_in: np.ndarray, n_heads: int) -> np.ndarray:
  """llama.cpp's conversion permutation (the inverse of `unpermute_qk`), for writing GGUF files."""
  d_out, d_in = w_out_in.shape
  head_dim = d_out // n_heads
  return w_out_in.reshape(n_heads, 2, head_dim // 2, d_in).swapaxes(1, 2).reshape(d_out, d_in)


def gguf_config(reader, dtype: str = "float32") -> LMConfig:
  arch = _field(reader, "general.architecture")
  if arch not in ("llama", "qwen2"):
    raise ValueError(f"unsupported GGUF architecture {arch!r} (llama and qwen2 are supported)")
  g = lambda k, d=None: _field(reader, f"{arch}.{k}", d)
  heads = int(g("attention.head_count"))
  dim = int(g("embedding_length"))
  tokens = _field(reader, "tokenizer.ggml.tokens", [])
  vocab = g("vocab_size") or len(tokens)
  names = {t.name for t in reader.tensors}
  return LMConfig(family=arch, vocab_size=int(vocab), dim=dim, n_layers=int(g("block_count")),
                  n_heads=heads, n_kv_heads=int(g("attention.head_count_kv", heads)),
                  head_dim=int(g("attention.key_length", dim // heads)),
                  ffn_dim=int(g("feed_forward_length")), rope_theta=float(g("rope.freq_base", 10000.0)),
                  norm_eps=float(g("attention.layer_norm_rms_epsilon", 1e-5)),
                  tie_embeddings="output.weight" not in names, dtype=dtype,
                  eos_ids=_stop_ids({t: i for i, t in enumerate(tokens)},
                                    [_field(reader, "tokenizer.ggml.eos_token_id")]))


def _gguf_tensors(reader, cfg: LMConfig):
  from gguf.quants import dequantize
  for t in reader.tensors:
    m = re.fullmatch(r"blk\.(\d+)\.(.+)", t.name)
    if m:
      suffix = _GGUF_LAYER_TO_HF.get(m.group(2))
      name = f"model.layers.{m.group(1)}.{suffix}" if suffix else t.name
    else:
      name = _GGUF_TO_HF.get(t.name, t.name)
    shape = tuple(int(d) for d in reversed(t.shape))  # GGUF lists the fastest axis first
    arr = dequantize(t.data, t.tensor_type).reshape(shape).astype(np.float32)
    if cfg.family == "llama" and name.endswith(("q_proj.weight", "k_proj.weight")):
      arr = unpermute_qk(arr, cfg.n_heads if "q_proj" in name else cfg.n_kv_heads)
    yield name, arr


def load_gguf(path: str | Path, dtype: str = "float32"):
  """Returns (config, params, reader) of a GGUF file (the reader holds the tokenizer metadata)."""
  import gguf
  reader = gguf.GGUFReader(str(path))
  cfg = gguf_config(reader, dtype)
  return cfg, assemble_params(cfg, _gguf_tensors(reader, cfg)), reader


# --- Hugging Face safetensors -----------------------------------------------------------------

def _safetensor_files(directory: Path) -> list[Path]:
  index = directory / "model.safetensors.index.json"
  if index.exists():
    weight_map = json.loads(index.read_text())["weight_map"]
    return [directory / f for f in sorted(set(weight_map.values()))]
  files = sorted(directory.glob("*.safetensors"))
  if not files:
    raise FileNotFoundError(f"no *.safetensors files in {directory}")
  return files


def _hf_tensors(files: list[Path]):
  from safetensors import safe_open
  for f in files:
    with safe_open(str(f), framework="flax") as st:
      for name in st.keys():
        yield name, np.asarray(st.get_tensor(name).astype(jnp.float32))


def load_hf(directory: str | Path, dtype: str = "float32") -> tuple[LMConfig, dict[str, Any]]:
  """Loads an HF directory: config.json + model.safetensors (or a sharded index)."""
  directory = Path(directory)
  cfg_path = directory / "config.json"
  if not cfg_path.exists():
    raise FileNotFoundError(f"{directory} has no config.json (expected a Hugging Face model directory)")
  hf = json.loads(cfg_path.read_text())
  cfg = LMConfig.from_hf(hf, dtype)
  tok_path = directory / "tokenizer.json"
  if tok_path.exists():
    tok = json.loads(tok_path.read_text())
    vocab = tok.get("model", {}).get("vocab", {})
    added = {t["content"]: t["id"] for t in tok.get("added_tokens", [])}
    cfg = dataclasses.replace(cfg, eos_ids=_stop_ids({**vocab, **added}, cfg.eos_ids))
  return cfg, assemble_params(cfg, _hf_tensors(_safetensor_files(directory)))
