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
  """Keys and values of every layer in the layouts the attention matmuls read directly.

  k: L arrays [B, n_kv_heads, head_dim, S] (keys transposed), v: L arrays [B, n_kv_heads, S, head_dim],
  valid: [B, S] bool. One buffer per layer, so a layer reads its cache without slicing a copy.
  """
  k: jax.Array
  v: jax.Array
  valid: jax.Array

  @classmethod
  def zeros(cls, cfg: LMConfig, batch: int, size: int, dtype=jnp.float32) -> "KVCache":
    lead = (batch, cfg.n_kv_heads)
    k = tuple(jnp.zeros(lead + (cfg.head_dim, size), dtype) for _ in range(cfg.n_layers))
    v = tuple(jnp.zeros(lead + (size, cfg.head_dim), dtype) for _ in range(cfg.n_layers))
    return cls(k, v, jnp.zeros((batch, size), bool))


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

  def __call__(self, x_btd, positions_bt, k_cache, v_cache, valid_bs, write_at):
    """Attends from T new tokens to the layer's cache after writing their keys and values at `write_at`.

    Returns the output and the updated `k_cache` [B, n_kv, hd, S] and `v_cache` [B, n_kv, S, hd].
    """
    cfg = self.cfg
    b, t, _ = x_btd.shape
    q = rope(self.q(x_btd).reshape(b, t, cfg.n_heads, cfg.head_dim), positions_bt, cfg.rope_theta)
    k = rope(self.k(x_btd).reshape(b, t, cfg.n_kv_heads, cfg.head_dim), positions_bt, cfg.rope_theta)
    v = self.v(x_btd).reshape(b, t, cfg.n_kv_heads, cfg.head_dim)
    k_cache = jax.lax.dynamic_update_slice(k_cache, k.transpose(0, 2, 3, 1).astype(k_cache.dtype),
                                           (0, 0, 0, write_at))
    v_cache = jax.lax.dynamic_update_slice(v_cache, v.transpose(0, 2, 1, 3).astype(v_cache.dtype),
                                           (0, 0, write_at, 0))
    s = k_cache.shape[-1]
    # Query at slot write_at + i sees valid slots j <= write_at + i.
    causal = jnp.arange(s)[None, :] <= (write_at + jnp.arange(t))[:, None]       # [T, S]
    mask = causal[None, None, None] & valid_bs[:, None, None, None, :]           # [B, 1, 1, T, S]
    groups = cfg.n_heads // cfg.n_kv_heads
    qg = q.reshape(b, t, cfg.n_kv_heads, groups, cfg.head_dim).transpose(0, 2, 3, 1, 4)  # [B, kv, g, T, hd]
    qg, k32, v32 = qg.astype(jnp.float32), k_cache.astype(jnp.float32), v_cache.astype(jnp.float32)
    if t == 1:  # decoding: the g query heads of a group as one [g, hd] x [hd, S] matmul
      logits = jnp.einsum("bkgh,bkhs->bkgs", qg[:, :, :, 0], k32)[:, :, :, None]
    else:
      logits = jnp.einsum("bkgth,bkhs->bkgts", qg, k32)
    logits = jnp.where(mask, logits / jnp.sqrt(cfg.head_dim), -1e30)
    probs = jax.nn.softmax(logits, axis=-1)
    if t == 1:
      out = jnp.einsum("bkgs,bksh->bkgh", probs[:, :, :, 0], v32)[:, None]
    else:
      out = jnp.einsum("bkgts,bksh->btkgh", probs, v32)
    out = out.reshape(b, t, cfg.n_heads * cfg.head_dim).astype(x_btd.dtype)
    return self.o(out), k_cache, v_cache


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

  def __call__(self, x, positions, k_cache, v_cache, valid, write_at):
    h, k_cache, v_cache = self.attn(self.attn_norm(x), positions, k_cache, v_cache, valid, write_at)
    x = x + h
    return x + self.mlp(self.mlp_norm(x)), k_cache, v_cache


class Transformer(nnx.Module):
  """`model(tokens_bt, positions_bt, cache, write_at, new_valid_bt) -> (logits_btv, cache)`.

  With `last_only=True` the logits are computed for the last position only ([B, 1, V]).
  `head_dv` [D, V], when given, is the tied embedding already transposed (`tied_head`):
  decoding loops pass it so that the transpose is done once, not at every step.
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

  def __call__(self, tokens_bt, positions_bt, cache: KVCache, write_at, new_valid_bt, last_only: bool = False,
               head_dv: jax.Array | None = None):
    valid = jax.lax.dynamic_update_slice_in_dim(cache.valid, new_valid_bt, write_at, axis=1)
    x = self.embed(tokens_bt)
    k_all, v_all = list(cache.k), list(cache.v)
    for i, layer in enumerate(self.layers):
      x, k_all[i], v_all[i] = layer(x, positions_bt, k_all[i], v_all[i], valid, write_at)
    if last_only:  # prefill before decoding needs the last position only
      x = x[:, -1:]
    x = self.final_norm(x)
    if head_dv is not None:
      logits = x.astype(jnp.float32) @ head_dv.astype(jnp.float32)
    elif self.cfg.tie_embeddings:
      logits = x.astype(jnp.float32) @ self.embed.embedding[...].astype(jnp.float32).T
    else:
      logits = self.lm_head(x).astype(jnp.float32)
    return logits, KVCache(tuple(k_all), tuple(v_all), valid)


def tied_head(cfg: LMConfig, params) -> jax.Array | None:
  """The tied output projection [D, V] materialised once (None for an untied head).

  The optimisation barrier keeps XLA from folding the transpose back into the matmul,
  where it would be redone inside a decoding loop (measured: a 113 MB copy per step
  for SmolLM2 when the embedding is a perturbed, computed array).
  """
  if not cfg.tie_embeddings:
    return None
  return jax.lax.optimization_barrier(jnp.transpose(params["embed"]["embedding"]))


def abstract_params(cfg: LMConfig) -> dict[str, Any]:
  """Shapes and dtypes of the params dict, without allocating weights."""
  model = nnx.eval_shape(lambda: Transformer(cfg, nnx.Rngs(0)))
  return nnx.to_pure_dict(nnx.state(model))
