"""Gaussian perturbation of a parameter pytree: `theta + sigma * eps`, `eps ~ N(0, I)`."""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

from thicket_jax import keys, noise

PyTree = Any
LeafFilter = Callable[[str], bool]


def leaf_paths(params: PyTree) -> list[str]:
  """Slash-separated path of every leaf, in flattening order (e.g. `'layers/0/kernel'`)."""
  return [jax.tree_util.keystr(p, simple=True, separator="/")
          for p, _ in jax.tree_util.tree_leaves_with_path(params)]


def _is_perturbable(leaf) -> bool:
  return jnp.issubdtype(jnp.result_type(leaf), jnp.floating)


def perturb(params: PyTree, key: jax.Array, sigma, *, where: LeafFilter | None = None) -> PyTree:
  """Returns `params + sigma * eps` with fresh float32 Gaussian noise, leaf by leaf.

  Leaf `i` (in `jax.tree_util` flattening order) draws its noise from
  `fold_in(key, i)`, so leaves are independent even when they share a shape, and
  a leaf's noise does not change when other leaves are excluded. The sum is taken in
  float32 from the untouched base and cast once to the leaf's dtype; `params` is
  never modified. Integer / boolean leaves are left as they are.

  Args:
    params: pytree of arrays (any dtypes).
    key: the member's key, e.g. `member_key(run_key, member_id)`.
    sigma: scalar noise scale (may be traced).
    where: optional predicate on a leaf's path (`'layers/0/kernel'`); leaves for
      which it returns False are not perturbed.
  Returns:
    A pytree with the structure, shapes and dtypes of `params`.
  """
  with_path, treedef = jax.tree_util.tree_flatten_with_path(params)
  sigma = jnp.asarray(sigma, jnp.float32)
  out = []
  for index, (path, leaf) in enumerate(with_path):
    leaf = jnp.asarray(leaf)
    selected = where is None or where(jax.tree_util.keystr(path, simple=True, separator="/"))
    if not selected or not _is_perturbable(leaf):
      out.append(leaf)
      continue
    eps = noise.normal(keys.leaf_key(key, index), leaf.shape)  # == jax.random.normal(..., float32)
    out.append((leaf.astype(jnp.float32) + sigma * eps).astype(leaf.dtype))
  return jax.tree_util.tree_unflatten(treedef, out)


def n_perturbed(params: PyTree, where: LeafFilter | None = None) -> int:
  """Number of scalar weights that `perturb` changes."""
  total = 0
  for path, leaf in jax.tree_util.tree_leaves_with_path(params):
    if _is_perturbable(leaf) and (where is None or where(
        jax.tree_util.keystr(path, simple=True, separator="/"))):
      total += int(jnp.size(leaf))
  return total
