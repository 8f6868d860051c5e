"""Flax NNX modules as pure functions of plain parameter dicts (what RandOpt perturbs)."""

from __future__ import annotations

from typing import Any, Callable

import jax
from flax import nnx


def split(model: nnx.Module) -> tuple[Callable[..., Any], dict[str, Any]]:
  """Returns `(apply, params)`: a pure `apply(params, *args)` calling the module, and its params.

  `params` is a plain nested dict of arrays (`nnx.to_pure_dict`); `apply` fills a
  fresh copy of the module's state with it and calls the merged module, so it can
  be jitted, vmapped and given perturbed params.
  """
  graphdef, state = nnx.split(model)
  params = nnx.to_pure_dict(state)

  def apply(params: dict[str, Any], *args, **kwargs):
    fresh = jax.tree.map(lambda v: v, state)
    nnx.replace_by_pure_dict(fresh, params)
    return nnx.merge(graphdef, fresh)(*args, **kwargs)

  return apply, params
