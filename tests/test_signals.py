import json
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from thicket_jax.data import signals
from thicket_jax.models import mlp

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
import signals_1d  # noqa: E402


def test_families_are_sampled_on_the_papers_grid():
  x = np.asarray(signals.grid(70))
  assert x[0] == pytest.approx(-2.5) and np.allclose(np.diff(x), 0.1)
  for fam in signals.FAMILIES:
    c = np.asarray(signals.sample(jax.random.key(0), 8, (fam,)))
    assert c.shape == (8, 70) and np.all(np.isfinite(c)) and np.abs(c).max() < 5
  line = np.asarray(signals.sample(jax.random.key(1), 4, ("line",)))
  np.testing.assert_allclose(np.diff(line, 2, axis=1), 0, atol=1e-5)  # straight
  with pytest.raises(ValueError, match="unknown signal family"):
    signals.sample(jax.random.key(0), 2, ("spiral",))


def test_rollout_feeds_predictions_back():
  apply, params = mlp.split(mlp.MLP(10, width=16, depth=3, rngs=nnx.Rngs(0)))
  ctx = jax.random.normal(jax.random.key(0), (3, 10))
  out = mlp.rollout(apply, params, ctx, 5)
  window = np.asarray(ctx)
  for t in range(5):
    y = np.asarray(apply(params, jnp.asarray(window)))
    np.testing.assert_allclose(out[:, t], y, rtol=1e-5, atol=1e-6)
    window = np.concatenate([window[:, 1:], y[:, None]], axis=1)


def test_teacher_forcing_windows():
  curves = jnp.arange(2 * 14, dtype=jnp.float32).reshape(2, 14)
  x, y = signals_1d.windows(curves, 10)
  assert x.shape == (8, 10) and y.shape == (8,)
  np.testing.assert_array_equal(x[1], np.arange(1, 11))
  assert y[1] == 11


def test_quick_experiment_writes_results_and_figures(tmp_path):
  signals_1d.main(["--out", str(tmp_path), "--quick"])
  res = json.loads((tmp_path / "results.json").read_text())
  for regime in ("untrained", "mixed", "lines"):
    r = res["regimes"][regime]
    for key in ("density_0", "base_test_mse", "top1_test_mse", "ensemble_test_mse"):
      assert np.isfinite(r[key]), (regime, key)
    assert 0 <= r["density_0"] <= 1 and r["gradient_baseline"]["steps"] > 0
    assert len(r["member_selection_mse"]) == 48
  assert np.isfinite(res["discordance"]["D"])
  for png in ("density.png", "predictions.png", "histograms.png"):
    assert (tmp_path / png).stat().st_size > 10_000
