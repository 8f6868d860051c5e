"""Per-member noise scales drawn from a small grid."""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np


def check_sigmas(sigmas, name: str = "sigmas") -> np.ndarray:
  """Returns `sigmas` as float32 NumPy, or raises if empty, negative or not finite."""
  arr = np.asarray(jax.device_get(sigmas), dtype=np.float64)
  if arr.size == 0:
    raise ValueError(f"{name} is empty")
  if not np.all(np.isfinite(arr)):
    raise ValueError(f"{name} must be finite, got {arr[~np.isfinite(arr)][:3].tolist()}")
  if np.any(arr < 0):
    raise ValueError(f"{name} must be >= 0, got {arr[arr < 0][:3].tolist()}")
  return arr.astype(np.float32)


def sigma_grid(sigmas: Sequence[float], n: int, how: str = "blocks",
               key: jax.Array | None = None) -> jax.Array:
  """Assigns one of `sigmas` to each of `n` members.

  `how="blocks"`: members 0..n-1 are split into len(sigmas) contiguous blocks of
  (nearly) equal size, the first block gets sigmas[0]. `how="random"`: the same
  multiset of sigmas in a random order given by `key` (balanced, not i.i.d.).

  Returns:
    float32 array `sigmas_n` of shape [n].
  """
  grid = check_sigmas(sigmas)
  if grid.ndim != 1:
    raise ValueError(f"sigmas must be a 1-D sequence, got shape {grid.shape}")
  if not isinstance(n, (int, np.integer)) or n < 1:
    raise ValueError(f"n must be a positive integer, got {n!r}")
  block = np.floor(np.arange(n) * len(grid) / n).astype(np.int32)
  sigmas_n = jnp.asarray(grid[block])
  if how == "blocks":
    return sigmas_n
  if how == "random":
    if key is None:
      raise ValueError("sigma_grid(how='random') needs a key")
    return jax.random.permutation(key, sigmas_n)
  raise ValueError(f"how must be 'blocks' or 'random', got {how!r}")
