"""The paper's controlled experiment: 1D signals in three regimes (needle, thicket, plateau).

    python experiments/signals_1d.py --out runs/signals_1d           # full run (<10 min, 2 CPU cores)
    python experiments/signals_1d.py --out runs/signals_quick --quick

An MLP (width 128, depth 5, Flax NNX) predicts the next value of a curve from the
previous 10 and is rolled out for 60 steps. Regimes: `untrained` (random init),
`mixed` (pretrained with Adam on all six families), `lines` (pretrained on lines
only). For each regime RandOpt scores N members in one population computation
(reward = minus the rollout MSE of each selection curve of the target family),
keeps the top K and averages their rollouts; a gradient baseline fine-tunes with
Adam on the same curves with the same compute (forward + backward counted as three
forward passes). Writes
`OUT/results.json` and three PNG figures. Resumable: the population scores of
each regime are saved block by block under `OUT/<regime>/`.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

import thicket_jax as tj
from thicket_jax import storage
from thicket_jax.data import signals
from thicket_jax.models import mlp

REGIMES = ("untrained", "mixed", "lines")


@dataclasses.dataclass(frozen=True, kw_only=True)
class SignalsConfig:
  """Sizes of the experiment (defaults: the paper's, see DESIGN.md section 1)."""
  context: int = 10
  future: int = 60
  width: int = 128
  depth: int = 5
  pretrain_steps: int = 1000
  pretrain_batch: int = 256
  pretrain_windows: int | None = None  # None: every next-step target of each curve
  target: str = "sinusoid"
  population: int = 1000
  selection_curves: int = 1024
  test_curves: int = 256
  top_ks: tuple[int, ...] = (1, 5, 10)
  sigma_grid_untrained: tuple[float, ...] = (0.02, 0.05, 0.1)
  sigma_grid_pretrained: tuple[float, ...] = (0.001, 0.002, 0.005, 0.01)
  grid_population: int = 60
  grid_curves: int = 256
  margins: tuple[float, ...] = (0.0, 0.01, 0.05, 0.1, 0.25)  # relative MSE improvements
  discordance_curves: int = 128
  finetune_lr: float = 1e-4
  finetune_batch_curves: int = 1024
  finetune_steps: int | None = None  # None: match RandOpt's compute (see run_regime)
  chunk_size: int = 100
  seed: int = 0

  @classmethod
  def quick(cls) -> "SignalsConfig":
    return cls(pretrain_steps=60, population=48, selection_curves=64, test_curves=32,
               grid_population=8, grid_curves=32, discordance_curves=16, chunk_size=16,
               finetune_steps=20, top_ks=(1, 5))


# --- data and model ---------------------------------------------------------------------------

def split_curves(curves, context):
  return curves[:, :context], curves[:, context:]


def windows(curves, context):
  """Teacher-forcing pairs: inputs [B * T, context], targets [B * T]."""
  t = curves.shape[1] - context
  idx = jnp.arange(t)[:, None] + jnp.arange(context)[None, :]
  return curves[:, idx].reshape(-1, context), curves[:, context:].reshape(-1)


def pretrain(apply, params, cfg: SignalsConfig, families, key):
  """Adam 1e-3, `pretrain_steps` steps, batches of fresh curves, next-step MSE on their windows."""
  opt = optax.adam(1e-3)

  def loss(p, curves, k):
    x, y = windows(curves, cfg.context)  # [B * T, context]
    if cfg.pretrain_windows is not None:  # keep that many random windows per curve
      t = cfg.future
      pick = (jnp.arange(curves.shape[0])[:, None] * t
              + jax.random.randint(k, (curves.shape[0], cfg.pretrain_windows), 0, t)).reshape(-1)
      x, y = x[pick], y[pick]
    return jnp.mean((apply(p, x) - y) ** 2)

  def step(carry, k):
    p, s = carry
    k_curves, k_windows = jax.random.split(k)
    curves = signals.sample(k_curves, cfg.pretrain_batch, families, cfg.context + cfg.future)
    value, g = jax.value_and_grad(loss)(p, curves, k_windows)
    u, s = opt.update(g, s, p)
    return (optax.apply_updates(p, u), s), value

  (params, _), losses = jax.jit(lambda p, ks: jax.lax.scan(step, (p, opt.init(p)), ks))(
      params, jax.random.split(key, cfg.pretrain_steps))
  return params, np.asarray(losses)


def finetune(apply, params, cfg: SignalsConfig, curves, steps, key):
  """Adam fine-tuning on the selection curves (teacher-forced next-step MSE), minibatches of curves."""
  opt = optax.adam(cfg.finetune_lr)
  b = min(cfg.finetune_batch_curves, curves.shape[0])

  def step(carry, k):
    p, s = carry
    batch = curves[jax.random.choice(k, curves.shape[0], (b,), replace=False)]
    x, y = windows(batch, cfg.context)
    value, g = jax.value_and_grad(lambda p: jnp.mean((apply(p, x) - y) ** 2))(p)
    u, s = opt.update(g, s, p)
    return (optax.apply_updates(p, u), s), value

  (params, _), losses = jax.jit(lambda p, ks: jax.lax.scan(step, (p, opt.init(p)), ks))(
      params, jax.random.split(key, steps))
  return params, np.asarray(losses)


# --- experiment -------------------------------------------------------------------------------

class Problem:
  """Pure functions of one regime's model: rollout and per-curve rewards."""

  def __init__(self, apply, cfg: SignalsConfig):
    self.apply, self.cfg = apply, cfg

  def predict(self, params, context_bc):
    """Rollout [B, future]."""
    return mlp.rollout(self.apply, params, context_bc, self.cfg.future)

  def reward(self, params, context_bc, future_bt):
    """Minus the rollout MSE of each curve, [B] (NaN/inf -> -inf: such members rank last)."""
    mse = jnp.mean((self.predict(params, context_bc) - future_bt) ** 2, axis=1)
    return jnp.where(jnp.isfinite(mse), -mse, -jnp.inf)


def mse_stats(pred_bt, future_bt):
  per_curve = np.mean((np.asarray(pred_bt, np.float64) - np.asarray(future_bt)) ** 2, axis=1)
  return float(per_curve.mean()), float(per_curve.std(ddof=1) / np.sqrt(len(per_curve)))


def choose_sigma(problem, params, grid, cfg, ctx, fut, out_dir):
  """Small grid: `grid_population` members per sigma; best mean reward of the top-K_max wins."""
  rows = []
  k = min(max(cfg.top_ks), cfg.grid_population)
  for i, sigma in enumerate(grid):
    rc = tj.RandOptConfig(population=cfg.grid_population, sigmas=(sigma,), top_ks=(k,),
                          chunk_size=cfg.chunk_size, seed=cfg.seed + 17 + i)
    res = tj.RandOpt(rc).fit(problem.reward, params, ctx, fut, progress=False,
                             out_dir=out_dir / f"sigma_{sigma:g}")
    top = res.scores_n[res.top_k(k)]
    rows.append({"sigma": sigma, f"top{k}_mean_mse": float(-top.mean()),
                 "density_0": float(res.density()[0])})
  best = min(rows, key=lambda r: r[f"top{k}_mean_mse"])
  return best["sigma"], rows


def run_regime(name, cfg: SignalsConfig, out: Path, data, log):
  t0 = time.perf_counter()
  model = mlp.MLP(cfg.context, width=cfg.width, depth=cfg.depth, rngs=nnx.Rngs(cfg.seed))
  apply, params = mlp.split(model)
  problem = Problem(apply, cfg)
  record = {}
  if name != "untrained":
    families = signals.FAMILIES if name == "mixed" else ("line",)
    params, losses = pretrain(apply, params, cfg, families, jax.random.key(cfg.seed + 1))
    record["pretrain_final_loss"] = float(losses[-20:].mean())
  log(f"[{name}] pretrained ({time.perf_counter() - t0:.0f} s)")

  (ctx_sel, fut_sel), (ctx_test, fut_test) = data["selection"], data["test"]
  grid = cfg.sigma_grid_untrained if name == "untrained" else cfg.sigma_grid_pretrained
  sigma, grid_rows = choose_sigma(problem, params, grid, cfg, ctx_sel[:cfg.grid_curves],
                                  fut_sel[:cfg.grid_curves], out / name / "grid")
  record.update(sigma=sigma, sigma_grid=grid_rows)
  log(f"[{name}] sigma {sigma:g} chosen from {list(grid)} ({time.perf_counter() - t0:.0f} s)")

  rc = tj.RandOptConfig(population=cfg.population, sigmas=(sigma,), top_ks=cfg.top_ks,
                        chunk_size=cfg.chunk_size, seed=cfg.seed)
  t_pop = time.perf_counter()
  res = tj.RandOpt(rc).fit(problem.reward, params, ctx_sel, fut_sel, out_dir=out / name / "randopt",
                           progress=sys.stderr.isatty())
  record["population_seconds"] = time.perf_counter() - t_pop
  sel_mse_n = -res.scores_n
  base_sel_mse = -res.base_score
  margins = np.asarray(cfg.margins)
  with np.errstate(invalid="ignore"):
    density = [float(np.mean(sel_mse_n <= (1 - m) * base_sel_mse)) for m in margins]
  record.update(
      base_selection_mse=base_sel_mse,
      density={f"{m:g}": d for m, d in zip(margins, density)}, density_0=density[0],
      member_selection_mse=[float(v) for v in sel_mse_n])

  base_pred = problem.predict(params, ctx_test)
  record["base_test_mse"], record["base_test_mse_se"] = mse_stats(base_pred, fut_test)
  best = res.member_params(int(res.ranking[0]))
  top1_pred = problem.predict(best, ctx_test)
  record["top1_test_mse"], record["top1_test_mse_se"] = mse_stats(top1_pred, fut_test)
  ensembles, ens_pred = {}, None
  for k in cfg.top_ks:
    ens_pred = res.predict(problem.predict, ctx_test, k=k, reduce="mean")
    m, se = mse_stats(ens_pred, fut_test)
    ensembles[str(k)] = {"test_mse": m, "test_mse_se": se}
  record["ensemble"] = ensembles
  record["ensemble_k"] = max(cfg.top_ks)
  record["ensemble_test_mse"] = ensembles[str(max(cfg.top_ks))]["test_mse"]
  record["ensemble_test_mse_se"] = ensembles[str(max(cfg.top_ks))]["test_mse_se"]
  log(f"[{name}] RandOpt N={cfg.population} done ({time.perf_counter() - t0:.0f} s)")

  # Gradient baseline with the same compute as the population: RandOpt runs N x curves x future
  # forward passes of the MLP; an Adam step on b curves costs b x future forward passes plus a
  # backward pass (~2 forward passes), i.e. 3 forward-pass equivalents per row.
  fwd_randopt = cfg.population * cfg.selection_curves * cfg.future
  b = min(cfg.finetune_batch_curves, cfg.selection_curves)
  steps = cfg.finetune_steps or max(1, fwd_randopt // (3 * b * cfg.future))
  tuned, ft_losses = finetune(apply, params, cfg, jnp.concatenate([ctx_sel, fut_sel], 1), steps,
                              jax.random.key(cfg.seed + 2))
  m, se = mse_stats(problem.predict(tuned, ctx_test), fut_test)
  record["gradient_baseline"] = {
      "optimizer": f"adam lr={cfg.finetune_lr:g}", "steps": steps, "batch_curves": b,
      "forward_passes": steps * b * cfg.future, "forward_pass_equivalents": 3 * steps * b * cfg.future,
      "randopt_forward_passes": fwd_randopt,
      "test_mse": m, "test_mse_se": se, "final_train_loss": float(ft_losses[-10:].mean())}
  log(f"[{name}] gradient baseline {steps} steps ({time.perf_counter() - t0:.0f} s)")
  record["wall_seconds"] = time.perf_counter() - t0
  preds = {"base": np.asarray(base_pred), "top1": np.asarray(top1_pred), "ensemble": np.asarray(ens_pred)}
  return record, res, params, problem, preds


def discordance(problem, res, cfg, out: Path):
  """Scores the population of a regime on every family; D over the N x M percentile-rank matrix."""
  key = jax.random.key(cfg.seed + 99)
  cols = {}
  for i, fam in enumerate(signals.FAMILIES):
    curves = signals.sample(jax.random.fold_in(key, i), cfg.discordance_curves, (fam,),
                            cfg.context + cfg.future)
    ctx, fut = split_curves(curves, cfg.context)
    rewards = tj.score_population(problem.reward, res.base_params, jax.random.key(res.config.seed),
                                  res.sigmas_n, ctx, fut, chunk_size=cfg.chunk_size)
    cols[fam] = np.asarray(rewards).mean(axis=1)
  scores_nm = np.stack([cols[f] for f in signals.FAMILIES], axis=1)
  finite = np.all(np.isfinite(scores_nm), axis=1)
  best_by_family = {f: int(np.argmax(np.where(finite, cols[f], -np.inf))) for f in signals.FAMILIES}
  return {"families": list(signals.FAMILIES), "curves_per_family": cfg.discordance_curves,
          "members_used": int(finite.sum()), "D": tj.spectral_discordance(scores_nm[finite]),
          "best_member_by_family": best_by_family,
          "distinct_best_members": len(set(best_by_family.values()))}


# --- figures ----------------------------------------------------------------------------------

def figures(out: Path, results, preds, data, cfg):
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  colors = {"untrained": "#8c8c8c", "mixed": "#4c72b0", "lines": "#dd8452"}
  fig, ax = plt.subplots(figsize=(5.5, 4))
  for name in REGIMES:
    d = results["regimes"][name]["density"]
    ms = [float(m) for m in d]
    ax.plot([100 * m for m in ms], [max(v, 1e-4) for v in d.values()], "o-", color=colors[name],
            label=f"{name} (sigma={results['regimes'][name]['sigma']:g})")
  ax.set_yscale("log")
  ax.set_xlabel("margin m: selection MSE at least m% below the base")
  ax.set_ylabel("solution density delta(m)")
  ax.set_title(f"target: {cfg.target}, N={cfg.population}")
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(out / "density.png", dpi=120)
  plt.close(fig)

  ctx_test, fut_test = data["test"]
  x = np.asarray(signals.grid(cfg.context + cfg.future))
  fig, axes = plt.subplots(len(REGIMES), 3, figsize=(12, 8), sharex=True)
  for r, name in enumerate(REGIMES):
    for c in range(3):
      ax = axes[r, c]
      truth = np.concatenate([np.asarray(ctx_test[c]), np.asarray(fut_test[c])])
      ax.plot(x, truth, "k-", lw=2, label="truth")
      ax.axvline(x[cfg.context - 1], color="k", ls=":", lw=0.8)
      for label, style in (("base", "--"), ("top1", "-."), ("ensemble", "-")):
        ax.plot(x[cfg.context:], preds[name][label][c], style, label=label)
      ax.set_ylim(truth.min() - 1, truth.max() + 1)
      if c == 0:
        ax.set_ylabel(name)
  axes[0, 0].legend(fontsize=7)
  fig.suptitle(f"rollouts on held-out {cfg.target} curves (ensemble K={max(cfg.top_ks)})")
  fig.tight_layout()
  fig.savefig(out / "predictions.png", dpi=110)
  plt.close(fig)

  fig, axes = plt.subplots(1, len(REGIMES), figsize=(13, 3.6))
  for ax, name in zip(axes, REGIMES):
    reg = results["regimes"][name]
    v = np.asarray(reg["member_selection_mse"])
    v = v[np.isfinite(v)]
    hi = np.quantile(v, 0.98) if len(v) else 1.0
    ax.hist(np.clip(v, None, hi), bins=40, color=colors[name], alpha=0.85)
    ax.axvline(reg["base_selection_mse"], color="#c44e52", lw=2, label="base")
    ax.set_title(f"{name}: delta(0) = {reg['density_0']:.1%}")
    ax.set_xlabel("member selection MSE (clipped at the 98th pct.)")
    ax.legend()
  fig.tight_layout()
  fig.savefig(out / "histograms.png", dpi=110)
  plt.close(fig)


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument("--out", required=True, help="output directory")
  ap.add_argument("--quick", action="store_true", help="tiny sizes (the test suite runs this)")
  ap.add_argument("--target", default=None, help=f"target family, one of {signals.FAMILIES}")
  args = ap.parse_args(argv)
  cfg = SignalsConfig.quick() if args.quick else SignalsConfig()
  if args.target:
    if args.target not in signals.FAMILIES:
      ap.error(f"--target must be one of {signals.FAMILIES}")
    cfg = dataclasses.replace(cfg, target=args.target)
  out = Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  t0 = time.perf_counter()
  log = lambda msg: print(f"{time.perf_counter() - t0:6.0f}s {msg}", flush=True)

  length = cfg.context + cfg.future
  key = jax.random.key(cfg.seed + 1234)
  sel = signals.sample(jax.random.fold_in(key, 0), cfg.selection_curves, (cfg.target,), length)
  test = signals.sample(jax.random.fold_in(key, 1), cfg.test_curves, (cfg.target,), length)
  data = {"selection": split_curves(sel, cfg.context), "test": split_curves(test, cfg.context)}

  results = {"config": dataclasses.asdict(cfg), "regimes": {}, "jax": jax.__version__}
  preds = {}
  for name in REGIMES:
    record, res, params, problem, preds[name] = run_regime(name, cfg, out, data, log)
    results["regimes"][name] = record
    if name == "mixed":
      results["discordance"] = discordance(problem, res, cfg, out)
      log(f"[mixed] discordance D = {results['discordance']['D']:.3f}")
    storage.write_json(out / "results.json", results)  # partial results survive an interruption
  results["wall_seconds"] = time.perf_counter() - t0
  storage.write_json(out / "results.json", results)
  figures(out, results, preds, data, cfg)

  print(f"\n{'regime':10s} {'sigma':>7s} {'delta(0)':>9s} {'base MSE':>17s} {'top-1 MSE':>17s} "
        f"{'top-' + str(max(cfg.top_ks)) + ' ens. MSE':>17s} {'Adam MSE':>17s}")
  for name, r in results["regimes"].items():
    g = r["gradient_baseline"]
    print(f"{name:10s} {r['sigma']:7g} {r['density_0']:9.1%} "
          f"{r['base_test_mse']:9.4f} ± {r['base_test_mse_se']:.4f} "
          f"{r['top1_test_mse']:9.4f} ± {r['top1_test_mse_se']:.4f} "
          f"{r['ensemble_test_mse']:9.4f} ± {r['ensemble_test_mse_se']:.4f} "
          f"{g['test_mse']:9.4f} ± {g['test_mse_se']:.4f}")
  print(f"spectral discordance (mixed, {len(signals.FAMILIES)} families): {results['discordance']['D']:.3f}")
  print(f"wrote {out}/results.json, density.png, predictions.png, histograms.png "
        f"({results['wall_seconds']:.0f} s)")


if __name__ == "__main__":
  main()
