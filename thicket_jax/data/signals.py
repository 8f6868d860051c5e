"""The paper's 1D signal families with random parameters, sampled on a fixed grid.

x runs from -2.5 in steps of 0.1; a curve has `context + future` values
(10 + 60 by default). Amplitudes are O(1).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

FAMILIES = ("line", "sinusoid", "square", "sawtooth", "harmonic", "sigmoid")
X0, DX = -2.5, 0.1


def grid(length: int) -> jax.Array:
  """x values [length]: -2.5, -2.4, ..."""
  return X0 + DX * jnp.arange(length, dtype=jnp.float32)


def _curve(family: str, key: jax.Array, x: jax.Array) -> jax.Array:
  u = jax.random.uniform(key, (5,))
  amp, freq, phase = 0.5 + u[0], 1.0 + 2.0 * u[1], 2 * jnp.pi * u[2]
  arg = freq * x + phase
  if family == "line":
    return (2 * u[0] - 1) * x * 0.5 + (2 * u[1] - 1)
  if family == "sinusoid":
    return amp * jnp.sin(arg)
  if family == "square":
    return amp * jnp.sign(jnp.sin(arg))
  if family == "sawtooth":
    return amp * (2 * jnp.mod(arg / (2 * jnp.pi), 1.0) - 1)
  if family == "harmonic":
    return amp * (jnp.sin(arg) + 0.5 * jnp.sin(2 * arg + 2 * jnp.pi * u[3]))
  if family == "sigmoid":
    return amp * jnp.tanh((1.0 + 3.0 * u[3]) * (x - (4.0 * u[4] - 1.0))) + (u[1] - 0.5)
  raise ValueError(f"unknown signal family {family!r}; choose from {FAMILIES}")


def sample(key: jax.Array, n: int, families=FAMILIES, length: int = 70) -> jax.Array:
  """`n` curves [n, length], each from a family drawn uniformly from `families`."""
  families = tuple(families)
  for f in families:
    if f not in FAMILIES:
      raise ValueError(f"unknown signal family {f!r}; choose from {FAMILIES}")
  x = grid(length)
  k_fam, k_par = jax.random.split(key)
  which = jax.random.randint(k_fam, (n,), 0, len(families))
  curves = jnp.stack([jax.vmap(lambda k, f=f: _curve(f, k, x))(jax.random.split(k_par, n))
                      for f in families])  # [F, n, length]
  return jnp.take_along_axis(curves, which[None, :, None], axis=0)[0]
