"""Custom tasks from a JSONL file: one {"question": ..., "answer": ...} object per line."""

from __future__ import annotations

import json
from pathlib import Path

from thicket_jax.tasks.base import Example, Task
from thicket_jax.tasks.gsm8k import GSM8K
from thicket_jax.tasks.numbers import normalise_number


def read_jsonl(path: str | Path) -> list[Example]:
  """Reads question/answer pairs; a malformed line raises with its line number."""
  path = Path(path)
  if not path.exists():
    raise FileNotFoundError(f"no such JSONL file: {path}")
  out = []
  with open(path) as f:
    for n, line in enumerate(f, 1):
      if not line.strip():
        continue
      try:
        row = json.loads(line)
      except json.JSONDecodeError as e:
        raise ValueError(f"{path}:{n}: not valid JSON ({e.msg})") from None
      if not isinstance(row, dict) or "question" not in row or "answer" not in row:
        raise ValueError(f"{path}:{n}: each line needs 'question' and 'answer' fields")
      out.append(Example(question=str(row["question"]), answer=str(row["answer"]).strip(),
                         meta={"line": n}))
  if not out:
    raise ValueError(f"{path} holds no examples")
  return out


class JsonlTask(Task):
  """Numeric answers are compared as numbers ('#### N' or the last number); others as text
  (the line after 'Answer:' or the last line, case- and space-insensitive)."""

  def __init__(self, path: str | Path):
    self.path = Path(path)
    self.name = f"jsonl:{self.path}"
    self.examples = read_jsonl(self.path)
    self.numeric = all(normalise_number(ex.answer) is not None for ex in self.examples)
    if self.numeric:
      self.examples = [Example(ex.question, normalise_number(ex.answer), ex.meta) for ex in self.examples]
      self.instruction = GSM8K.instruction
    else:
      self.examples = [Example(ex.question, _text_key(ex.answer), ex.meta) for ex in self.examples]
      self.instruction = "End with the final answer on its own line as 'Answer: <answer>'."

  def extract(self, response: str, ex: Example | None = None) -> str | None:
    if self.numeric:
      return GSM8K().extract(response)
    lines = [line for line in response.strip().splitlines() if line.strip()]
    if not lines:
      return None
    for line in reversed(lines):
      if line.lower().lstrip().startswith("answer:"):
        return _text_key(line.split(":", 1)[1])
    return _text_key(lines[-1])


def _text_key(text: str) -> str:
  return " ".join(text.lower().strip().strip(".").split())
