"""`thicket run`: RandOpt on a language model and a task, end to end, resumable.

    out/run.json            the run's config (a rerun with another config is refused)
    out/population/         per-block member x example rewards on the selection set (resumable)
    out/test/               each evaluated member's answer keys on the test set (resumable)
    out/results.json        base, ensembles for every K, all members, per-sigma stats, density
    out/population.png      reward histogram with the base marked; accuracy against K
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable

import jax
import numpy as np

import thicket_jax as tj
from thicket_jax import distributed, plots, storage
from thicket_jax.population import round_up
from thicket_jax.tasks import Example, Task, load_task

ABSTAIN = -1


@dataclasses.dataclass(frozen=True, kw_only=True)
class RunConfig:
  """Everything that defines a `thicket run` (saved as out/run.json)."""
  model: str = "smollm2-135m-instruct"
  task: str = "gsm8k"
  population: int = 8
  sigmas: tuple[float, ...] = (5e-4, 1e-3, 2e-3)
  top_ks: tuple[int, ...] = (1, 3)
  train_examples: int = 24
  test_examples: int = 32
  max_new_tokens: int = 128
  seed: int = 0
  chunk_size: int = 1
  dtype: str = "float32"
  gsm8k_tfds_dir: str | None = None
  gsm8k_manual_dir: str | None = None

  def __post_init__(self):
    object.__setattr__(self, "sigmas", tuple(float(s) for s in self.sigmas))
    object.__setattr__(self, "top_ks", tuple(sorted({int(k) for k in self.top_ks})))
    self.randopt()  # validates population, sigmas, K <= N
    if self.max_new_tokens < 1:
      raise ValueError("max_new_tokens must be >= 1")

  def randopt(self) -> tj.RandOptConfig:
    return tj.RandOptConfig(population=self.population, sigmas=self.sigmas, top_ks=self.top_ks,
                            chunk_size=self.chunk_size, seed=self.seed)

  def to_dict(self) -> dict[str, Any]:
    return json.loads(json.dumps(dataclasses.asdict(self)))


class Evaluator:
  """Decodes generated ids and scores them against a task's examples (host side)."""

  def __init__(self, lm, task: Task, examples: list[Example]):
    self.lm, self.task, self.examples = lm, task, examples

  def batch(self):
    """Left-padded `(tokens_bp, valid_bp)` of the examples' prompts."""
    return self.lm.batch([self.task.messages(ex)[-1]["content"] for ex in self.examples])

  def texts(self, ids_bt) -> list[str]:
    return self.lm.decode(ids_bt)

  def rewards(self, ids_mbt: np.ndarray) -> np.ndarray:
    """[m, B, T] ids -> [m, B] rewards."""
    return np.asarray([[self.task.reward(t, ex) for t, ex in zip(self.texts(ids_bt), self.examples)]
                       for ids_bt in ids_mbt], np.float32)

  def keys(self, ids_bt) -> list[str | None]:
    return [self.task.extract(t, ex) for t, ex in zip(self.texts(ids_bt), self.examples)]

  def accuracy(self, keys: list[str | None]) -> float:
    return float(np.mean([self.task.is_correct(k, ex) for k, ex in zip(keys, self.examples)]))


def vote(keys_kn: list[list[str | None]]) -> list[str | None]:
  """Majority vote of K ranked members' string keys per example (on device, via integer ids)."""
  ids: dict[str, int] = {}
  table = np.asarray([[ABSTAIN if k is None else ids.setdefault(k, len(ids)) for k in row] for row in keys_kn],
                     np.int32)
  winners = np.asarray(tj.majority_vote(table, ABSTAIN))
  names = {v: k for k, v in ids.items()}
  return [None if w == ABSTAIN else names[int(w)] for w in winners]


def member_test_keys(lm, result, evaluator: Evaluator, members: list[int | None], out: Path | None,
                     max_new_tokens: int, progress: bool, mesh=None) -> dict:
  """Test-set answer keys of each member (None = the base model), saved one file per member.

  Members are decoded one per device group (`pop` axis) at a time, the base as sigma = 0.
  """
  tokens, valid = evaluator.batch()
  key = jax.random.key(result.config.seed)
  keys = {}
  todo = []
  for m in members:
    path = out / ("base.json" if m is None else f"member_{m:08d}.json") if out else None
    saved = storage.read_shared_json(path) if path is not None else None
    if saved is not None:
      keys[m] = saved["keys"]
    else:
      todo.append((m, path))
  bar = None
  if progress and todo:
    from tqdm.auto import tqdm
    bar = tqdm(total=len(todo), unit="member", desc="test set")
  step = 1 if mesh is None else mesh.shape["pop"]
  for start in range(0, len(todo), step):
    group = todo[start:start + step]
    sigmas = np.asarray([0.0 if m is None else result.sigmas_n[m] for m, _ in group], np.float32)
    ids = lm.population_ids(key, sigmas, tokens, valid, max_new_tokens=max_new_tokens,
                            member_ids=[0 if m is None else m for m, _ in group], chunk_size=step, mesh=mesh)
    for (m, path), ids_bt in zip(group, np.asarray(ids)):
      keys[m] = evaluator.keys(ids_bt)
      if path is not None:
        storage.write_json(path, {"member": m, "keys": keys[m]})
    if bar:
      bar.update(len(group))
  if bar:
    bar.close()
  return keys


def ensemble_table(result, keys: dict, evaluator: Evaluator, top_ks) -> list[dict]:
  rows = []
  order = [int(i) for i in result.ranking]
  for k in top_ks:
    members = order[:k]
    voted = vote([keys[m] for m in members])
    rows.append({"k": k, "test_accuracy": evaluator.accuracy(voted),
                 "mean_member_test_accuracy": float(np.mean([evaluator.accuracy(keys[m]) for m in members])),
                 "members": members})
  return rows


def run(cfg: RunConfig, out_dir: str | Path, progress: bool = True,
        on_block: Callable[[int, int], None] | None = None, log=print, model_devices: int = 1) -> dict:
  """Runs RandOpt end to end; see the module docstring for what it writes."""
  t0 = time.perf_counter()
  out = Path(out_dir)
  task, sel, test = load_task(cfg.task, cfg.train_examples, cfg.test_examples,
                              gsm8k_tfds_dir=cfg.gsm8k_tfds_dir, gsm8k_manual_dir=cfg.gsm8k_manual_dir)
  lm = tj.load_lm(cfg.model, dtype=cfg.dtype)
  storage.claim_dir(out, cfg.to_dict())  # only after the task and model loaded: a failed start writes nothing
  mesh = distributed.population_mesh(model_devices=model_devices)  # members over every device of every process
  devices = 1 if mesh is None else mesh.shape["pop"]
  progress = progress and distributed.is_writer()
  if not distributed.is_writer():
    log = lambda *a, **k: None  # noqa: E731 - the other processes stay quiet
  ro = cfg.randopt()
  if ro.chunk_size % devices:  # a block fills every device
    ro = dataclasses.replace(ro, chunk_size=round_up(ro.chunk_size, devices))
  log(f"{cfg.model}: {lm.n_params() / 1e6:.1f}M params; {cfg.task}: {len(sel)} selection, {len(test)} test "
      f"examples; N={cfg.population}, sigmas={list(cfg.sigmas)}")

  sel_eval = Evaluator(lm, task, sel)
  tokens, valid = sel_eval.batch()
  t_pop = time.perf_counter()
  result = tj.RandOpt(ro).fit(
      lm.greedy_fn_for(tokens, valid, cfg.max_new_tokens), lm.params, tokens, valid, out_dir=out / "population",
      mesh=mesh, progress=progress, on_block=on_block, host_reward=sel_eval.rewards, save_params=False)
  pop_seconds = time.perf_counter() - t_pop

  test_eval = Evaluator(lm, task, test)
  members = [None] + [int(i) for i in result.ranking[:max(cfg.top_ks)]]
  keys = member_test_keys(lm, result, test_eval, members, out / "test", cfg.max_new_tokens, progress, mesh)
  results = summarise(cfg, result, keys, test_eval, task)
  results["timing"] = {"population_seconds": pop_seconds, "total_seconds": time.perf_counter() - t0,
                       "members_per_second": cfg.population / max(pop_seconds, 1e-9),
                       "devices": jax.device_count(), "model_devices": model_devices,
                       "processes": jax.process_count()}
  storage.write_json(out / "results.json", results)
  if not distributed.is_writer():
    return results
  plots.population_figure(out / "population.png", result.scores_n, result.base_score,
                          [e["k"] for e in results["ensemble"]],
                          [e["test_accuracy"] for e in results["ensemble"]], results["base"]["test_accuracy"],
                          score_label=f"{cfg.task} selection reward", title=f"{cfg.model} on {cfg.task}")
  return results


def summarise(cfg: RunConfig, result, keys: dict, test_eval: Evaluator, task: Task) -> dict:
  scores = result.scores_n
  base = result.base_score
  margins = (0.0, 0.02, 0.05, 0.1)
  per_sigma = {}
  for s in sorted(set(result.sigmas_n.tolist())):
    v = scores[result.sigmas_n == s]
    per_sigma[f"{s:g}"] = {"members": int(v.size), "mean_reward": float(np.nanmean(v)),
                           "std_reward": float(np.nanstd(v)), "max_reward": float(np.nanmax(v)),
                           "density_0": float(np.mean(v >= base))}
  return {
      "config": cfg.to_dict(),
      "base": {"train_reward": base,
               "train_accuracy": float(np.mean(np.asarray(result.base_rewards) >= 1.0)),
               "test_accuracy": test_eval.accuracy(keys[None])},
      "ensemble": ensemble_table(result, keys, test_eval, cfg.top_ks),
      "members": [{"id": m["id"], "sigma": m["sigma"], "train_reward": m["score"], "rank": m["rank"]}
                  for m in result.members_table()],
      "per_sigma": per_sigma,
      "density": {f"{m:g}": float(d) for m, d in zip(margins, tj.solution_density(scores, base, margins))},
      "nan_members": result.nan_members,
  }


def evaluate_run(run_dir: str | Path, task_name: str | None = None, test_examples: int | None = None,
                 top_ks=None, progress: bool = True) -> dict:
  """Re-evaluates a finished run's ensembles on a task's test set (`thicket eval`)."""
  run_dir = Path(run_dir)
  if not (run_dir / "run.json").exists() or not (run_dir / "population" / "rewards.json").exists():
    raise FileNotFoundError(f"{run_dir} is not a finished thicket run (no run.json / population results)")
  cfg = RunConfig(**storage.read_json(run_dir / "run.json"))
  name = task_name or cfg.task
  n_test = test_examples or cfg.test_examples
  task, _, test = load_task(name, cfg.train_examples, n_test, gsm8k_tfds_dir=cfg.gsm8k_tfds_dir,
                            gsm8k_manual_dir=cfg.gsm8k_manual_dir)
  lm = tj.load_lm(cfg.model, dtype=cfg.dtype)
  result = tj.RandOptResult.load(run_dir / "population", params=lm.params)
  ks = tuple(top_ks or cfg.top_ks)
  if max(ks) > cfg.population:
    raise ValueError(f"top-k {max(ks)} is larger than the population (N={cfg.population})")
  test_eval = Evaluator(lm, task, test)
  same = name == cfg.task and n_test == cfg.test_examples
  cache = run_dir / "test" if same else run_dir / f"eval_{name.replace(':', '_').replace('/', '_')}_{n_test}"
  members = [None] + [int(i) for i in result.ranking[:max(ks)]]
  keys = member_test_keys(lm, result, test_eval, members, cache, cfg.max_new_tokens, progress)
  report = {"task": name, "test_examples": len(test), "base_test_accuracy": test_eval.accuracy(keys[None]),
            "ensemble": ensemble_table(result, keys, test_eval, ks)}
  storage.write_json(cache / "eval.json", report)
  return report


def print_summary(results: dict, file=None) -> None:
  file = file or sys.stdout
  b = results["base"]
  print(f"\nbase: selection accuracy {b['train_accuracy']:.3f} (reward {b['train_reward']:.3f}), "
        f"test accuracy {b['test_accuracy']:.3f}", file=file)
  print(f"members >= base on selection: {results['density']['0']:.1%}", file=file)
  print("   K | ensemble test acc | mean member test acc", file=file)
  for e in results["ensemble"]:
    print(f"{e['k']:4d} | {e['test_accuracy']:17.3f} | {e['mean_member_test_accuracy']:.3f}", file=file)
