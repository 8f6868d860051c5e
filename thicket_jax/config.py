"""The configuration of a RandOpt run."""

from __future__ import annotations

import dataclasses
import math
from typing import Any


@dataclasses.dataclass(frozen=True, kw_only=True)
class RandOptConfig:
  """What a RandOpt run does; saved with its results.

  Attributes:
    population: N, number of perturbed members.
    sigmas: the noise grid; each member gets one of these.
    sigma_assignment: "blocks" (contiguous equal blocks) or "random" (balanced, shuffled).
    top_ks: ensemble sizes to report; all are prefixes of one ranking.
    chunk_size: members per compiled call, and per saved block of scores.
    vmap_width: members evaluated side by side inside a call (memory ~ width).
    seed: the run key is `jax.random.key(seed)`.
  """
  population: int = 256
  sigmas: tuple[float, ...] = (5e-4, 1e-3, 2e-3)
  sigma_assignment: str = "blocks"
  top_ks: tuple[int, ...] = (1, 5, 10)
  chunk_size: int = 32
  vmap_width: int = 1
  seed: int = 0

  def __post_init__(self):
    object.__setattr__(self, "sigmas", tuple(float(s) for s in self.sigmas))
    object.__setattr__(self, "top_ks", tuple(int(k) for k in self.top_ks))
    if self.population < 1:
      raise ValueError(f"population must be >= 1, got {self.population}")
    if not self.sigmas:
      raise ValueError("sigmas is empty")
    for s in self.sigmas:
      if not math.isfinite(s) or s < 0:
        raise ValueError(f"sigmas must be finite and >= 0, got {s}")
    if self.sigma_assignment not in ("blocks", "random"):
      raise ValueError(f"sigma_assignment must be 'blocks' or 'random', got {self.sigma_assignment!r}")
    if not self.top_ks:
      raise ValueError("top_ks is empty")
    for k in self.top_ks:
      if not 1 <= k <= self.population:
        raise ValueError(f"top_ks: k={k} must be between 1 and population={self.population}")
    if self.chunk_size < 1 or self.vmap_width < 1:
      raise ValueError("chunk_size and vmap_width must be >= 1")

  @classmethod
  def tiny(cls) -> "RandOptConfig":
    """A few members, for tests."""
    return cls(population=12, sigmas=(1e-2, 2e-2), top_ks=(1, 3), chunk_size=4, seed=0)

  def to_dict(self) -> dict[str, Any]:
    return dataclasses.asdict(self)

  @classmethod
  def from_dict(cls, d: dict[str, Any]) -> "RandOptConfig":
    return cls(**d)
