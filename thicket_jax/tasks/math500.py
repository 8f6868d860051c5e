"""MATH-500: competition math; the answer is the last \\boxed{...}, normalised."""

from __future__ import annotations

import re

from thicket_jax.tasks.base import Example, Task
from thicket_jax.tasks.numbers import normalise_number


def last_boxed(text: str) -> str | None:
  """Content of the last \\boxed{...} (or \\fbox{...}), braces matched."""
  start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
  if start < 0:
    return None
  i = text.find("{", start)
  if i < 0:
    return None
  depth = 0
  for j in range(i, len(text)):
    depth += {"{": 1, "}": -1}.get(text[j], 0)
    if depth == 0:
      return text[i + 1:j]
  return None


def normalise_latex(answer: str) -> str:
  """Removes spacing, sizing and text macros so that equivalent spellings give one key."""
  s = answer.strip().strip("$")
  s = re.sub(r"\\text\{([^{}]*)\}", r"\1", s)
  s = re.sub(r"\\(left|right|!|,|;|quad|displaystyle)", "", s)
  s = s.replace("dfrac", "frac").replace("tfrac", "frac").replace("^\\circ", "").replace("^{\\circ}", "")
  s = s.replace("\\%", "").replace(" ", "").rstrip(".")
  s = re.sub(r"\\frac(\d)(\d)", r"\\frac{\1}{\2}", s)
  n = normalise_number(s)
  return n if n is not None else s


class Math500(Task):
  name = "math500"
  instruction = "Solve the problem. Put the final answer in \\boxed{}."

  def extract(self, response: str, ex: Example | None = None) -> str | None:
    boxed = last_boxed(response)
    return None if boxed is None else normalise_latex(boxed)

  @staticmethod
  def example(problem: str, answer: str, **meta) -> Example:
    return Example(question=problem, answer=normalise_latex(answer), meta=meta)
