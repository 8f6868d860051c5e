"""Population scoring and generation on whatever accelerator JAX finds (GPU, TPU, or CPU): one JSON.

    python experiments/bench_accelerator.py                          # SmolLM2-135M, defaults below
    python experiments/bench_accelerator.py --model PATH --population 64 --batch 32 --new-tokens 128

Measures, for the model on one device:
  scoring     teacher-forced log-likelihood of `batch` sequences of `seq-len` tokens by N members
              (`population_logprob`) against the base model's forward pass;
  generation  greedy decoding of `batch` chat prompts for `new-tokens` tokens by N members
              (`population_ids`) against the base model decoding them alone;
and prints tokens/s, efficiency = N x t(base) / t(N members) (1.0 = the population costs exactly N
base-model calls, the noise included), XLA memory per member in flight (temp memory of the compiled
population program at vmap width 2 minus width 1), and the largest number of members that fit side
by side on one device (`vmap_width`): (device memory - weights - the width-1 program) / per member.
The population size N itself is not limited by memory: members stream through in chunks.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os

import jax
import jax.numpy as jnp
import numpy as np

import thicket_jax as tj
from thicket_jax.lm import from_params
from thicket_jax.population import _compiled_scorer

from bench_lm import PROMPTS, best  # the same chat prompts and best-of-N timer as the decoding benchmark


def timed(fn, repeats: int) -> float:
  """Best wall time of `fn()` (its result awaited) over `repeats` runs after a warm-up."""
  return best(lambda: jax.block_until_ready(fn()), repeats)


def device_memory_bytes(device) -> int | None:
  stats = device.memory_stats() if hasattr(device, "memory_stats") else None
  if stats and stats.get("bytes_limit"):
    return int(stats["bytes_limit"])
  if device.platform == "cpu":
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
  return None


def temp_bytes(fn, params, key, n, args, width: int) -> int | None:
  compiled = _compiled_scorer(fn, None, width, None, False).lower(
      params, key, np.arange(n, dtype=np.int32), np.full(n, 1e-3, np.float32), args).compile()
  mem = compiled.memory_analysis()
  return None if mem is None else int(mem.temp_size_in_bytes)


def memory_row(fn, params, key, args, weights: int, device) -> dict:
  t1, t2 = temp_bytes(fn, params, key, 2, args, 1), temp_bytes(fn, params, key, 2, args, 2)
  row = {"xla_temp_bytes_width_1": t1, "xla_temp_bytes_width_2": t2}
  if t1 is None or t2 is None:
    return row
  per_member = max(t2 - t1, 1)
  row["memory_per_member_in_flight_bytes"] = per_member
  total = device_memory_bytes(device)
  if total is not None:
    row["device_memory_bytes"] = total
    row["max_members_in_flight_per_device"] = max(0, (total - weights - t1) // per_member + 1)
  return row


def main():
  ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument("--model", default="smollm2-135m-instruct")
  ap.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
  ap.add_argument("--population", type=int, default=None, help="N (default: 4 on CPU, 32 elsewhere)")
  ap.add_argument("--batch", type=int, default=8, help="prompts / sequences per member")
  ap.add_argument("--new-tokens", type=int, default=32)
  ap.add_argument("--seq-len", type=int, default=128, help="tokens per sequence for scoring")
  ap.add_argument("--repeats", type=int, default=2)
  args = ap.parse_args()

  device = jax.devices()[0]
  n = args.population or (4 if device.platform == "cpu" else 32)
  lm = tj.load_lm(args.model, dtype=args.dtype)
  lm = from_params(dataclasses.replace(lm.config, eos_ids=()), lm.params, lm.tokenizer)  # fixed length
  weights = sum(x.nbytes for x in jax.tree.leaves(lm.params))
  key, sigmas = jax.random.key(0), np.full(n, 1e-3, np.float32)
  report = {"device": {"platform": device.platform, "kind": device.device_kind, "count": jax.device_count()},
            "jax": jax.__version__, "model": args.model, "dtype": args.dtype, "params": lm.n_params(),
            "weights_bytes": weights, "population": n, "batch": args.batch}

  # Scoring: teacher-forced log-likelihood of random sequences (the cost does not depend on the text).
  rng = np.random.default_rng(0)
  tokens = jnp.asarray(rng.integers(0, lm.config.vocab_size, (args.batch, args.seq_len)), jnp.int32)
  valid = jnp.ones_like(tokens, bool)
  target = valid
  base_logprob = jax.jit(lm.logprob_fn)
  t_base = timed(lambda: base_logprob(lm.params, tokens, valid, target), args.repeats)
  t_pop = timed(lambda: lm.population_logprob(key, sigmas, tokens, valid, target), 1)
  scored = args.batch * args.seq_len
  report["scoring"] = {
      "seq_len": args.seq_len, "t_base_s": t_base, "t_population_s": t_pop,
      "tokens_per_s": n * scored / t_pop, "base_tokens_per_s": scored / t_base, "members_per_s": n / t_pop,
      "efficiency": n * t_base / t_pop,
      **memory_row(lm.logprob_fn, lm.params, key, (tokens, valid, target), weights, device)}
  print(json.dumps({"scoring": report["scoring"]}), flush=True)

  # Generation: greedy decoding of chat prompts, a fixed number of tokens.
  tokens, valid = lm.batch([PROMPTS[i % len(PROMPTS)] for i in range(args.batch)])
  tokens, valid = jnp.asarray(tokens), jnp.asarray(valid)
  t_base = timed(lambda: lm.generate_ids(lm.params, tokens, valid, args.new_tokens), args.repeats)
  t_pop = timed(lambda: lm.population_ids(key, sigmas, tokens, valid, max_new_tokens=args.new_tokens), 1)
  generated = args.batch * args.new_tokens
  report["generation"] = {
      "new_tokens": args.new_tokens, "prompt_len": int(tokens.shape[1]), "t_base_s": t_base,
      "t_population_s": t_pop, "tokens_per_s": n * generated / t_pop, "base_tokens_per_s": generated / t_base,
      "members_per_s": n / t_pop, "efficiency": n * t_base / t_pop,
      **memory_row(lm.greedy_fn_for(tokens, valid, args.new_tokens), lm.params, key, (tokens, valid), weights, device)}
  print(json.dumps(report, indent=1))


if __name__ == "__main__":
  main()
