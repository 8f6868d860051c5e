"""Files of a run: atomic JSON, orbax parameter checkpoints, content fingerprints.

In a multi-process run only process 0 writes (`write_json` is a no-op elsewhere), and
what a run reads back to resume goes through `read_shared_json`, so that every
process sees process 0's files.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import jax
import numpy as np

from thicket_jax import distributed


def write_json(path: Path, obj: Any) -> None:
  """Writes JSON atomically (temp file + rename): a crash leaves the old file or the new one.

  Only process 0 writes; on the other processes of a multi-process run this does nothing.
  """
  if not distributed.is_writer():
    return
  path = Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
  with os.fdopen(fd, "w") as f:
    json.dump(obj, f, indent=1, allow_nan=True)
  os.replace(tmp, path)


def read_json(path: Path) -> Any:
  with open(path) as f:
    return json.load(f)


def read_shared_json(path: Path) -> Any | None:
  """Process 0's copy of a JSON file (None if it has none), the same on every process."""
  path = Path(path)
  value = read_json(path) if distributed.is_writer() and path.exists() else None
  return distributed.share(value)


def fingerprint(tree: Any) -> str:
  """sha256 over a pytree's paths, shapes, dtypes and bytes (16 hex digits)."""
  h = hashlib.sha256()
  for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
    arr = np.asarray(jax.device_get(leaf))
    h.update(jax.tree_util.keystr(path).encode())
    h.update(f"{arr.shape}{arr.dtype}".encode())
    h.update(np.ascontiguousarray(arr).tobytes())
  return h.hexdigest()[:16]


def save_params(path: Path, params: Any) -> None:
  """Saves a parameter pytree as an orbax checkpoint at `path` (replaced if present)."""
  import orbax.checkpoint as ocp
  path = Path(path).absolute()
  with ocp.StandardCheckpointer() as ckptr:
    ckptr.save(path, params, force=True)
    ckptr.wait_until_finished()


def load_params(path: Path, like: Any | None = None) -> Any:
  """Restores an orbax checkpoint; `like` (a pytree of arrays) fixes structure and dtypes."""
  import orbax.checkpoint as ocp
  path = Path(path).absolute()
  if not path.exists():
    raise FileNotFoundError(f"no parameter checkpoint at {path}")
  with ocp.StandardCheckpointer() as ckptr:
    if like is None:
      return ckptr.restore(path)
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(np.shape(x), np.result_type(x)), like)
    return ckptr.restore(path, abstract)


def claim_dir(out: Path, run_id: dict, spec_name: str = "run.json") -> bool:
  """Marks `out` as holding the run `run_id`, or checks that it already does.

  Returns True when an existing run is resumed. Raises ValueError naming the fields
  that differ when `out` holds another run.
  """
  spec = Path(out) / spec_name
  run_id = json.loads(json.dumps(run_id))  # tuples -> lists, as read back from disk
  old = read_shared_json(spec)
  if old is None:
    write_json(spec, run_id)
    return False
  if old != run_id:
    diff = sorted(k for k in run_id if old.get(k) != run_id[k])
    raise ValueError(f"{out} holds a different run (differs in: {', '.join(diff)}); "
                     "use another output directory or delete it")
  return True
