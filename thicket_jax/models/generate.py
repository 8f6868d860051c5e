"""Batched greedy decoding with a KV cache, and teacher-forced log-likelihood, under jit.

Prompts are left-padded to a bucket length (16, 32, 48, ..., 128, 192, 256, ...), so a new batch of
similar prompts reuses the compiled program. Positions count real tokens only,
padding slots are never attended to, and decoding stops early once every
sequence has produced an end-of-turn token.
"""

from __future__ import annotations

from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from thicket_jax.models.lm_config import LMConfig
from thicket_jax.models.transformer import KVCache, tied_head

PAD = -1  # output slot after a sequence ended


def bucket(length: int, step: int = 16, coarse_from: int = 128, coarse_step: int = 64) -> int:
  """Padded prompt length: the next multiple of `step` up to `coarse_from` (16, 32, 48, ..., 128),
  then the next multiple of `coarse_step` (192, 256, ...)."""
  b = -(-max(length, 1) // step) * step
  return b if b <= coarse_from else -(-length // coarse_step) * coarse_step


def left_pad(token_lists: Sequence[Sequence[int]], pad_id: int = 0, length: int | None = None):
  """Left-pads prompts to a bucket length.

  Returns:
    tokens_bp int32 [B, P], valid_bp bool [B, P] (False on padding).
  """
  if not token_lists or any(len(t) == 0 for t in token_lists):
    raise ValueError("every prompt needs at least one token")
  p = length or bucket(max(len(t) for t in token_lists))
  tokens = np.full((len(token_lists), p), pad_id, np.int32)
  valid = np.zeros((len(token_lists), p), bool)
  for i, t in enumerate(token_lists):
    if len(t) > p:
      raise ValueError(f"prompt {i} has {len(t)} tokens, more than the length {p}")
    tokens[i, p - len(t):] = t
    valid[i, p - len(t):] = True
  return tokens, valid


def _positions(valid_bt):
  return jnp.maximum(jnp.cumsum(valid_bt.astype(jnp.int32), axis=1) - 1, 0)


def greedy(apply: Callable, cfg: LMConfig, params, tokens_bp, valid_bp, max_new_tokens: int):
  """Greedy continuation of left-padded prompts.

  Args:
    apply: `apply(params, tokens_bt, positions_bt, cache, write_at, valid_bt) -> (logits, cache)`.
    tokens_bp, valid_bp: [B, P] from `left_pad`.
    max_new_tokens: static number of decode steps at most.
  Returns:
    int32 [B, max_new_tokens]: generated ids, the end-of-turn token included, PAD after it.
  """
  b, p = tokens_bp.shape
  dtype = jnp.dtype(cfg.dtype)
  cache = KVCache.zeros(cfg, b, p + max_new_tokens, dtype)
  head = tied_head(cfg, params)
  logits, cache = apply(params, tokens_bp, _positions(valid_bp), cache, 0, valid_bp, last_only=True, head_dv=head)
  first = jnp.argmax(logits[:, -1], axis=-1).astype(jnp.int32)
  eos = jnp.asarray(cfg.eos_ids if cfg.eos_ids else (-2,), jnp.int32)
  out = jnp.full((b, max_new_tokens), PAD, jnp.int32)
  pos = jnp.sum(valid_bp, axis=1).astype(jnp.int32)

  def cond(state):
    t, _, _, _, done, _ = state
    return (t < max_new_tokens) & ~jnp.all(done)

  def body(state):
    t, cache, token, pos, done, out = state
    out = out.at[:, t].set(jnp.where(done, PAD, token))
    done = done | jnp.isin(token, eos)
    logits, cache = apply(params, token[:, None], pos[:, None], cache, p + t, jnp.ones((b, 1), bool),
                          head_dv=head)
    token = jnp.argmax(logits[:, 0], axis=-1).astype(jnp.int32)
    return t + 1, cache, token, pos + 1, done, out

  state = (jnp.int32(0), cache, first, pos, jnp.zeros((b,), bool), out)
  return jax.lax.while_loop(cond, body, state)[-1]


def logits_uncached(apply: Callable, cfg: LMConfig, params, tokens_bt, valid_bt=None):
  """Full-sequence logits [B, T, V] (one forward pass, causal, padding masked)."""
  b, t = tokens_bt.shape
  valid_bt = jnp.ones((b, t), bool) if valid_bt is None else valid_bt
  cache = KVCache.zeros(cfg, b, t, jnp.dtype(cfg.dtype))
  logits, _ = apply(params, tokens_bt, _positions(valid_bt), cache, 0, valid_bt)
  return logits


def sequence_logprob(apply: Callable, cfg: LMConfig, params, tokens_bt, valid_bt, target_bt):
  """Teacher-forced sum of log p(token_t | tokens_<t) over positions where `target_bt` is True.

  Returns:
    float32 [B].
  """
  logp = jax.nn.log_softmax(logits_uncached(apply, cfg, params, tokens_bt, valid_bt)[:, :-1], axis=-1)
  picked = jnp.take_along_axis(logp, tokens_bt[:, 1:, None], axis=-1)[..., 0]
  return jnp.sum(jnp.where(target_bt[:, 1:], picked, 0.0), axis=1)
