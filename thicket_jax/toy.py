"""A toy end-to-end RandOpt: an MLP classifier pretrained on one domain, adapted to a shifted one.

The source task is a 10-class mixture of Gaussians in 16-D; the target task is
the same classes seen through a random rotation and shift of the inputs. The
model is pretrained with optax on the source only; RandOpt then selects members
on a small target selection set and majority-votes their labels on a held-out
target test set.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

import thicket_jax as tj
from thicket_jax import plots, storage


@dataclasses.dataclass(frozen=True, kw_only=True)
class ToyConfig:
  """Sizes of the toy problem and of the RandOpt run on it."""
  dim: int = 16
  classes: int = 10
  hidden: int = 128
  pretrain_steps: int = 400
  shift: float = 1.0
  selection_examples: int = 256
  test_examples: int = 2048
  randopt: tj.RandOptConfig = tj.RandOptConfig(population=2000, sigmas=(0.02, 0.04, 0.08),
                                               top_ks=(1, 5, 10, 50), chunk_size=100, seed=0)

  @classmethod
  def tiny(cls) -> "ToyConfig":
    return cls(hidden=32, pretrain_steps=50, selection_examples=64, test_examples=128,
               randopt=tj.RandOptConfig(population=24, sigmas=(0.02, 0.04), top_ks=(1, 5),
                                        chunk_size=8, seed=0))

  def to_dict(self):
    return {**dataclasses.asdict(self), "randopt": self.randopt.to_dict()}


def _sampler(cfg: ToyConfig, key):
  k_centers, k_rot, k_shift = jax.random.split(key, 3)
  centers = 1.5 * jax.random.normal(k_centers, (cfg.classes, cfg.dim))
  q, r = jnp.linalg.qr(jnp.eye(cfg.dim) + cfg.shift / np.sqrt(cfg.dim) * jax.random.normal(k_rot, (cfg.dim, cfg.dim)))
  q = q * jnp.sign(jnp.diag(r))  # the rotation nearest to I + noise (no reflections)
  offset = cfg.shift * jax.random.normal(k_shift, (cfg.dim,))

  def sample(key, n, target: bool):
    ky, kx = jax.random.split(key)
    y = jax.random.randint(ky, (n,), 0, cfg.classes)
    x = centers[y] + jax.random.normal(kx, (n, cfg.dim))
    return (x @ q + offset if target else x), y
  return sample


def init_mlp(cfg: ToyConfig, key):
  sizes = (cfg.dim, cfg.hidden, cfg.hidden, cfg.classes)
  keys = jax.random.split(key, len(sizes) - 1)
  return [{"w": jax.random.normal(k, (a, b)) / np.sqrt(a), "b": jnp.zeros(b)}
          for k, a, b in zip(keys, sizes[:-1], sizes[1:])]


def logits(params, x):
  for i, layer in enumerate(params):
    x = x @ layer["w"] + layer["b"]
    if i < len(params) - 1:
      x = jax.nn.gelu(x)
  return x


def predict(params, x):
  """Labels [n] (int32)."""
  return jnp.argmax(logits(params, x), -1).astype(jnp.int32)


def correct(params, x, y):
  """Per-example reward: 1 if the label is right, [n]."""
  return (predict(params, x) == y).astype(jnp.float32)


def pretrain(cfg: ToyConfig, sample, key):
  """Adam 1e-3, batches of 256 fresh source examples."""
  params = init_mlp(cfg, key)
  opt = optax.adam(1e-3)
  state = opt.init(params)

  @jax.jit
  def step(params, state, key):
    x, y = sample(key, 256, False)
    loss, grads = jax.value_and_grad(
        lambda p: optax.softmax_cross_entropy_with_integer_labels(logits(p, x), y).mean())(params)
    updates, state = opt.update(grads, state)
    return optax.apply_updates(params, updates), state, loss

  for k in jax.random.split(key, cfg.pretrain_steps):
    params, state, _ = step(params, state, k)
  return params


def run(cfg: ToyConfig, out_dir: str | Path, progress: bool = True) -> dict:
  """Pretrains, runs RandOpt, evaluates base and ensembles; writes results.json and a PNG."""
  out = Path(out_dir)
  t0 = time.perf_counter()
  key_data, key_init, key_sel, key_test = jax.random.split(jax.random.key(cfg.randopt.seed + 1000), 4)
  sample = _sampler(cfg, key_data)
  params = pretrain(cfg, sample, key_init)
  x_sel, y_sel = sample(key_sel, cfg.selection_examples, True)
  x_test, y_test = sample(key_test, cfg.test_examples, True)
  result = tj.RandOpt(cfg.randopt).fit(correct, params, x_sel, y_sel, out_dir=out / "randopt",
                                       progress=progress)
  base_test = float(jnp.mean(correct(params, x_test, y_test)))
  ensemble = []
  for k in cfg.randopt.top_ks:
    labels = result.predict(predict, x_test, k=k, reduce="vote")
    best_alone = float(jnp.mean(correct(result.member_params(int(result.ranking[0])), x_test, y_test)))
    ensemble.append({"k": k, "test_accuracy": float(jnp.mean(labels == y_test)),
                     "top1_member_test_accuracy": best_alone})
  results = {
      "config": cfg.to_dict(),
      "base": {"train_accuracy": result.base_score, "test_accuracy": base_test,
               "source_test_accuracy": float(jnp.mean(correct(params, *sample(key_test, 2048, False))))},
      "ensemble": ensemble,
      "density": {str(m): float(d) for m, d in zip((0.0, 0.01, 0.05), result.density((0.0, 0.01, 0.05)))},
      "members": [{"id": m["id"], "sigma": m["sigma"], "train_reward": m["score"]}
                  for m in result.members_table()],
      "wall_s": time.perf_counter() - t0,
  }
  storage.write_json(out / "results.json", results)
  plots.population_figure(out / "population.png", result.scores_n, result.base_score,
                          [e["k"] for e in ensemble], [e["test_accuracy"] for e in ensemble], base_test,
                          score_label="selection accuracy", title="toy: shifted-domain classifier")
  return results
