"""A Flax NNX MLP for next-value prediction, used as a pure function of a params dict.

RandOpt works on plain pytrees: `split` turns the module into a graph definition
and a pure dict of arrays; `apply(params, x)` merges them back inside jit.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
from flax import nnx

from thicket_jax.models.pure import split  # noqa: F401  (re-exported)

Params = dict


class MLP(nnx.Module):
  """`depth` linear layers (`depth - 1` hidden of `width`, GELU) mapping [..., d_in] -> [...]."""

  def __init__(self, d_in: int, *, width: int = 128, depth: int = 5, rngs: nnx.Rngs):
    sizes = [d_in] + [width] * (depth - 1) + [1]
    self.layers = nnx.List([nnx.Linear(a, b, rngs=rngs) for a, b in zip(sizes[:-1], sizes[1:])])

  def __call__(self, x: jax.Array) -> jax.Array:
    for i, layer in enumerate(self.layers):
      x = layer(x)
      if i < len(self.layers) - 1:
        x = jax.nn.gelu(x)
    return x[..., 0]


def rollout(apply: Callable, params: Params, context_bc: jax.Array, steps: int) -> jax.Array:
  """Autoregressive rollout: each prediction is appended to a sliding window.

  Args:
    apply: `apply(params, window_bc) -> next_b`.
    context_bc: [B, C] the first C values of each curve.
    steps: number of values to predict.
  Returns:
    [B, steps] predictions.
  """
  def step(window, _):
    y = apply(params, window)
    return jnp.concatenate([window[:, 1:], y[:, None]], axis=1), y

  _, ys = jax.lax.scan(step, context_bc, None, length=steps)
  return ys.T
