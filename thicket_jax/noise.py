"""Gaussian noise equal bit-for-bit to `jax.random.normal(key, shape, float32)`, computed faster on CPU.

On CPU, JAX lowers the Threefry-2x32 hash as a loop of 5 iterations over the whole
array, so every iteration streams the array's state through memory: ~10-15 ns per
number. Written out as 20 unrolled rounds of elementwise uint32 arithmetic, XLA fuses
the hash, the uniform and the inverse-erf transform into one pass: ~3 ns per number
(`python experiments/bench_noise.py`). The values are the same numbers (tested for
many keys and shapes), so a member's weights do not depend on which path drew them.

Threefry-2x32 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011):
key (k0, k1), counter (c0, c1), 20 rounds in 5 groups of 4 with key injection after each
group. With `jax_threefry_partitionable` (JAX's default), element `i` of an array
hashes the counter (i >> 32, i & 0xffffffff) and its 32 random bits are the XOR of the
two output words.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_PARITY = np.uint32(0x1BD11BDA)


def _rotl(x, d: int):
  return (x << np.uint32(d)) | (x >> np.uint32(32 - d))


def threefry2x32(k0, k1, c0, c1):
  """The Threefry-2x32 hash (20 rounds) of counters `c0, c1` under key `(k0, k1)`; uint32 arrays."""
  ks = (k0, k1, k0 ^ k1 ^ _PARITY)
  x0, x1 = c0 + ks[0], c1 + ks[1]
  for group in range(5):
    for r in _ROTATIONS[group % 2]:
      x0 = x0 + x1
      x1 = _rotl(x1, r) ^ x0
    x0 = x0 + ks[(group + 1) % 3]
    x1 = x1 + ks[(group + 2) % 3] + np.uint32(group + 1)
  return x0, x1


def _fast_path_applies(key: jax.Array) -> bool:
  return "threefry" in str(jax.random.key_impl(key)) and bool(jax.config.jax_threefry_partitionable)


def uniform_bits(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
  """uint32 `shape`: equal to `jax.random.bits(key, shape)` for a threefry key."""
  size = int(np.prod(shape, dtype=np.int64))
  if size >= 2**32:
    raise ValueError(f"arrays of {size} elements are beyond the fast path (2**32)")
  k0, k1 = jax.random.key_data(key)
  index = jax.lax.iota(jnp.uint32, size).reshape(shape)
  hi, lo = threefry2x32(k0, k1, jnp.zeros_like(index), index)
  return hi ^ lo


def normal(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
  """float32 `shape` standard normal noise, equal to `jax.random.normal(key, shape, jnp.float32)`."""
  shape = tuple(int(d) for d in shape)
  if not _fast_path_applies(key) or int(np.prod(shape, dtype=np.int64)) >= 2**32:
    return jax.random.normal(key, shape, jnp.float32)
  bits = uniform_bits(key, shape)
  # 23 random mantissa bits under the exponent of 1.0: a float in [1, 2), then [0, 1).
  one = jnp.float32(1.0)
  floats = jax.lax.bitcast_convert_type((bits >> np.uint32(9)) | np.uint32(0x3F800000), jnp.float32) - one
  low = np.nextafter(np.float32(-1.0), np.float32(0.0))        # open interval (-1, 1) for erfinv
  u = jnp.maximum(low, floats * (one - low) + low)
  return jnp.float32(np.sqrt(2.0)) * jax.lax.erf_inv(u)
