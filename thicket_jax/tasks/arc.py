"""ARC-Challenge / ARC-Easy: multiple choice; the answer is a choice letter."""

from __future__ import annotations

import re

from thicket_jax.tasks.base import Example, Task

_ANSWER_IS = re.compile(r"answer\s*(?:is|:)?\s*:?\s*\(?\b([A-E])\b\)?", re.I)
_LETTER = re.compile(r"(?:^|[\s(])([A-E])(?:[).:\s]|$)")


class ARC(Task):
  instruction = "Answer with the letter of the correct choice, as 'Answer: X'."

  def __init__(self, name: str = "arc_challenge"):
    self.name = name

  def extract(self, response: str, ex: Example | None = None) -> str | None:
    """The letter after 'answer is' / 'Answer:' (the last one), else the first standalone letter."""
    found = _ANSWER_IS.findall(response)
    if found:
      return found[-1].upper()
    m = _LETTER.search(response.strip())
    return m.group(1) if m else None
