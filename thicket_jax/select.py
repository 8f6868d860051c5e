"""On-device selection (top-K) and ensembling (majority vote, mean) of members."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np


def _check_k(k, n: int) -> None:
  if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
    raise ValueError(f"k must be a positive integer, got {k!r}")
  if k > n:
    raise ValueError(f"k={k} is larger than the population (N={n})")


@jax.jit
def ranking(scores_n: jax.Array) -> jax.Array:
  """All member ids, best first: higher score first, ties to the lower id, NaN last.

  Args:
    scores_n: float [N].
  Returns:
    int32 [N].
  """
  ids = jnp.arange(scores_n.shape[0], dtype=jnp.int32)
  is_nan = jnp.isnan(scores_n).astype(jnp.int32)
  neg = jnp.where(is_nan == 1, 0.0, -(scores_n + 0.0))  # + 0.0 folds -0.0 into 0.0
  _, _, order = jax.lax.sort((is_nan, neg, ids), num_keys=3)
  return order


def top_k(scores_n, k: int) -> jax.Array:
  """Ids of the `k` best members, best first (ties to the lower id, NaN scores last).

  Args:
    scores_n: float [N], one score per member (average per-example rewards first).
    k: 1 <= k <= N.
  Returns:
    int32 [k], on device.
  """
  scores_n = jnp.asarray(scores_n)
  if scores_n.ndim != 1:
    raise ValueError(f"scores must have shape [N], got {scores_n.shape}; average over examples first")
  _check_k(k, scores_n.shape[0])
  return ranking(scores_n)[:k]


def _vote_column(answers_k: jax.Array, abstain: int) -> jax.Array:
  k = answers_k.shape[0]
  votes = answers_k != abstain
  same = (answers_k[:, None] == answers_k[None, :]) & votes[None, :]   # [k, k]
  counts = jnp.sum(same, axis=1)                                         # votes for row's answer
  first = jnp.argmax(same, axis=1)                                       # best rank holding it
  merit = jnp.where(votes, counts * (k + 1) + (k - first), -1)
  best = jnp.argmax(merit)
  return jnp.where(votes[best], answers_k[best], abstain)



@functools.partial(jax.jit, static_argnames=("abstain",))
def _vote(answers_kn, abstain):
  return jax.lax.map(lambda col: _vote_column(col, abstain), answers_kn.T, batch_size=256)


def majority_vote(answers_kn, abstain: int = -1) -> jax.Array:
  """Majority vote of K ranked members on n examples, on device.

  Rows are members in rank order (row 0 = best). A member whose answer equals
  `abstain` does not vote; a tie between answers goes to the one given by the
  best-ranked member among them; a column where everyone abstains gives `abstain`.

  Args:
    answers_kn: integer [K, n] answer keys.
    abstain: the key that means "no answer".
  Returns:
    [n] winning keys, same dtype.
  """
  answers_kn = jnp.asarray(answers_kn)
  if answers_kn.ndim != 2:
    raise ValueError(f"answers must have shape [K, n], got {answers_kn.shape}")
  if not jnp.issubdtype(answers_kn.dtype, jnp.integer):
    raise TypeError(f"answers must be integer keys, got {answers_kn.dtype}")
  if answers_kn.shape[0] == 0:
    raise ValueError("answers has no members (K = 0)")
  if answers_kn.shape[1] == 0:
    return jnp.zeros((0,), answers_kn.dtype)
  return _vote(answers_kn, int(abstain))


def mean_ensemble(predictions_k, weights_k=None) -> jax.Array:
  """Average of K members' predictions (regression outputs, probabilities, logits).

  Args:
    predictions_k: pytree of arrays with a leading member axis [K, ...].
    weights_k: optional non-negative weights [K].
  Returns:
    the pytree without the member axis.
  """
  def mean(x):
    x = jnp.asarray(x)
    if weights_k is None:
      return jnp.mean(x, axis=0)
    w = jnp.asarray(weights_k, x.dtype)
    if w.shape != x.shape[:1]:
      raise ValueError(f"weights has shape {w.shape}, predictions have {x.shape[0]} members")
    return jnp.tensordot(w / jnp.sum(w), x, axes=1)
  return jax.tree.map(mean, predictions_k)
