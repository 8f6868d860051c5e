"""Multi-process runs: two JAX processes on one machine (jax.distributed over CPU) give the
results of one process; only process 0 writes; a rerun resumes from process 0's files."""

import json
import os
import socket
import subprocess
import sys

import pytest

from thicket_jax import distributed
from test_lm import random_lm
from lm_helpers import write_run_assets


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _env():
  env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_force_host_platform_device_count=1")
  env.pop("JAX_NUM_CPU_DEVICES", None)
  return env


@pytest.fixture(scope="module")
def run_args(tmp_path_factory):
  model, task = write_run_assets(tmp_path_factory.mktemp("model"), random_lm("llama", seed=5), 20)

  def args(out):
    return [sys.executable, "-m", "thicket_jax.cli", "run", "--model", model, "--task", task, "--population", "6", "--sigmas", "0.05,0.1", "--top-k", "1,3",
            "--train-examples", "4", "--test-examples", "4", "--max-new-tokens", "5", "--out", str(out),
            "--no-progress"]
  return args


def _two_processes(args):
  port = _free_port()
  procs = [subprocess.Popen(args + ["--coordinator-address", f"127.0.0.1:{port}", "--num-processes", "2",
                                    "--process-id", str(i)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
           for i in range(2)]
  outs = [p.communicate(timeout=600) for p in procs]
  for p, (out, err) in zip(procs, outs):
    assert p.returncode == 0, err[-3000:]
  return [o for o, _ in outs]


def _results(out):
  return json.loads((out / "results.json").read_text())


def test_two_processes_match_one_and_resume(run_args, tmp_path):
  one = subprocess.run(run_args(tmp_path / "one"), capture_output=True, text=True, env=_env(), timeout=600)
  assert one.returncode == 0, one.stderr[-3000:]
  stdout = _two_processes(run_args(tmp_path / "two"))
  assert "wrote" in stdout[0] and "wrote" not in stdout[1]  # only process 0 reports (and writes)
  assert "base:" not in stdout[1]

  r1, r2 = _results(tmp_path / "one"), _results(tmp_path / "two")
  assert r2["timing"]["processes"] == 2 and r2["timing"]["devices"] == 2
  assert r1["timing"]["processes"] == 1 and r1["timing"]["devices"] == 1
  assert r2["members"] == r1["members"]
  assert r2["ensemble"] == r1["ensemble"]
  assert r2["base"] == r1["base"]

  # Interrupted run: results, one population block and one member's test answers are gone.
  two = tmp_path / "two"
  blocks = sorted((two / "population" / "blocks").glob("members_*.json"))
  assert len(blocks) == 3                                    # blocks of 2: one member per device
  kept = {b: b.stat().st_mtime_ns for b in blocks[1:]}
  blocks[0].unlink()
  (two / "results.json").unlink()
  next(iter(sorted((two / "test").glob("member_*.json")))).unlink()
  _two_processes(run_args(two))
  assert {b: b.stat().st_mtime_ns for b in kept} == kept     # not recomputed: read by process 0, shared
  assert blocks[0].exists()
  r3 = _results(two)
  assert r3["members"] == r1["members"] and r3["ensemble"] == r1["ensemble"]


def test_single_process_helpers():
  assert distributed.is_writer()
  assert distributed.share({"a": [1, 2]}) == {"a": [1, 2]}
  assert distributed.initialize() is False or distributed.on_tpu_vm()


@pytest.mark.parametrize("kwargs, message", [
    ({"coordinator_address": "localhost:1234"}, "go together"),
    ({"coordinator_address": "localhost", "num_processes": 2, "process_id": 0}, "HOST:PORT"),
    ({"coordinator_address": "localhost:1", "num_processes": 2, "process_id": 2}, "not in"),
])
def test_initialize_rejects_bad_arguments(kwargs, message):
  with pytest.raises(ValueError, match=message):
    distributed.initialize(**kwargs)


def test_population_mesh_spans_devices():
  import jax
  mesh = distributed.population_mesh()
  assert (mesh is None) == (jax.device_count() == 1)
  assert distributed.population_mesh(jax.devices()[:1]) is None
  with pytest.raises(ValueError, match="must divide"):
    distributed.population_mesh(jax.devices()[:1], model_devices=2)
  if jax.device_count() > 1:
    assert mesh.shape["pop"] == jax.device_count()
