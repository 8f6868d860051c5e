"""Figures of a run (matplotlib, written as PNG)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np


def _pyplot():
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  return plt


def population_figure(path: str | Path, scores_n, base_score: float, ks: Sequence[int],
                      test_by_k: Sequence[float], base_test: float, *, score_label="selection reward",
                      test_label="test accuracy", title="") -> None:
  """Two panels: histogram of member scores with the base marked; test metric against K."""
  plt = _pyplot()
  fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 3.8))
  s = np.asarray(scores_n, np.float64)
  s = s[np.isfinite(s)]
  ax0.hist(s, bins=min(40, max(5, len(s) // 10)), color="#4c72b0", alpha=0.85)
  ax0.axvline(base_score, color="#c44e52", lw=2, label=f"base {base_score:.3g}")
  ax0.set_xlabel(score_label)
  ax0.set_ylabel("members")
  ax0.set_title(f"{len(s)} members, {np.mean(s >= base_score):.0%} >= base")
  ax0.legend()
  ax1.plot(list(ks), list(test_by_k), "o-", color="#4c72b0", label="RandOpt top-K ensemble")
  ax1.axhline(base_test, color="#c44e52", ls="--", label=f"base {base_test:.3g}")
  ax1.set_xscale("log")
  ax1.set_xticks(list(ks), [str(k) for k in ks])
  ax1.minorticks_off()
  ax1.set_xlabel("K (ensemble size)")
  ax1.set_ylabel(test_label)
  ax1.legend()
  if title:
    fig.suptitle(title)
  fig.tight_layout()
  Path(path).parent.mkdir(parents=True, exist_ok=True)
  fig.savefig(path, dpi=120)
  plt.close(fig)
