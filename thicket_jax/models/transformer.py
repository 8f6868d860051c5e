"""A decoder-only transformer in Flax NNX: RMSNorm, RoPE, grouped-query attention, SwiGLU.

Covers the Llama family (SmolLM2, Llama 3) and Qwen2 (q/k/v biases, untied head).
The KV cache is an explicit pytree passed in and out, so the model is a pure
function of (params, tokens, cache) once split with `split`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

from thicket_jax.models.lm_config import LMConfig


class KVCache(NamedTuple):
  """Keys and values of every layer: k, v [L, B, S, n_kv_heads, head_dim]; valid [B, S] bool."""
  k: jax.Array
  v: jax.Array
  valid: jax.Array

  @classmethod
  def zeros(cls, cfg: LMConfig, batch: int, size: int, dtype=jnp.float32) -> "KVCache":
    shape = (cfg.n_layers, batch, size, cfg.n_kv_heads, cfg.head_dim)
    return cls(jnp.zeros(shape, dtype), jnp.zeros(shape, dtype), jnp.zeros((batch, size), bool))


def rope(x_bthd: jax.Array, positions_bt: jax.Array, theta: float) -> jax.Array:
  """Rotary embedding, rotate-half convention (Hugging Face)."""
  hd = x_bthd.shape[-1]
  freqs = theta ** (-jnp.arange(0, hd, 2, dtype=jnp.float32) / hd)           # [hd/2]
  angles = positions_bt[..., None].astype(jnp.float32) * freqs               # [B, T, hd/2]
  cos = jnp.cos(angles)[:, :, None, :]
  sin = jnp.sin(angles)[:, :, None, :]
  x1, x2 = x_bthd[..., : hd // 2], x_bthd[..., hd // 2:]
  return jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1).astype(x_bthd.dtype)


class RMSNorm(nnx.Module):
  def __init__(self, dim: int, eps: float, dtype):
    self.scale = nnx.Param(jnp.ones((dim,), dtype))
    self.eps = eps

  def __call__(self, x):
    x32 = x.astype(jnp.float32)
    y = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, axis=-1, keepdims=True) + self.eps)
    return (y * self.scale[...].astype(jnp.float32)).astype(x.dtype)


class Attention(nnx.Module):
  def __init__(self, cfg: LMConfig, rngs: nnx.Rngs, dtype):
    lin = lambda i, o, bias: nnx.Linear(i, o, use_bias=bias, param_dtype=dtype, dtype=dtype, rngs=rngs)
    self.q = lin(cfg.dim, cfg.n_heads * cfg.head_dim, cfg.qkv_bias)
    self.k = lin(cfg.dim, cfg.n_kv_heads * cfg.head_dim, cfg.qkv_bias)
    self.v = lin(cfg.dim, cfg.n_kv_heads * cfg.head_dim, cfg.qkv_bias)
    self.o = lin(cfg.n_heads * cfg.head_dim, cfg.dim, False)
    self.cfg = cfg

  def __call__(self, x_btd, positions_bt, k_all, v_all, layer: int, valid_bs, write_at):
    """Attends from T new tokens to layer `layer` of the cache after writing their keys at `write_at`.

    `k_all`, `v_all` [L, B, S, n_kv, hd] are updated in place (no copy of the other layers).
    """
    cfg = self.cfg
    b, t, _ = x_btd.shape
    q = rope(self.q(x_btd).reshape(b, t, cfg.n_heads, cfg.head_dim), positions_bt, cfg.rope_theta)
    k = rope(self.k(x_btd).reshape(b, t, cfg.n_kv_heads, cfg.head_dim), positions_bt, cfg.rope_theta)
    v = self.v(x_btd).reshape(b, t, cfg.n_kv_heads, cfg.head_dim)
    at = (layer, 0, write_at, 0, 0)
    k_all = jax.lax.dynamic_update_slice(k_all, k[None].astype(k_all.dtype), at)
    v_all = jax.lax.dynamic_update_slice(v_all, v[None].astype(v_all.dtype), at)
    k_cache, v_cache = k_all[layer], v_all[layer]
    s = k_cache.shape[1]
    # Query at slot write_at + i sees valid slots j <= write_at + i.
    causal = jnp.arange(s)[None, :] <= (write_at + jnp.arange(t))[:, None]       # [T, S]
    mask = causal[None, None, :, :] & valid_bs[:, None, None, :]                  # [B, 1, T, S]
    groups = cfg.n_heads // cfg.n_kv_heads
    qg = q.reshape(b, t, cfg.n_kv_heads, groups, cfg.head_dim).astype(jnp.float32)
    logits = jnp.einsum("btkgh,bskh->bkgts", qg, k_cache.astype(jnp.float32)) / jnp.sqrt(cfg.head_dim)
    logits = jnp.where(mask[:, :, None], logits, -1e30)
    probs = jax.nn.softmax(logits, axis=-1)
    out = jnp.einsum("bkgts,bskh->btkgh", probs, v_cache.astype(jnp.float32))
    out = out.reshape(b, t, cfg.n_heads * cfg.head_dim).astype(x_btd.dtype)
    return self.o(out), k_all, v_all


class MLP(nnx.Module):
  def __init__(self, cfg: LMConfig, rngs: nnx.Rngs, dtype):
    lin = lambda i, o: nnx.Linear(i, o, use_bias=False, param_dtype=dtype, dtype=dtype, rngs=rngs)
    self.gate, self.up, self.down = lin(cfg.dim, cfg.ffn_dim), lin(cfg.dim, cfg.ffn_dim), lin(cfg.ffn_dim, cfg.dim)

  def __call__(self, x):
    return self.down(jax.nn.silu(self.gate(x)) * self.up(x))


class Block(nnx.Module):
  def __init__(self, cfg: LMConfig, rngs: nnx.Rngs, dtype):
    self.attn_norm = RMSNorm(cfg.dim, cfg.norm_eps, dtype)
    self.attn = Attention(cfg, rngs, dtype)
    self.mlp_norm = RMSNorm(cfg.dim, cfg.norm_eps, dtype)
    self.mlp = MLP(cfg, rngs, dtype)

  def __call__(self, x, positions, k_all, v_all, layer, valid, write_at):
    h, k_all, v_all = self.attn(self.attn_norm(x), positions, k_all, v_all, layer, valid, write_at)
    x = x + h
    return x + self.mlp(self.mlp_norm(x)), k_all, v_all


class Transformer(nnx.Module):
  """`model(tokens_bt, positions_bt, cache, write_at, new_valid_bt) -> (logits_btv, cache)`.

  With `last_only=True` the logits are computed for the last position only ([B, 1, V]).
  """

  def __init__(self, cfg: LMConfig, rngs: nnx.Rngs):
    dtype = jnp.dtype(cfg.dtype)
    self.cfg = cfg
    self.embed = nnx.Embed(cfg.vocab_size, cfg.dim, param_dtype=dtype, dtype=dtype, rngs=rngs)
    self.layers = nnx.List([Block(cfg, rngs, dtype) for _ in range(cfg.n_layers)])
    self.final_norm = RMSNorm(cfg.dim, cfg.norm_eps, dtype)
    if not cfg.tie_embeddings:
      self.lm_head = nnx.Linear(cfg.dim, cfg.vocab_size, use_bias=False, param_dtype=dtype,
                                dtype=dtype, rngs=rngs)

  def __call__(self, tokens_bt, positions_bt, cache: KVCache, write_at, new_valid_bt, last_only: bool = False):
    valid = jax.lax.dynamic_update_slice_in_dim(cache.valid, new_valid_bt, write_at, axis=1)
    x = self.embed(tokens_bt)
    k_all, v_all = cache.k, cache.v
    for i, layer in enumerate(self.layers):
      x, k_all, v_all = layer(x, positions_bt, k_all, v_all, i, valid, write_at)
    if last_only:  # prefill before decoding needs the last position only
      x = x[:, -1:]
    x = self.final_norm(x)
    if self.cfg.tie_embeddings:
      logits = x.astype(jnp.float32) @ self.embed.embedding[...].astype(jnp.float32).T
    else:
      logits = self.lm_head(x).astype(jnp.float32)
    return logits, KVCache(k_all, v_all, valid)


def abstract_params(cfg: LMConfig) -> dict[str, Any]:
  """Shapes and dtypes of the params dict, without allocating weights."""
  model = nnx.eval_shape(lambda: Transformer(cfg, nnx.Rngs(0)))
  return nnx.to_pure_dict(nnx.state(model))
