"""Gaussian noise per number: `jax.random.normal` against `thicket_jax.noise.normal` (same values).

    python experiments/bench_noise.py        # ~20 s on 2 CPU cores

Prints ns per float32 number for a small (1M) and a large (28M, SmolLM2's embedding)
array, the ratio measured side by side, and whether the two agree bit for bit.
"""

from __future__ import annotations

import json
import time

import jax
import jax.numpy as jnp
import numpy as np

from thicket_jax import noise


def per_number_ns(fn, key, size, repeats=5):
  jax.block_until_ready(fn(key))
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    jax.block_until_ready(fn(key))
    times.append(time.perf_counter() - t0)
  return min(times) / size * 1e9


def main():
  key = jax.random.key(0)
  for size in (1 << 20, 49152 * 576):
    ref = jax.jit(lambda k, s=size: jax.random.normal(k, (s,), jnp.float32))
    fast = jax.jit(lambda k, s=size: noise.normal(k, (s,)))
    row = {"numbers": size, "jax_random_normal_ns": per_number_ns(ref, key, size),
           "thicket_noise_ns": per_number_ns(fast, key, size),
           "bit_identical": bool(np.array_equal(np.asarray(ref(key)).view(np.uint32),
                                                np.asarray(fast(key)).view(np.uint32)))}
    row["speedup"] = row["jax_random_normal_ns"] / row["thicket_noise_ns"]
    print(json.dumps(row), flush=True)


if __name__ == "__main__":
  main()
