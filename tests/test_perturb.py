import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import thicket_jax as tj
from helpers import mlp_params


def test_sigma_zero_gives_the_base():
  params = mlp_params(jax.random.key(0))
  chex.assert_trees_all_equal(tj.perturb(params, jax.random.key(1), 0.0), params)


def test_same_key_same_noise_other_key_other_noise():
  params = mlp_params(jax.random.key(0))
  a = tj.perturb(params, tj.member_key(jax.random.key(3), 7), 0.1)
  b = tj.perturb(params, tj.member_key(jax.random.key(3), 7), 0.1)
  c = tj.perturb(params, tj.member_key(jax.random.key(3), 8), 0.1)
  chex.assert_trees_all_equal(a, b)
  assert not np.array_equal(a["layer0"]["w"], c["layer0"]["w"])


def test_noise_is_standard_normal_and_scaled_by_sigma():
  params = {"w": jnp.zeros((200, 500))}
  eps = np.asarray(tj.perturb(params, jax.random.key(0), 1.0)["w"]).ravel()
  assert abs(eps.mean()) < 0.01 and abs(eps.std() - 1) < 0.01
  np.testing.assert_allclose(tj.perturb(params, jax.random.key(0), 0.25)["w"], 0.25 * eps.reshape(200, 500),
                             rtol=1e-6)


def test_same_shaped_leaves_get_uncorrelated_noise():
  params = {"q": jnp.zeros((64, 64)), "k": jnp.zeros((64, 64)), "v": [jnp.zeros((64, 64))]}
  out = tj.perturb(params, jax.random.key(0), 1.0)
  flat = [np.asarray(x).ravel() for x in jax.tree.leaves(out)]
  for i in range(len(flat)):
    for j in range(i + 1, len(flat)):
      assert abs(np.corrcoef(flat[i], flat[j])[0, 1]) < 0.05  # 4096 samples: |r| ~ 0.016


def test_noise_is_added_in_float32_and_dtype_kept():
  params = {"w": jnp.ones((256,), jnp.bfloat16), "n": jnp.arange(3), "f": jnp.ones(4, jnp.float16)}
  out = tj.perturb(params, jax.random.key(0), 1e-3)
  assert out["w"].dtype == jnp.bfloat16 and out["f"].dtype == jnp.float16
  np.testing.assert_array_equal(out["n"], params["n"])  # integer leaves untouched
  eps = tj.perturb({"w": jnp.zeros((256,)), "n": jnp.arange(3), "f": jnp.zeros(4)},
                   jax.random.key(0), 1e-3)["w"]
  np.testing.assert_array_equal(out["w"], (1.0 + eps).astype(jnp.bfloat16))


def test_where_excludes_leaves_without_changing_the_others():
  params = mlp_params(jax.random.key(0))
  full = tj.perturb(params, jax.random.key(1), 0.1)
  part = tj.perturb(params, jax.random.key(1), 0.1, where=lambda path: not path.endswith("/b"))
  for name in params:
    np.testing.assert_array_equal(part[name]["b"], params[name]["b"])
    np.testing.assert_array_equal(part[name]["w"], full[name]["w"])
  assert tj.leaf_paths(params)[0] == "layer0/b"


def test_perturb_is_pure():
  params = mlp_params(jax.random.key(0))
  before = jax.tree.map(np.array, params)
  tj.perturb(params, jax.random.key(1), 1.0)
  chex.assert_trees_all_equal(params, before)


def test_sigma_grid_blocks_random_and_errors():
  np.testing.assert_allclose(tj.sigma_grid([1.0, 2.0, 3.0], 7), [1, 1, 1, 2, 2, 3, 3])
  r = np.asarray(tj.sigma_grid([1.0, 2.0], 10, "random", jax.random.key(0)))
  assert sorted(r.tolist()) == [1.0] * 5 + [2.0] * 5
  with pytest.raises(ValueError, match="needs a key"):
    tj.sigma_grid([1.0], 3, "random")
  with pytest.raises(ValueError, match=">= 0"):
    tj.sigma_grid([-1.0], 3)
  with pytest.raises(ValueError, match="finite"):
    tj.sigma_grid([np.inf], 3)
  with pytest.raises(ValueError, match="empty"):
    tj.sigma_grid([], 3)


def test_rbg_keys_are_refused():
  from thicket_jax.population import score_population
  with pytest.raises(ValueError, match="rbg"):
    score_population(lambda p: p["w"].sum(), {"w": jnp.ones(2)}, jax.random.key(0, impl="rbg"), [0.1])
