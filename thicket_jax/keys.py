"""PRNG keys of a population: one key per member, one per leaf, all derived with `fold_in`."""

from __future__ import annotations

import jax

_PER_KEY_IMPLS = ("threefry2x32", "philox4x32")


def _as_typed_key(key: jax.Array) -> jax.Array:
  """Returns `key` as a typed key array (accepts legacy uint32[2] keys)."""
  if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
    return key
  return jax.random.wrap_key_data(key)


def check_key(key: jax.Array, name: str = "run_key") -> jax.Array:
  """Validates a run key and returns it as a typed key.

  The `rbg` / `unsafe_rbg` implementations do not give per-key results under
  `vmap`, so a member would not be reproducible from its key alone: refused.
  """
  try:
    key = _as_typed_key(key)
  except Exception as e:  # noqa: BLE001 - re-raised with the argument's name
    raise TypeError(f"{name} must be a JAX PRNG key, got {type(key).__name__}") from e
  if key.shape != ():
    raise ValueError(f"{name} must be a single key (shape ()), got shape {key.shape}")
  impl = str(jax.random.key_impl(key))
  if not any(name_ in impl for name_ in _PER_KEY_IMPLS):
    raise ValueError(
        f"{name} uses the PRNG implementation {impl!r}; use threefry2x32 (default) or philox4x32: "
        "rbg keys are not reproducible per member under vmap")
  return key


def member_key(run_key: jax.Array, member_id) -> jax.Array:
  """Key of member `member_id`: `fold_in(run_key, member_id)`. Works under jit/vmap."""
  return jax.random.fold_in(_as_typed_key(run_key), member_id)


def leaf_key(member_key_: jax.Array, leaf_index: int) -> jax.Array:
  """Key of one parameter leaf of a member: `fold_in(member_key, leaf_index)`."""
  return jax.random.fold_in(member_key_, leaf_index)
