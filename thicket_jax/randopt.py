"""The RandOpt driver: score a population, rank it, keep the top K, ensemble.

    result = RandOpt(RandOptConfig(population=256, sigmas=(1e-3,))).fit(
        score_fn, params, x_sel, y_sel, out_dir="runs/x")
    labels = result.predict(predict_fn, x_test, k=10, reduce="vote")

With `out_dir`, scores are written block by block as they are produced; a run
stopped part-way and started again with the same config, parameters and data
continues where it stopped and ends with identical results.
"""

from __future__ import annotations

import dataclasses
import logging
import warnings
from pathlib import Path
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from thicket_jax import storage
from thicket_jax.config import RandOptConfig
from thicket_jax.metrics import solution_density
from thicket_jax.perturb import LeafFilter, perturb
from thicket_jax.keys import member_key
from thicket_jax.population import check_args, score_population
from thicket_jax.select import majority_vote, mean_ensemble, ranking
from thicket_jax.sigmas import sigma_grid

log = logging.getLogger(__name__)
PyTree = Any

_SIGMA_KEY_ID = 2**32 - 1  # fold_in data for the sigma shuffle; member ids are < 2**31
FORMAT_VERSION = 1


def run_key(seed: int) -> jax.Array:
  """The run key of a seed: `jax.random.key(seed)` (threefry)."""
  return jax.random.key(seed)


def member_sigmas(config: RandOptConfig) -> np.ndarray:
  """`sigmas_n` [N] of a config (float32)."""
  key = jax.random.fold_in(run_key(config.seed), _SIGMA_KEY_ID)
  return np.asarray(sigma_grid(config.sigmas, config.population, config.sigma_assignment, key))


@dataclasses.dataclass(frozen=True)
class RandOptResult:
  """Everything a run measured.

  Attributes:
    config: the run's config.
    base_params: the unperturbed parameters.
    sigmas_n: float32 [N], each member's sigma.
    rewards: float [N] or [N, n_examples], the member x example reward matrix.
    base_rewards: float [] or [n_examples], the base model's rewards.
    where: the leaf filter used (not saved; pass it again to `load`).
  """
  config: RandOptConfig
  base_params: PyTree
  sigmas_n: np.ndarray
  rewards: np.ndarray
  base_rewards: np.ndarray
  where: LeafFilter | None = None

  @property
  def scores_n(self) -> np.ndarray:
    """Mean reward of every member, [N]."""
    r = self.rewards
    return r if r.ndim == 1 else r.mean(axis=1)

  @property
  def base_score(self) -> float:
    return float(np.mean(self.base_rewards))

  @property
  def ranking(self) -> np.ndarray:
    """All member ids, best first (ties to the lower id, NaN last), [N]."""
    return np.asarray(ranking(jnp.asarray(self.scores_n)))

  def top_k(self, k: int) -> np.ndarray:
    if not 1 <= k <= self.config.population:
      raise ValueError(f"k={k} must be between 1 and population={self.config.population}")
    return self.ranking[:k]

  @property
  def selected(self) -> dict[int, np.ndarray]:
    """The top-K member ids for every K of the config."""
    order = self.ranking
    return {k: order[:k] for k in self.config.top_ks}

  @property
  def nan_members(self) -> list[int]:
    return [int(i) for i in np.flatnonzero(np.isnan(self.scores_n))]

  def density(self, margins=(0.0,)) -> np.ndarray:
    """Solution density delta(m) of the population around the base, [len(margins)]."""
    return solution_density(self.scores_n, self.base_score, margins)

  def member_params(self, member_id: int) -> PyTree:
    """Rebuilds member `member_id`'s weights exactly."""
    return perturb(self.base_params, member_key(run_key(self.config.seed), member_id),
                   self.sigmas_n[member_id], where=self.where)

  def members_table(self) -> list[dict[str, Any]]:
    rank_of = np.empty(self.config.population, np.int64)
    rank_of[self.ranking] = np.arange(self.config.population)
    return [{"id": i, "sigma": float(self.sigmas_n[i]), "score": float(self.scores_n[i]),
             "rank": int(rank_of[i])} for i in range(self.config.population)]

  def predict(self, predict_fn: Callable[..., jax.Array], *inputs, k: int,
              reduce: str | None = "vote", abstain: int = -1, mesh: Mesh | None = None):
    """Runs the top-k members on new inputs and combines their outputs.

    Args:
      predict_fn: `predict_fn(member_params, *inputs) -> outputs` ([n] integer
        answer keys for "vote"; any float array for "mean").
      k: ensemble size.
      reduce: "vote" (`majority_vote`), "mean" (`mean_ensemble`) or None
        (the members' outputs, [k, ...], best first).
    """
    ids = self.top_k(k)
    outs = score_population(predict_fn, self.base_params, run_key(self.config.seed),
                            self.sigmas_n[ids], *inputs, member_ids=ids,
                            chunk_size=self.config.chunk_size, vmap_width=self.config.vmap_width,
                            mesh=mesh, where=self.where)
    if reduce is None:
      return outs
    if reduce == "vote":
      return majority_vote(outs, abstain)
    if reduce == "mean":
      return mean_ensemble(outs)
    raise ValueError(f"reduce must be 'vote', 'mean' or None, got {reduce!r}")

  def summary(self) -> dict[str, Any]:
    """JSON-ready summary: base, members, top-K ids, NaN members, density."""
    margins = (0.0,)
    return {
        "format_version": FORMAT_VERSION,
        "config": self.config.to_dict(),
        "base_score": self.base_score,
        "top_k": {str(k): v.tolist() for k, v in self.selected.items()},
        "nan_members": self.nan_members,
        "density": {str(m): float(d) for m, d in zip(margins, self.density(margins))},
        "members": self.members_table(),
    }

  def save(self, out_dir: str | Path, save_params: bool = True) -> None:
    """Writes config, rewards and summary as JSON, and (optionally) the base parameters with orbax."""
    out = Path(out_dir)
    storage.write_json(out / "config.json", self.config.to_dict())
    storage.write_json(out / "rewards.json", {"sigmas": self.sigmas_n.tolist(),
                                              "rewards": self.rewards.tolist(),
                                              "base_rewards": self.base_rewards.tolist()})
    storage.write_json(out / "result.json", self.summary())
    if save_params:
      storage.save_params(out / "base_params", self.base_params)

  @classmethod
  def load(cls, out_dir: str | Path, *, params_like: PyTree | None = None, params: PyTree | None = None,
           where: LeafFilter | None = None) -> "RandOptResult":
    """Reads a result written by `save` (or by `fit(out_dir=...)`).

    The base parameters come from the run's orbax checkpoint, or from `params`
    when the run did not save them (e.g. a model loaded by name).
    """
    out = Path(out_dir)
    if not (out / "rewards.json").exists():
      raise FileNotFoundError(f"{out} holds no finished RandOpt result (no rewards.json)")
    config = RandOptConfig.from_dict(storage.read_json(out / "config.json"))
    r = storage.read_json(out / "rewards.json")
    base = params if params is not None else storage.load_params(out / "base_params", params_like)
    return cls(config=config, base_params=base,
               sigmas_n=np.asarray(r["sigmas"], np.float32),
               rewards=np.asarray(r["rewards"], np.float32),
               base_rewards=np.asarray(r["base_rewards"], np.float32), where=where)


class RandOpt:
  """Runs RandOpt with a `RandOptConfig`: `RandOpt(config).fit(score_fn, params, *data)`."""

  def __init__(self, config: RandOptConfig):
    self.config = config

  def fit(self, score_fn: Callable[..., jax.Array], params: PyTree, *selection,
          out_dir: str | Path | None = None, mesh: Mesh | None = None,
          where: LeafFilter | None = None, progress: bool = True,
          on_block: Callable[[int, int], None] | None = None,
          host_reward: Callable[[np.ndarray], np.ndarray] | None = None,
          save_params: bool = True) -> RandOptResult:
    """Scores the population on the selection data and ranks it.

    Args:
      score_fn: `score_fn(member_params, *selection) -> rewards`, shape [] or
        [n_examples], higher is better.
      params: base parameter pytree.
      *selection: selection arrays (leading axis = examples).
      out_dir: where to save blocks of scores as they come (resumable) and the result.
      mesh: optional mesh with a `pop` (and `data`) axis.
      where: optional leaf filter for `perturb`.
      progress: show a progress bar.
      on_block: called as `on_block(members_done, population)` after each block.
      host_reward: optional host-side step turning a block of `score_fn` outputs
        (e.g. generated token ids [m, B, T]) into rewards [m, B] (e.g. by
        decoding and checking answers).
      save_params: also write the base parameters (orbax) with the result.
    """
    cfg = self.config
    check_args(selection)
    key = run_key(cfg.seed)
    sigmas_n = member_sigmas(cfg)
    def score(sig, ids, chunk=cfg.chunk_size):
      out = np.asarray(jax.device_get(score_population(
          score_fn, params, key, sig, *selection, member_ids=ids, chunk_size=chunk,
          vmap_width=cfg.vmap_width, mesh=mesh, where=where)))
      return out if host_reward is None else np.asarray(host_reward(out), np.float32)

    out = Path(out_dir) if out_dir is not None else None
    run_id = {"config": cfg.to_dict(), "params": storage.fingerprint(params),
              "selection": storage.fingerprint(selection), "format_version": FORMAT_VERSION}
    if out is not None:
      if storage.claim_dir(out, run_id):
        log.info("resuming run in %s", out)

    base_path = out / "blocks" / "base.json" if out else None
    saved = storage.read_shared_json(base_path) if base_path is not None else None
    if saved is not None:
      base_rewards = np.asarray(saved["rewards"], np.float32)
    else:  # sigma = 0 through the same compiled scorer: bit-equal to an unperturbed member
      base_rewards = score(np.zeros(1, np.float32), np.zeros(1, np.int32), None)[0]
      if base_path is not None:
        storage.write_json(base_path, {"rewards": base_rewards.tolist()})

    n, block = cfg.population, cfg.chunk_size
    blocks = []
    bar = _progress(n, progress)
    for start in range(0, n, block):
      ids = np.arange(start, min(start + block, n), dtype=np.int32)
      path = out / "blocks" / f"members_{start:08d}.json" if out else None
      saved = storage.read_shared_json(path) if path is not None else None
      if saved is not None:
        rewards = np.asarray(saved["rewards"], np.float32)
      else:
        rewards = score(sigmas_n[ids], ids)
        if path is not None:
          storage.write_json(path, {"member_ids": ids.tolist(), "sigmas": sigmas_n[ids].tolist(),
                                    "rewards": rewards.tolist()})
      blocks.append(rewards)
      _advance(bar, len(ids), np.concatenate(blocks))
      if on_block is not None:
        on_block(int(ids[-1]) + 1, n)
    if bar is not None:
      bar.close()

    rewards = np.concatenate(blocks).astype(np.float32)
    if rewards.ndim not in (1, 2):
      raise ValueError(f"score_fn must return a scalar or [n_examples] rewards, got {rewards.shape[1:]}")
    result = RandOptResult(cfg, params, sigmas_n, rewards, np.asarray(base_rewards), where)
    if result.nan_members:
      warnings.warn(f"{len(result.nan_members)} member(s) scored NaN and rank last: "
                    f"{result.nan_members[:10]}", RuntimeWarning, stacklevel=2)
    if out is not None:
      result.save(out, save_params=save_params)
    return result


def _progress(total: int, enabled: bool):
  if not enabled:
    return None
  from tqdm.auto import tqdm
  return tqdm(total=total, unit="member", desc="population", dynamic_ncols=True)


def _advance(bar, n_done: int, rewards_so_far: np.ndarray) -> None:
  if bar is None:
    return
  scores = rewards_so_far if rewards_so_far.ndim == 1 else rewards_so_far.mean(axis=1)
  bar.update(n_done)
  if np.any(~np.isnan(scores)):
    bar.set_postfix(best=f"{np.nanmax(scores):.4g}")
