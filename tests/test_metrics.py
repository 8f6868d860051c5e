import numpy as np
import pytest

import thicket_jax as tj


def test_solution_density_counts_members_beating_the_base():
  scores = np.array([0.1, 0.5, 0.5, 0.9, np.nan])
  np.testing.assert_allclose(tj.solution_density(scores, 0.5, (0.0, 0.1, 1.0)), [0.6, 0.2, 0.0])
  np.testing.assert_allclose(tj.solution_density(scores, 0.5, (0.0, 0.3), higher_is_better=False), [0.6, 0.2])


def test_discordance_zero_for_identical_rankings_and_high_for_opposite():
  rng = np.random.default_rng(0)
  s = rng.normal(size=200)
  assert tj.spectral_discordance(np.stack([s, 2 * s + 1, s**3], 1)) == pytest.approx(0.0, abs=1e-12)
  assert tj.spectral_discordance(np.stack([s, -s], 1)) == pytest.approx(2.0)
  independent = tj.spectral_discordance(rng.normal(size=(2000, 4)))
  assert 0.9 < independent < 1.1
  with pytest.raises(ValueError, match="M >= 2"):
    tj.spectral_discordance(np.zeros((5, 1)))
