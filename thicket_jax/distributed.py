"""Multi-host runs with JAX's own multi-controller runtime (`jax.distributed`).

Every process runs the same program. The population is sharded over the devices of
all processes (`population_mesh`); only scores and generated ids cross the network.
Process 0 is the only one that writes files; what it reads from disk (a resumed run's
blocks) is broadcast, so every process takes the same decisions even when the
workers do not share a filesystem (TPU VMs).
"""

from __future__ import annotations

import json
import os
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import AxisType, Mesh

from thicket_jax.population import MODEL_AXIS, POP_AXIS


def initialize(coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None) -> bool:
  """Starts `jax.distributed` when asked to, or on a multi-host TPU slice. Returns True if started.

  With no arguments it initialises only on a Cloud TPU VM (JAX then finds the
  coordinator, the number of workers and this worker's index from the TPU metadata);
  anywhere else a single process is left alone.
  """
  given = [coordinator_address is not None, num_processes is not None, process_id is not None]
  if any(given) and not all(given):
    raise ValueError("--coordinator-address, --num-processes and --process-id go together")
  if all(given):
    if num_processes < 1 or not 0 <= process_id < num_processes:
      raise ValueError(f"process id {process_id} is not in [0, {num_processes})")
    if ":" not in coordinator_address:
      raise ValueError(f"coordinator address must be HOST:PORT, got {coordinator_address!r}")
    jax.distributed.initialize(coordinator_address, num_processes, process_id)
    return True
  if on_tpu_vm():
    jax.distributed.initialize()
    return True
  return False


def on_tpu_vm() -> bool:
  """A Cloud TPU VM (TPU chips under /dev, or a GKE TPU worker's environment)."""
  return (any(os.path.exists(p) for p in ("/dev/accel0", "/dev/vfio/0"))
          or "TPU_WORKER_HOSTNAMES" in os.environ or "TPU_PROCESS_ADDRESSES" in os.environ)


def is_writer() -> bool:
  """True on the one process that writes results (process 0)."""
  return jax.process_index() == 0


def population_mesh(devices=None, model_devices: int = 1) -> Mesh | None:
  """The mesh of a run over every device of every process (None for one device).

  `pop` (members) spans all devices; with `model_devices` > 1 each member's weights are
  split over groups of that many devices (a `model` axis) and `pop` spans the groups.
  """
  devices = list(jax.devices() if devices is None else devices)
  if model_devices < 1 or len(devices) % model_devices:
    raise ValueError(f"model_devices={model_devices} must divide the {len(devices)} devices")
  if len(devices) == 1:
    return None
  if model_devices == 1:
    return Mesh(np.asarray(devices), (POP_AXIS,))
  grid = np.asarray(devices).reshape(len(devices) // model_devices, model_devices)
  return Mesh(grid, (POP_AXIS, MODEL_AXIS), axis_types=(AxisType.Auto, AxisType.Auto))


def share(value: Any) -> Any:
  """Process 0's JSON-serialisable `value`, on every process (identity with one process)."""
  if jax.process_count() == 1:
    return value
  data = np.frombuffer(json.dumps(value).encode(), np.uint8) if is_writer() else None
  size = int(multihost_utils.broadcast_one_to_all(np.asarray([0 if data is None else data.size], np.int32))[0])
  buf = np.asarray(multihost_utils.broadcast_one_to_all(np.zeros(size, np.uint8) if data is None else data))
  return json.loads(buf.tobytes().decode())
