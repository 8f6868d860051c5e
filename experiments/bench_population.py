"""Population scoring speed and memory against the base model and the materialising way.

    python experiments/bench_population.py            # full table (~3 min on 2 CPU cores)
    python experiments/bench_population.py --quick    # small sizes, for a smoke test

Workload: an MLP with ~1M parameters (256-1024-512-256-10) scored by per-example
log-likelihood on 1024 examples. Prints one table measured in one run:
  * population efficiency = N * t(base once) / t(score_population of N);
  * time of the materialising way (evosax style: an (N, D) noise matrix, vmap over
    flat params) on the same workload;
  * peak memory (resident set of a fresh process running only that computation,
    and XLA's temp allocation of the compiled program) at N=256 and N=1024 with the
    same chunk size, and of the materialising way at N=512.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

import thicket_jax as tj
from thicket_jax import noise as noise_mod

SIZES = (256, 1024, 512, 256, 10)


def init_mlp(key, sizes=SIZES):
  keys = jax.random.split(key, len(sizes) - 1)
  return {f"layer{i}": {"w": jax.random.normal(k, (a, b)) / np.sqrt(a), "b": jnp.zeros(b)}
          for i, (k, a, b) in enumerate(zip(keys, sizes[:-1], sizes[1:]))}


def log_likelihood(params, x, y):
  """Per-example log p(y | x), [n]."""
  h = x
  n = len(params)
  for i in range(n):
    h = h @ params[f"layer{i}"]["w"] + params[f"layer{i}"]["b"]
    if i < n - 1:
      h = jax.nn.relu(h)
  return jnp.take_along_axis(jax.nn.log_softmax(h), y[:, None], axis=1)[:, 0]


def data(n_examples=1024):
  x = jax.random.normal(jax.random.key(1), (n_examples, SIZES[0]))
  y = jax.random.randint(jax.random.key(2), (n_examples,), 0, SIZES[-1])
  return x, y


def materialising_population(params, key, sigmas_n, x, y):
  """evosax-style: (N, D) noise matrix, population of flat vectors, vmap(unravel)."""
  flat, unravel = ravel_pytree(params)
  noise_nd = jax.random.normal(key, (sigmas_n.shape[0], flat.shape[0]))
  pop_nd = flat[None] + sigmas_n[:, None] * noise_nd
  return jax.vmap(lambda f: log_likelihood(unravel(f), x, y))(pop_nd)


def best_time(fn, repeats):
  jax.block_until_ready(fn())  # compile + warm up
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    times.append(time.perf_counter() - t0)
  return min(times)


def _peak_rss_mb() -> float:
  """High-water resident set of this process (VmHWM; unlike ru_maxrss, not inherited over exec)."""
  with open("/proc/self/status") as f:
    for line in f:
      if line.startswith("VmHWM:"):
        return int(line.split()[1]) / 1024
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_memory(kind: str, n: int, chunk: int) -> dict:
  """Runs in a fresh process: peak RSS and XLA temp bytes of one computation."""
  params, (x, y) = init_mlp(jax.random.key(0)), data()
  key, sig = jax.random.key(7), jnp.full((n,), 1e-3)
  before = _peak_rss_mb()
  if kind == "thicket":
    jax.block_until_ready(tj.score_population(log_likelihood, params, key, sig, x, y, chunk_size=chunk))
    from thicket_jax.population import _compiled_scorer
    compiled = _compiled_scorer(log_likelihood, None, 1, None, False).lower(
        params, key, np.arange(min(chunk, n), dtype=np.int32), np.asarray(sig[:chunk]), (x, y)).compile()
  else:
    fn = jax.jit(materialising_population)
    jax.block_until_ready(fn(params, key, sig, x, y))
    compiled = fn.lower(params, key, sig, x, y).compile()
  peak = _peak_rss_mb()
  analysis = compiled.memory_analysis()
  temp = getattr(analysis, "temp_size_in_bytes", float("nan")) if analysis else float("nan")
  return {"rss_peak_mb": peak, "rss_growth_mb": peak - before, "xla_temp_mb": temp / 2**20}


def memory_in_subprocess(kind, n, chunk):
  out = subprocess.run([sys.executable, __file__, "--memory", kind, str(n), str(chunk)],
                       capture_output=True, text=True, check=True)
  return json.loads(out.stdout.strip().splitlines()[-1])


def main():
  ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
  ap.add_argument("--memory", nargs=3, metavar=("KIND", "N", "CHUNK"), help=argparse.SUPPRESS)
  args = ap.parse_args()
  if args.memory:
    kind, n, chunk = args.memory
    print(json.dumps(measure_memory(kind, int(n), int(chunk))))
    return

  n_pop, chunk, n_big, n_mat, repeats = (16, 8, 64, 32, 1) if args.quick else (256, 64, 1024, 512, 3)
  params, (x, y) = init_mlp(jax.random.key(0)), data()
  n_params = sum(p.size for p in jax.tree.leaves(params))
  key, sigmas_n = jax.random.key(7), jnp.full((n_pop,), 1e-3)

  base = jax.jit(log_likelihood)
  t_base = best_time(lambda: base(params, x, y), repeats * 5)
  t_pop = best_time(lambda: tj.score_population(log_likelihood, params, key, sigmas_n, x, y,
                                                chunk_size=chunk), repeats)
  mat = jax.jit(materialising_population)
  t_mat = best_time(lambda: mat(params, key, sigmas_n, x, y), repeats)
  noise = jax.jit(lambda k: tj.perturb(params, k, 1e-3))
  t_noise = best_time(lambda: noise(key), repeats * 5)
  bits = jax.jit(lambda k: [noise_mod.uniform_bits(jax.random.fold_in(k, i), p.shape)
                            for i, p in enumerate(jax.tree.leaves(params))])
  t_bits = best_time(lambda: bits(key), repeats * 5)

  # The same at 4x the examples: noise is paid once per member, matmuls per example.
  x4, y4 = data(4 * x.shape[0])
  t_base4 = best_time(lambda: base(params, x4, y4), repeats * 5)
  t_pop4 = best_time(lambda: tj.score_population(log_likelihood, params, key, sigmas_n, x4, y4,
                                                 chunk_size=chunk), repeats)

  mem = {("thicket", n): memory_in_subprocess("thicket", n, chunk) for n in (n_pop, n_big)}
  mem[("materialising", n_mat)] = memory_in_subprocess("materialising", n_mat, chunk)

  print(f"# MLP {'-'.join(map(str, SIZES))}: {n_params / 1e6:.2f}M params, 1024 examples, "
        f"jax {jax.__version__}, {jax.devices()[0].platform} x{len(jax.devices())}")
  rows = [
      ("t(base model, 1024 examples)", f"{t_base * 1e3:.1f} ms", ""),
      ("t(perturb: noise for one member)", f"{t_noise * 1e3:.1f} ms", f"{t_noise / t_base:.2f} x base"),
      ("  of which threefry bits alone", f"{t_bits * 1e3:.1f} ms", f"{t_bits / t_base:.2f} x base"),
      (f"t(score_population), N={n_pop}, chunk={chunk}", f"{t_pop:.2f} s", ""),
      ("population efficiency N*t(base)/t(pop)", f"{n_pop * t_base / t_pop:.3f}", "goal >= 0.90"),
      ("  bound without overlap: t(base)/(t(base)+t(perturb))", f"{t_base / (t_base + t_noise):.3f}", ""),
      (f"population efficiency, {x4.shape[0]} examples", f"{n_pop * t_base4 / t_pop4:.3f}",
       "same model, 4x the examples"),
      (f"t(materialising way), N={n_pop}", f"{t_mat:.2f} s",
       f"thicket is {t_mat / t_pop:.2f}x faster (goal > 1)"),
  ]
  t_mat_n = memory_in_subprocess("thicket", n_mat, chunk)
  t_small, t_large = mem[("thicket", n_pop)], mem[("thicket", n_big)]
  m_mat = mem[("materialising", n_mat)]
  for kind, n in mem:
    m = mem[(kind, n)]
    rows.append((f"peak memory, {kind}, N={n}", f"{m['rss_peak_mb']:.0f} MB RSS",
                 f"XLA temp {m['xla_temp_mb']:.0f} MB"))
  rows += [
      (f"memory N={n_big} / N={n_pop} (same chunk)",
       f"{t_large['rss_peak_mb'] / t_small['rss_peak_mb']:.2f}x RSS",
       f"{t_large['xla_temp_mb'] / t_small['xla_temp_mb']:.2f}x XLA temp (goal <= 1.3)"),
      (f"memory thicket / materialising, N={n_mat}",
       f"{t_mat_n['rss_peak_mb'] / m_mat['rss_peak_mb']:.3f}x RSS",
       f"{t_mat_n['xla_temp_mb'] / m_mat['xla_temp_mb']:.3f}x XLA temp (goal <= 0.25)"),
  ]
  width = max(len(r[0]) for r in rows)
  print(f"| {'measure'.ljust(width)} | value | note |\n|{'-' * (width + 2)}|---|---|")
  for r in rows:
    print(f"| {r[0].ljust(width)} | {r[1]} | {r[2]} |")


if __name__ == "__main__":
  main()
