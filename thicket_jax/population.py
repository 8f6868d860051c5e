"""Scoring a whole population of perturbed models in one compiled computation.

Member `i` is `perturb(params, member_key(run_key, i), sigmas[i])`. Members are
evaluated `vmap_width` at a time inside a compiled loop (`lax.map`), so memory
holds `vmap_width` perturbed copies of the weights, never N. With a mesh, members
are sharded over its `pop` axis and selection examples over an optional `data`
axis.

Exactness: a member's weights are a pure function of (run key, member id, sigma).
Its score is bit-identical for every population size, chunk size and device
count at a fixed `vmap_width` (over `pop` and `data`; a `model` axis splits the
weights themselves, so matmul sums may round differently: equal to float tolerance).
Across different `vmap_width`s XLA may round reductions differently (measured:
~1 ulp on CPU), which is why the default is 1.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec as P

from thicket_jax import keys
from thicket_jax.perturb import LeafFilter, perturb
from thicket_jax.sigmas import check_sigmas

PyTree = Any
ScoreFn = Callable[..., jax.Array]

POP_AXIS = "pop"
DATA_AXIS = "data"
MODEL_AXIS = "model"


def round_up(x: int, m: int) -> int:
  """The smallest multiple of `m` that is >= `x`."""
  return -(-x // m) * m


def _member_scores(score_fn, where, vmap_width, params, run_key, ids_m, sigmas_m, args):
  """Scores `ids_m` (length a multiple of `vmap_width`) sequentially in groups."""

  def one(id_and_sigma):
    member_id, sigma = id_and_sigma
    member = perturb(params, keys.member_key(run_key, member_id), sigma, where=where)
    return score_fn(member, *args)

  if vmap_width == 1:  # no size-1 batch axis in every op (it costs layout copies in decoding loops)
    group = lambda g: jax.tree.map(lambda x: x[None], one(jax.tree.map(lambda x: x[0], g)))
  else:
    group = jax.vmap(one)
  if ids_m.shape[0] == vmap_width:  # one group: no loop around it (a nested loop copies buffers)
    return group((ids_m, sigmas_m))
  groups = (ids_m.reshape(-1, vmap_width), sigmas_m.reshape(-1, vmap_width))
  out = jax.lax.map(group, groups)  # [m / w, w, ...]
  return out.reshape((ids_m.shape[0],) + out.shape[2:])


@functools.lru_cache(maxsize=64)
def _compiled_scorer(score_fn, where, vmap_width: int, mesh: Mesh | None, data_sharded: bool):
  """One jitted scorer per (score_fn, where, width, mesh): shapes do the rest of the caching."""
  body = functools.partial(_member_scores, score_fn, where, vmap_width)
  if mesh is None:
    return jax.jit(body)

  args_spec = P(DATA_AXIS) if data_sharded else P()
  out_spec = P(POP_AXIS, DATA_AXIS) if data_sharded else P(POP_AXIS)
  # Members and examples are split by hand; a `model` axis is left to XLA's partitioner,
  # which splits each member's weights (and their noise) as `model_sharding` placed them.
  manual = {POP_AXIS} | ({DATA_AXIS} if data_sharded else set())
  return jax.jit(jax.shard_map(
      body, mesh=mesh, in_specs=(P(), P(), P(POP_AXIS), P(POP_AXIS), args_spec),
      out_specs=out_spec, axis_names=manual, check_vma=False))


def model_sharding(params: PyTree, mesh: Mesh) -> PyTree:
  """Shardings that split every weight over the mesh's `model` axis (replicated over `pop`).

  Each leaf is split along its largest dimension divisible by the axis size; leaves with
  none (biases, norms of odd size) are replicated. Without a `model` axis: all replicated.
  """
  size = mesh.shape.get(MODEL_AXIS, 1)

  def spec(leaf):
    shape = np.shape(leaf)
    dims = [d for d in np.argsort(shape)[::-1] if size > 1 and shape[d] % size == 0]
    if not dims:
      return NamedSharding(mesh, P())
    parts = [None] * len(shape)
    parts[int(dims[0])] = MODEL_AXIS
    return NamedSharding(mesh, P(*parts))
  return jax.tree.map(spec, params)


def check_args(args: tuple) -> int | None:
  """Checks the selection arrays share a non-empty leading axis; returns its size."""
  sizes = {}
  for i, leaf in enumerate(jax.tree_util.tree_leaves(args)):
    shape = np.shape(leaf)
    sizes[i] = shape[0] if shape else None
    if shape and shape[0] == 0:
      raise ValueError(f"selection data is empty: argument leaf {i} has shape {shape}")
  leading = {s for s in sizes.values() if s is not None}
  if len(leading) > 1:
    raise ValueError(f"selection arrays disagree on the number of examples: leading sizes {sorted(leading)}")
  return leading.pop() if leading else None


def score_population(score_fn: ScoreFn, params: PyTree, run_key: jax.Array, sigmas, *args,
                     member_ids=None, chunk_size: int | None = None, vmap_width: int = 1,
                     mesh: Mesh | None = None, where: LeafFilter | None = None) -> jax.Array:
  """Scores N perturbed members of `params`.

  Args:
    score_fn: `score_fn(member_params, *args) -> scores`, usually of shape `[]` or
      `[n_examples]` (any array works, e.g. predictions); pure and jittable. The
      compiled scorer is cached on the function object: pass the same function
      (not a fresh lambda) to reuse it.
    params: base parameter pytree.
    run_key: the run's PRNG key (threefry or philox).
    sigmas: `sigmas_n`, float array [N], the noise scale of each member.
    *args: selection data passed unchanged to `score_fn` (leading axis = examples).
    member_ids: int array [N], the members to score; default `arange(N)`.
    chunk_size: members per compiled call (None: all N in one call). Every call
      has the same shapes (the last one is padded), so it compiles once.
    vmap_width: members evaluated side by side inside a call; memory grows with it.
    mesh: optional `Mesh` with a `pop` axis (members), optionally a `data`
      axis (examples; `score_fn` must then return per-example scores) and a
      `model` axis (each member's weights split over it, for models that do not
      fit one device; see `model_sharding`).
    where: optional leaf filter, see `perturb`.
  Returns:
    `score_fn`'s outputs stacked on a leading member axis: [N] or [N, n_examples].
  """
  run_key = keys.check_key(run_key)
  sigmas_n = check_sigmas(sigmas)
  if sigmas_n.ndim != 1:
    raise ValueError(f"sigmas must have shape [N], got {sigmas_n.shape}")
  n = sigmas_n.shape[0]
  ids_n = np.arange(n, dtype=np.int32) if member_ids is None else np.asarray(member_ids, np.int32)
  if ids_n.shape != (n,):
    raise ValueError(f"member_ids has shape {ids_n.shape} but sigmas has shape {sigmas_n.shape}")
  if np.any(ids_n < 0):
    raise ValueError("member_ids must be >= 0")
  if not isinstance(vmap_width, int) or vmap_width < 1:
    raise ValueError(f"vmap_width must be a positive integer, got {vmap_width!r}")
  if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size < 1):
    raise ValueError(f"chunk_size must be a positive integer or None, got {chunk_size!r}")
  n_examples = check_args(args)

  pop_devices, data_sharded = 1, False
  if mesh is not None:
    if POP_AXIS not in mesh.axis_names:
      raise ValueError(f"mesh must have a {POP_AXIS!r} axis, got axes {mesh.axis_names}")
    pop_devices = mesh.shape[POP_AXIS]
    data_devices = mesh.shape.get(DATA_AXIS, 1)
    data_sharded = DATA_AXIS in mesh.axis_names
    if MODEL_AXIS in mesh.axis_names and mesh.axis_types[mesh.axis_names.index(MODEL_AXIS)] == AxisType.Explicit:
      raise ValueError(f"the {MODEL_AXIS!r} mesh axis must be of type AxisType.Auto (XLA partitions each "
                       "member's matmuls over it): jax.make_mesh(..., axis_types=(AxisType.Auto,) * n)")
    if data_sharded and (n_examples is None or n_examples % data_devices):
      raise ValueError(f"with a {DATA_AXIS!r} mesh axis of size {data_devices}, every selection "
                       f"array needs a leading axis divisible by it, got {n_examples}")

  # Every call scores `call_n` members: a multiple of (devices x width), padded at the end.
  unit = pop_devices * vmap_width
  call_n = round_up(chunk_size or n, unit)
  scorer = _compiled_scorer(score_fn, where, vmap_width, mesh, data_sharded)
  if mesh is not None:
    replicated = NamedSharding(mesh, P())
    params = jax.device_put(params, model_sharding(params, mesh))
    args = jax.device_put(args, NamedSharding(mesh, P(DATA_AXIS)) if data_sharded else replicated)
    member_sharding = NamedSharding(mesh, P(POP_AXIS))

  chunks = []
  for start in range(0, n, call_n):
    ids_c = ids_n[start:start + call_n]
    sig_c = sigmas_n[start:start + call_n]
    pad = call_n - ids_c.shape[0]
    ids_c = np.concatenate([ids_c, np.repeat(ids_c[-1:], pad)])
    sig_c = np.concatenate([sig_c, np.repeat(sig_c[-1:], pad)])
    if mesh is not None:
      ids_c = jax.device_put(ids_c, member_sharding)
      sig_c = jax.device_put(sig_c, member_sharding)
    out = scorer(params, run_key, ids_c, sig_c, args)
    if mesh is not None:  # scores are small: gather them from every device (and every host)
      out = jnp.asarray(multihost_utils.process_allgather(out, tiled=True))
    chunks.append(out[:call_n - pad] if pad else out)
  scores = chunks[0] if len(chunks) == 1 else jnp.concatenate(chunks)
  return scores
