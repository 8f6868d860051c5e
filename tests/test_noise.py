"""The fast noise path draws exactly the numbers of `jax.random.normal`."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from thicket_jax import noise

SHAPES = [(), (1,), (7,), (3, 5), (576,), (1000, 3), (64, 64, 3)]


def _same_bits(a, b):
  return np.array_equal(np.asarray(a).view(np.uint32), np.asarray(b).view(np.uint32))


@pytest.mark.parametrize("shape", SHAPES)
def test_normal_equals_jax_random_normal(shape):
  for seed in range(3):
    key = jax.random.fold_in(jax.random.key(seed), 17)
    expected = jax.random.normal(key, shape, jnp.float32)
    assert _same_bits(noise.normal(key, shape), expected)
    assert _same_bits(jax.jit(noise.normal, static_argnums=1)(key, shape), expected)
    assert np.array_equal(noise.uniform_bits(key, shape), jax.random.bits(key, shape))


def test_normal_under_vmap_matches_per_key_draws():
  keys_ = jax.random.split(jax.random.key(3), 5)
  batched = jax.vmap(lambda k: noise.normal(k, (33, 2)))(keys_)
  for i in range(5):
    assert _same_bits(batched[i], jax.random.normal(keys_[i], (33, 2), jnp.float32))


def test_threefry_known_answer():
  # Known-answer vector of the Random123 reference (Threefry-2x32, 20 rounds, all-ones inputs).
  ones = jnp.full((), 0xFFFFFFFF, jnp.uint32)
  x0, x1 = noise.threefry2x32(ones, ones, ones, ones)
  assert (int(x0), int(x1)) == (0x1CB996FC, 0xBB002BE7)


def test_other_key_implementations_fall_back_to_jax():
  key = jax.random.key(5, impl="philox4x32")
  assert _same_bits(noise.normal(key, (9, 4)), jax.random.normal(key, (9, 4), jnp.float32))


def test_normal_is_standard_gaussian():
  x = np.asarray(noise.normal(jax.random.key(0), (200_000,)))
  assert abs(x.mean()) < 0.01 and abs(x.std() - 1) < 0.01
