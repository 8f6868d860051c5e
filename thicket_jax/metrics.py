"""The paper's population statistics: solution density and spectral discordance."""

from __future__ import annotations

import numpy as np


def solution_density(scores_n, base_score, margins=(0.0,), *, higher_is_better: bool = True):
  """`delta(m) = P[s(theta + eps) >= s(theta) + m]` for each margin m.

  Args:
    scores_n: float [N] member scores (NaN counts as a failure).
    base_score: scalar, the unperturbed model's score.
    margins: sequence of M margins, in the score's units.
    higher_is_better: if False (losses), a member beats the base by m when
      `s(member) <= s(base) - m`.
  Returns:
    float NumPy [M], share of members in [0, 1].
  """
  s = np.asarray(scores_n, np.float64)
  if s.ndim != 1 or s.size == 0:
    raise ValueError(f"scores must have shape [N] with N > 0, got {s.shape}")
  m = np.asarray(margins, np.float64)[:, None]
  base = float(base_score)
  with np.errstate(invalid="ignore"):
    hits = s[None, :] >= base + m if higher_is_better else s[None, :] <= base - m
  return hits.mean(axis=1)


def percentile_ranks(scores_nm) -> np.ndarray:
  """Per-task percentile rank of every member in [0, 1] (average rank for ties).

  Args:
    scores_nm: float [N, M], member x task scores (higher is better).
  """
  s = np.asarray(scores_nm, np.float64)
  n = s.shape[0]
  order = np.argsort(s, axis=0, kind="stable")
  ranks = np.empty_like(s)
  np.put_along_axis(ranks, order, np.arange(n, dtype=np.float64)[:, None].repeat(s.shape[1], 1), 0)
  for j in range(s.shape[1]):  # average ranks of ties
    _, inverse = np.unique(s[:, j], return_inverse=True)
    ranks[:, j] = (np.bincount(inverse, ranks[:, j]) / np.bincount(inverse))[inverse]
  return ranks / max(n - 1, 1)


def spectral_discordance(scores_nm) -> float:
  """`D = 1 - mean_{j != k} corr(rank_j, rank_k)` over M >= 2 tasks.

  D near 0: the same members are good at every task (one generalist direction);
  D near 1: the experts of different tasks are different members.

  Args:
    scores_nm: float [N, M], member x task scores (higher is better).
  """
  s = np.asarray(scores_nm, np.float64)
  if s.ndim != 2 or s.shape[1] < 2 or s.shape[0] < 3:
    raise ValueError(f"need scores of shape [N >= 3, M >= 2], got {s.shape}")
  r = percentile_ranks(s)
  c = np.corrcoef(r, rowvar=False)
  m = s.shape[1]
  off = c[~np.eye(m, dtype=bool)]
  return float(1.0 - np.nanmean(off))
