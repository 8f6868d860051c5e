import json
import os
import subprocess
import sys
from pathlib import Path

import chex
import jax
import numpy as np
import pytest

import thicket_jax as tj
from helpers import data, log_likelihood, mean_log_likelihood, mlp_params

KEY = jax.random.key(42)
SIGMAS = np.asarray(tj.sigma_grid([0.05, 0.1, 0.2], 10))


def test_equals_a_python_loop_over_members():
  params, (x, y) = mlp_params(jax.random.key(0)), data()
  scores = np.asarray(tj.score_population(log_likelihood, params, KEY, SIGMAS, x, y))
  assert scores.shape == (10, 32)
  for i in range(10):
    member = tj.perturb(params, tj.member_key(KEY, i), SIGMAS[i])
    np.testing.assert_allclose(scores[i], log_likelihood(member, x, y), rtol=2e-6, atol=2e-6)
    alone = tj.score_population(log_likelihood, params, KEY, SIGMAS[i:i + 1], x, y, member_ids=[i])
    np.testing.assert_array_equal(alone[0], scores[i])  # bit for bit: alone == in the population


@pytest.mark.parametrize("chunk_size", [1, 3, 4, 7, 64])
def test_chunked_equals_unchunked_bit_for_bit(chunk_size):
  params, (x, y) = mlp_params(jax.random.key(0)), data()
  full = tj.score_population(log_likelihood, params, KEY, SIGMAS, x, y)
  chunked = tj.score_population(log_likelihood, params, KEY, SIGMAS, x, y, chunk_size=chunk_size)
  np.testing.assert_array_equal(chunked, full)


def test_population_size_does_not_change_a_member():
  params, (x, y) = mlp_params(jax.random.key(0)), data()
  small = tj.score_population(mean_log_likelihood, params, KEY, SIGMAS[:4], x, y)
  large = tj.score_population(mean_log_likelihood, params, KEY, SIGMAS, x, y, chunk_size=5)
  np.testing.assert_array_equal(small, large[:4])


def test_vmap_width_chunks_are_exact_at_a_fixed_width():
  params, (x, y) = mlp_params(jax.random.key(0)), data()
  a = tj.score_population(log_likelihood, params, KEY, SIGMAS, x, y, vmap_width=2)
  b = tj.score_population(log_likelihood, params, KEY, SIGMAS, x, y, vmap_width=2, chunk_size=4)
  np.testing.assert_array_equal(a, b)
  np.testing.assert_allclose(a, tj.score_population(log_likelihood, params, KEY, SIGMAS, x, y), rtol=1e-5)


def test_sigma_zero_member_is_the_base():
  params, (x, y) = mlp_params(jax.random.key(0)), data()
  out = tj.score_population(log_likelihood, params, KEY, np.zeros(3), x, y)
  for row in np.asarray(out):
    np.testing.assert_allclose(row, log_likelihood(params, x, y), rtol=2e-6)


def test_no_recompilation_from_one_chunk_to_the_next():
  params, (x, y) = mlp_params(jax.random.key(0)), data()

  @chex.assert_max_traces(n=1)
  def traced_score(p, x, y):
    return log_likelihood(p, x, y)

  tj.score_population(traced_score, params, KEY, SIGMAS, x, y, chunk_size=3)  # 4 calls, 1 trace
  tj.score_population(traced_score, params, KEY, SIGMAS[:6], x, y, chunk_size=3,
                      member_ids=np.arange(20, 26))  # same shapes: no new trace


def test_bad_input_errors_name_the_argument():
  params, (x, y) = mlp_params(jax.random.key(0)), data()
  with pytest.raises(ValueError, match="sigmas must be >= 0"):
    tj.score_population(log_likelihood, params, KEY, [0.1, -0.1], x, y)
  with pytest.raises(ValueError, match="sigmas must be finite"):
    tj.score_population(log_likelihood, params, KEY, [np.nan], x, y)
  with pytest.raises(ValueError, match="selection data is empty"):
    tj.score_population(log_likelihood, params, KEY, [0.1], x[:0], y[:0])
  with pytest.raises(ValueError, match="disagree on the number of examples"):
    tj.score_population(log_likelihood, params, KEY, [0.1], x, y[:5])
  with pytest.raises(ValueError, match="member_ids has shape"):
    tj.score_population(log_likelihood, params, KEY, [0.1, 0.2], x, y, member_ids=[1])
  with pytest.raises(ValueError, match="chunk_size"):
    tj.score_population(log_likelihood, params, KEY, [0.1], x, y, chunk_size=0)


_DEVICES_SCRIPT = r"""
import json, sys
import jax, numpy as np
sys.path.insert(0, sys.argv[1])
import thicket_jax as tj
from helpers import data, log_likelihood, mlp_params
assert len(jax.devices()) == 8, jax.devices()
params, (x, y) = mlp_params(jax.random.key(0)), data()
sig = np.asarray(tj.sigma_grid([0.05, 0.1, 0.2], 10))
out = {}
for name, shape, axes, chunk in [("pop8", (8,), ("pop",), None), ("pop8_chunk3", (8,), ("pop",), 3),
                                 ("pop4_data2", (4, 2), ("pop", "data"), 4)]:
  mesh = jax.make_mesh(shape, axes)
  s = tj.score_population(log_likelihood, params, jax.random.key(42), sig, x, y, mesh=mesh, chunk_size=chunk)
  out[name] = np.asarray(s).tolist()
from lm_helpers import tiny_config, tokenizer_backend, CHAT_TEMPLATE
from thicket_jax.lm import init_lm
from thicket_jax.models.tokenizer import Tokenizer
from thicket_jax.models.generate import left_pad
lm = init_lm(tiny_config(), Tokenizer(tokenizer_backend(), CHAT_TEMPLATE), 0)
tokens, valid = left_pad([[5, 6, 7], [9, 10]])
ids = lm.population_ids(jax.random.key(3), np.full(5, 0.5, np.float32), tokens, valid, max_new_tokens=4,
                        mesh=jax.make_mesh((8,), ("pop",)))
from thicket_jax.distributed import population_mesh
mesh = population_mesh(model_devices=2)
assert dict(mesh.shape) == {"pop": 4, "model": 2}, mesh.shape
from thicket_jax.population import model_sharding
specs = [str(sh.spec) for sh in jax.tree.leaves(model_sharding(params, mesh))]
assert any("model" in sp for sp in specs), specs
model_axis = tj.score_population(log_likelihood, params, jax.random.key(42), sig, x, y, mesh=mesh, chunk_size=4)
model_ids = lm.population_ids(jax.random.key(3), np.full(5, 0.5, np.float32), tokens, valid, max_new_tokens=4,
                              mesh=mesh)
print(json.dumps({"model_axis": np.asarray(model_axis).tolist(), "model_ids": np.asarray(model_ids).tolist()}))
print(json.dumps(out))
print(json.dumps(np.asarray(ids).tolist()))
"""


def test_one_device_equals_eight_devices_bit_for_bit():
  params, (x, y) = mlp_params(jax.random.key(0)), data()
  one = np.asarray(tj.score_population(log_likelihood, params, KEY, SIGMAS, x, y))
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8", JAX_PLATFORMS="cpu")
  proc = subprocess.run([sys.executable, "-c", _DEVICES_SCRIPT, str(Path(__file__).parent)],
                        env=env, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  lines = proc.stdout.strip().splitlines()
  # A `model` axis splits each member's weights over 2 devices: equal up to matmul rounding.
  split = json.loads(lines[-3])
  np.testing.assert_allclose(np.asarray(split["model_axis"], np.float32), one, rtol=1e-5)
  for name, scores in json.loads(lines[-2]).items():
    np.testing.assert_array_equal(np.asarray(scores, np.float32), one, err_msg=name)
  # A language-model population generating on 8 devices gives the 1-device tokens.
  from lm_helpers import tiny_config, tokenizer_backend, CHAT_TEMPLATE
  from thicket_jax.lm import init_lm
  from thicket_jax.models.tokenizer import Tokenizer
  from thicket_jax.models.generate import left_pad
  lm = init_lm(tiny_config(), Tokenizer(tokenizer_backend(), CHAT_TEMPLATE), 0)
  tokens, valid = left_pad([[5, 6, 7], [9, 10]])
  ids = lm.population_ids(jax.random.key(3), np.full(5, 0.5, np.float32), tokens, valid, max_new_tokens=4)
  np.testing.assert_array_equal(np.asarray(json.loads(lines[-1])), ids)
  np.testing.assert_array_equal(np.asarray(split["model_ids"]), ids)


def test_model_axis_must_be_auto():
  params, (x, y) = mlp_params(jax.random.key(0)), data()
  mesh = jax.make_mesh((1, 1), ("pop", "model"), axis_types=(jax.sharding.AxisType.Explicit,) * 2)
  with pytest.raises(ValueError, match="AxisType.Auto"):
    tj.score_population(log_likelihood, params, KEY, [0.1], x, y, mesh=mesh)
