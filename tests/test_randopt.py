import json

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import thicket_jax as tj
from helpers import data, log_likelihood, mlp_params, predict_label

CFG = tj.RandOptConfig(population=10, sigmas=(0.05, 0.2), top_ks=(1, 3, 5), chunk_size=3, seed=3)


class Interrupt(Exception):
  pass


def test_fit_ranks_members_and_rebuilds_them_exactly():
  params, (x, y) = mlp_params(jax.random.key(0)), data()
  result = tj.RandOpt(CFG).fit(log_likelihood, params, x, y, progress=False)
  assert result.rewards.shape == (10, 32)
  order = result.ranking
  assert np.all(np.diff(result.scores_n[order]) <= 0)
  assert list(result.selected) == [1, 3, 5] and np.array_equal(result.selected[3], order[:3])
  best = result.member_params(int(order[0]))
  np.testing.assert_allclose(log_likelihood(best, x, y), result.rewards[order[0]], rtol=2e-6, atol=2e-6)
  np.testing.assert_allclose(result.base_rewards, log_likelihood(params, x, y), rtol=2e-6)
  density = result.density((0.0, 1e9))
  assert density[1] == 0 and density[0] == np.mean(result.scores_n >= result.base_score)


def test_resume_after_an_interruption_gives_identical_results(tmp_path):
  params, (x, y) = mlp_params(jax.random.key(0)), data()
  reference = tj.RandOpt(CFG).fit(log_likelihood, params, x, y, progress=False)

  def stop_after_two_blocks(done, total):
    if done >= 6:
      raise Interrupt

  with pytest.raises(Interrupt):
    tj.RandOpt(CFG).fit(log_likelihood, params, x, y, out_dir=tmp_path, progress=False,
                        on_block=stop_after_two_blocks)
  assert len(list((tmp_path / "blocks").glob("members_*.json"))) == 2
  assert not (tmp_path / "result.json").exists()

  calls = []

  def counting_score(p, x, y):  # traced once per compiled shape: counts fresh scoring
    calls.append(1)
    return log_likelihood(p, x, y)

  seen = []
  resumed = tj.RandOpt(CFG).fit(counting_score, params, x, y, out_dir=tmp_path, progress=False,
                                on_block=lambda done, total: seen.append(done))
  np.testing.assert_array_equal(resumed.rewards, reference.rewards)
  np.testing.assert_array_equal(resumed.base_rewards, reference.base_rewards)
  np.testing.assert_array_equal(resumed.ranking, reference.ranking)
  assert seen == [3, 6, 9, 10]
  assert len(calls) == 1  # one compilation: blocks 3 and 4 only (base and blocks 1-2 came from disk)


def test_an_out_dir_of_another_run_is_refused(tmp_path):
  params, (x, y) = mlp_params(jax.random.key(0)), data()
  tj.RandOpt(CFG).fit(log_likelihood, params, x, y, out_dir=tmp_path, progress=False)
  other = tj.RandOptConfig(**{**CFG.to_dict(), "seed": 4})
  with pytest.raises(ValueError, match="holds a different run.*config"):
    tj.RandOpt(other).fit(log_likelihood, params, x, y, out_dir=tmp_path, progress=False)
  with pytest.raises(ValueError, match="holds a different run.*selection"):
    tj.RandOpt(CFG).fit(log_likelihood, params, x[:8], y[:8], out_dir=tmp_path, progress=False)


def test_save_load_round_trip_and_predict(tmp_path):
  params, (x, y) = mlp_params(jax.random.key(0)), data()
  result = tj.RandOpt(CFG).fit(log_likelihood, params, x, y, out_dir=tmp_path, progress=False)
  summary = json.loads((tmp_path / "result.json").read_text())
  assert tj.RandOptConfig.from_dict(summary["config"]) == CFG and len(summary["members"]) == 10
  assert summary["top_k"]["3"] == result.selected[3].tolist()
  loaded = tj.RandOptResult.load(tmp_path)
  chex.assert_trees_all_equal(loaded.base_params, params)
  np.testing.assert_array_equal(loaded.rewards, result.rewards)
  votes = loaded.predict(predict_label, x, k=3)
  members = np.stack([predict_label(result.member_params(int(i)), x) for i in result.selected[3]])
  np.testing.assert_array_equal(votes, tj.majority_vote(members))
  raw = loaded.predict(predict_label, x, k=3, reduce=None)
  np.testing.assert_array_equal(raw, members)
  mean = loaded.predict(lambda p, x: jax.nn.softmax(jax.numpy.tanh(x @ p["layer0"]["w"])), x, k=2,
                        reduce="mean")
  assert mean.shape == (32, 16)


def test_nan_scores_rank_last_and_are_reported():
  params, (x, y) = mlp_params(jax.random.key(0)), data()

  def score(p, x, y):  # members with a large first weight score NaN
    r = log_likelihood(p, x, y)
    return jnp.where(p["layer0"]["w"][0, 0] > params["layer0"]["w"][0, 0], jnp.nan, r)

  with pytest.warns(RuntimeWarning, match="scored NaN"):
    result = tj.RandOpt(CFG).fit(score, params, x, y, progress=False)
  nan = result.nan_members
  assert 0 < len(nan) < 10
  assert set(result.ranking[-len(nan):].tolist()) == set(nan)


def test_config_validation():
  with pytest.raises(ValueError, match="k=20 must be between 1 and population=10"):
    tj.RandOptConfig(population=10, top_ks=(1, 20))
  with pytest.raises(ValueError, match="sigmas must be finite"):
    tj.RandOptConfig(sigmas=(float("nan"),))
  with pytest.raises(ValueError, match="sigmas must be finite and >= 0"):
    tj.RandOptConfig(sigmas=(-1.0,))
  with pytest.raises(ValueError, match="sigma_assignment"):
    tj.RandOptConfig(sigma_assignment="cycle")
  assert tj.RandOptConfig.from_dict(tj.RandOptConfig.tiny().to_dict()) == tj.RandOptConfig.tiny()


_KILLED_RUN = r"""
import os, signal, sys
import jax
sys.path.insert(0, sys.argv[1])
import thicket_jax as tj
from helpers import data, log_likelihood, mlp_params
cfg = tj.RandOptConfig(population=10, sigmas=(0.05, 0.2), top_ks=(1, 3, 5), chunk_size=3, seed=3)
params, (x, y) = mlp_params(jax.random.key(0)), data()

def kill_after_two_blocks(done, total):
  if done >= 6:
    os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no exception handlers: a real crash

tj.RandOpt(cfg).fit(log_likelihood, params, x, y, out_dir=sys.argv[2], progress=False,
                    on_block=kill_after_two_blocks)
"""


def test_resume_after_a_sigkill(tmp_path):
  import subprocess
  import sys
  from pathlib import Path
  proc = subprocess.run([sys.executable, "-c", _KILLED_RUN, str(Path(__file__).parent), str(tmp_path)],
                        capture_output=True, text=True, timeout=300)
  assert proc.returncode == -9, proc.stderr[-2000:]
  assert len(list((tmp_path / "blocks").glob("members_*.json"))) == 2
  params, (x, y) = mlp_params(jax.random.key(0)), data()
  resumed = tj.RandOpt(CFG).fit(log_likelihood, params, x, y, out_dir=tmp_path, progress=False)
  reference = tj.RandOpt(CFG).fit(log_likelihood, params, x, y, progress=False)
  np.testing.assert_array_equal(resumed.rewards, reference.rewards)
  np.testing.assert_array_equal(resumed.ranking, reference.ranking)
