"""GSM8K: grade-school math word problems; the answer is a number after '####'."""

from __future__ import annotations

import re

from thicket_jax.tasks.base import Example, Task
from thicket_jax.tasks.numbers import last_number, normalise_number

_HASHES = re.compile(r"####\s*([-$\d.,]+)")


def gold_answer(solution: str) -> str:
  """The normalised number after '####' in a GSM8K solution."""
  m = _HASHES.search(solution)
  if not m or normalise_number(m.group(1)) is None:
    raise ValueError(f"GSM8K solution has no '#### <number>' line: {solution[-80:]!r}")
  return normalise_number(m.group(1))


class GSM8K(Task):
  name = "gsm8k"
  instruction = "Solve the problem step by step. End with the final answer on its own line as '#### <number>'."

  def extract(self, response: str, ex: Example | None = None) -> str | None:
    """'#### N' if present (the last one), else the last number in the response."""
    found = _HASHES.findall(response)
    for candidate in reversed(found):
      n = normalise_number(candidate)
      if n is not None:
        return n
    return last_number(response)

  @staticmethod
  def example(question: str, solution: str, **meta) -> Example:
    return Example(question=question, answer=gold_answer(solution), meta=meta)
