"""thicket_jax: gradient-free post-training by random Gaussian perturbations (RandOpt).

Public API (shapes in each docstring):
  member_key, perturb, score_population, sigma_grid, top_k, ranking,
  majority_vote, mean_ensemble, solution_density, spectral_discordance,
  RandOptConfig, RandOpt, RandOptResult; language models: load_lm, LM.
"""

from thicket_jax.config import RandOptConfig
from thicket_jax.keys import member_key
from thicket_jax.lm import LM, load_lm
from thicket_jax.metrics import solution_density, spectral_discordance
from thicket_jax.perturb import leaf_paths, perturb
from thicket_jax.population import score_population
from thicket_jax.randopt import RandOpt, RandOptResult
from thicket_jax.select import majority_vote, mean_ensemble, ranking, top_k
from thicket_jax.sigmas import sigma_grid

__version__ = "0.1.0"

__all__ = [
    "LM", "RandOpt", "RandOptConfig", "RandOptResult", "leaf_paths", "load_lm", "majority_vote", "mean_ensemble",
    "member_key", "perturb", "ranking", "score_population", "sigma_grid", "solution_density",
    "spectral_discordance", "top_k",
]
