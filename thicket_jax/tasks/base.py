"""The task protocol: prompts, answer extraction to a normalised vote key, rewards."""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True)
class Example:
  """One task example: the question shown to the model and the gold answer key."""
  question: str
  answer: str
  meta: dict[str, Any] = dataclasses.field(default_factory=dict)


class Task:
  """Base class of a task. Subclasses set `name`, `instruction` and `extract`.

  `extract(response) -> key | None` maps a model response to the normalised key
  that is majority-voted (None: the member abstains). `reward` is what selection
  maximises; `is_correct` is what accuracy counts.
  """
  name: str = "task"
  instruction: str = ""

  def messages(self, ex: Example) -> list[dict[str, str]]:
    content = f"{ex.question}\n\n{self.instruction}".strip() if self.instruction else ex.question
    return [{"role": "user", "content": content}]

  def prompt(self, ex: Example) -> str:
    """The user turn as plain text (for models without a chat template)."""
    return self.messages(ex)[-1]["content"]

  def extract(self, response: str, ex: Example | None = None) -> str | None:
    """The normalised vote key of a response (None: abstain). `ex` lets a task check validity."""
    raise NotImplementedError

  def is_correct(self, key: str | None, ex: Example) -> bool:
    return key is not None and key == ex.answer

  def reward(self, response: str, ex: Example) -> float:
    return float(self.is_correct(self.extract(response, ex), ex))
