"""Batched greedy decoding with a KV cache, and teacher-forced log-likelihood, under jit.

Prompts are left-padded to a bucket length (8, 16, 24, ..., 128, 192, 256, ...), so a new batch of
similar prompts reuses the compiled program. Positions count real tokens only,
padding slots are never attended to, and decoding stops early once every
sequence has produced an end-of-turn token.

A prefix common to every prompt (a chat template's system turn, few-shot examples)
gets its own segment of identical columns; `greedy` runs those columns for one row
and copies its keys and values to the others (`shared_width`).
"""

from __future__ import annotations

from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from thicket_jax.models.lm_config import LMConfig
from thicket_jax.models.transformer import KVCache, tied_head

PAD = -1  # output slot after a sequence ended
STEP = 8  # bucket granularity of prompt segments


def bucket(length: int, step: int = STEP, coarse_from: int = 128, coarse_step: int = 64) -> int:
  """Padded length: the next multiple of `step` up to `coarse_from` (8, 16, ..., 128),
  then the next multiple of `coarse_step` (192, 256, ...)."""
  b = -(-max(length, 1) // step) * step
  return b if b <= coarse_from else -(-length // coarse_step) * coarse_step


def common_prefix(token_lists: Sequence[Sequence[int]]) -> int:
  """Length of the prefix shared by every list, leaving each at least one token of its own."""
  first, n = token_lists[0], min(len(t) for t in token_lists) - 1
  for t in token_lists[1:]:
    n = next((i for i in range(n) if t[i] != first[i]), n)
  return max(n, 0)


def left_pad(token_lists: Sequence[Sequence[int]], pad_id: int = 0, length: int | None = None,
             share_prefix: bool = True):
  """Left-pads prompts to a bucket length.

  With `share_prefix` (and no fixed `length`), a common prefix of at least `STEP` tokens is
  left-padded into its own segment, so each row reads [pad | prefix | pad | own tokens];
  the model sees the same sequences (padding is masked, positions count real tokens).

  Returns:
    tokens_bp int32 [B, P], valid_bp bool [B, P] (False on padding).
  """
  if not token_lists or any(len(t) == 0 for t in token_lists):
    raise ValueError("every prompt needs at least one token")
  shared = common_prefix(token_lists) if share_prefix and length is None and len(token_lists) > 1 else 0
  if shared >= STEP:
    n = len(token_lists)
    head = left_pad([token_lists[0][:shared]], pad_id, share_prefix=False)
    tail = left_pad([t[shared:] for t in token_lists], pad_id, share_prefix=False)
    return tuple(np.concatenate([np.repeat(h, n, 0), t], 1) for h, t in zip(head, tail))
  p = length or bucket(max(len(t) for t in token_lists))
  tokens = np.full((len(token_lists), p), pad_id, np.int32)
  valid = np.zeros((len(token_lists), p), bool)
  for i, t in enumerate(token_lists):
    if len(t) > p:
      raise ValueError(f"prompt {i} has {len(t)} tokens, more than the length {p}")
    tokens[i, p - len(t):] = t
    valid[i, p - len(t):] = True
  return tokens, valid


def shared_width(tokens_bp, valid_bp) -> int:
  """Number of leading columns (a multiple of `STEP`, < P) identical in every row; 0 for one row."""
  tokens_bp, valid_bp = np.asarray(tokens_bp), np.asarray(valid_bp)
  b, p = tokens_bp.shape
  if b < 2:
    return 0
  same = np.all(tokens_bp == tokens_bp[:1], 0) & np.all(valid_bp == valid_bp[:1], 0)
  n = p if same.all() else int(np.argmin(same))
  return min(n, p - 1) // STEP * STEP


def greedy_token(logits_bv: jax.Array) -> jax.Array:
  """int32 [B]: index of the first maximum of each row, like `jnp.argmax`, as a max then a
  min-index reduction: 4.5x faster on CPU than argmax's paired reduction for [32, 49152]
  (`experiments/bench_lm.py`). A row of NaNs gives V - 1."""
  v = logits_bv.shape[-1]
  top = jnp.max(logits_bv, axis=-1, keepdims=True)
  ids = jax.lax.broadcasted_iota(jnp.int32, logits_bv.shape, logits_bv.ndim - 1)
  return jnp.min(jnp.where(logits_bv == top, ids, v - 1), axis=-1)


def _positions(valid_bt):
  return jnp.maximum(jnp.cumsum(valid_bt.astype(jnp.int32), axis=1) - 1, 0)


def greedy(apply: Callable, cfg: LMConfig, params, tokens_bp, valid_bp, max_new_tokens: int, shared: int = 0):
  """Greedy continuation of left-padded prompts.

  Args:
    apply: `apply(params, tokens_bt, positions_bt, cache, write_at, valid_bt) -> (logits, cache)`.
    tokens_bp, valid_bp: [B, P] from `left_pad`.
    max_new_tokens: static number of decode steps at most.
    shared: static; the first `shared` columns are the same in every row (`shared_width`):
      they are run for row 0 only and its keys and values copied to every row.
  Returns:
    int32 [B, max_new_tokens]: generated ids, the end-of-turn token included, PAD after it.
  """
  b, p = tokens_bp.shape
  if not 0 <= shared < p:
    raise ValueError(f"shared must be in [0, {p}) for prompts of length {p}, got {shared}")
  dtype = jnp.dtype(cfg.dtype)
  cache = KVCache.zeros(cfg, b, p + max_new_tokens, dtype)
  head = tied_head(cfg, params)
  positions = _positions(valid_bp)
  if shared:
    _, one = apply(params, tokens_bp[:1, :shared], positions[:1, :shared], KVCache.zeros(cfg, 1, shared, dtype),
                   0, valid_bp[:1, :shared], last_only=True, head_dv=head)
    put = lambda full, part, axis: jax.lax.dynamic_update_slice_in_dim(  # noqa: E731
        full, jnp.broadcast_to(part, (b,) + part.shape[1:]), 0, axis)
    cache = KVCache(tuple(put(f, o, 3) for f, o in zip(cache.k, one.k)),
                    tuple(put(f, o, 2) for f, o in zip(cache.v, one.v)), put(cache.valid, one.valid, 1))
  logits, cache = apply(params, tokens_bp[:, shared:], positions[:, shared:], cache, shared, valid_bp[:, shared:],
                        last_only=True, head_dv=head)
  first = greedy_token(logits[:, -1])
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
    token = greedy_token(logits[:, 0])
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
