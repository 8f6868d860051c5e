"""Greedy decoding speed of SmolLM2-135M: thicket_jax against HF transformers (torch, CPU),
and population efficiency of perturbed members decoding together.

    pip install torch==2.13.0 transformers     # benchmark-only extras
    python experiments/bench_lm.py             # one table (~5 min on 2 CPU cores)
    python experiments/bench_lm.py --quick     # batch 1 and 4, 8 tokens

Both libraries load the same GGUF file (dequantised to float32) and produce exactly
`--new-tokens` tokens per sequence (end of turn disabled), from the same left-padded
chat prompts. Times are the best of `--repeats` runs after a warm-up (compilation).
thicket_jax runs the prompts' common prefix (the chat template's system turn, 24 of 35-39
tokens) once per batch; the `no sharing` column decodes the plain left-padded batch. A second
table splits the time into the prefill (with the first token) and the decode steps after it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time

import jax
import numpy as np

import thicket_jax as tj
from thicket_jax.lm import from_params, resolve
from thicket_jax.models.generate import greedy_token, shared_width
from thicket_jax.population import _compiled_scorer

PROMPTS = [
    "What is the capital of France?", "Explain photosynthesis in one sentence.",
    "Write a short poem about the sea.", "What is 12 times 7?", "Name three primary colors.",
    "How do airplanes fly?", "Give me a tip for learning to code.", "What is the boiling point of water?",
]


def best(fn, repeats):
  fn()
  ts = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    fn()
    ts.append(time.perf_counter() - t0)
  return min(ts)


def kernel_rows(cfg, batch=32):
  """What a decode step at `batch` is made of, timed alone: the argmax over the vocabulary, and
  float32 GEMM speed at M = batch for the model's weight shapes against one large GEMM."""
  rng = np.random.default_rng(0)
  timed = lambda f, *a: best(lambda: jax.block_until_ready(f(*a)), 20)  # noqa: E731
  logits = jax.numpy.asarray(rng.standard_normal((batch, cfg.vocab_size), np.float32))
  row = {"argmax_ms": 1e3 * timed(jax.jit(lambda x: jax.numpy.argmax(x, -1)), logits),
         "greedy_token_ms": 1e3 * timed(jax.jit(greedy_token), logits)}
  shapes = {"q/o": (cfg.dim, cfg.dim), "k/v": (cfg.dim, cfg.n_kv_heads * cfg.head_dim),
            "gate/up": (cfg.dim, cfg.ffn_dim), "down": (cfg.ffn_dim, cfg.dim), "head": (cfg.dim, cfg.vocab_size)}
  for name, (k, n) in {**shapes, "large (M=1536, gate/up)": (cfg.dim, cfg.ffn_dim)}.items():
    m = 1536 if name.startswith("large") else batch
    x, w = (jax.numpy.asarray(rng.standard_normal(s, np.float32)) for s in ((m, k), (k, n)))
    row[f"gemm_gflops {name}"] = 2 * m * k * n / timed(jax.jit(jax.numpy.matmul), x, w) / 1e9
  return row


def thicket_decode(lm, batch, new_tokens, repeats, share_prefix=True):
  tokens, valid = lm.batch([PROMPTS[i % len(PROMPTS)] for i in range(batch)], share_prefix=share_prefix)
  fn = jax.jit(lm.greedy_fn(new_tokens, shared_width(tokens, valid) if share_prefix else 0))
  return best(lambda: jax.block_until_ready(fn(lm.params, tokens, valid)), repeats)


def hf_decode(model, tok, batch, new_tokens, repeats):
  import torch
  texts = [tok.apply_chat_template([{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}], tokenize=False,
                                   add_generation_prompt=True) for i in range(batch)]
  enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)

  def run():
    with torch.inference_mode():
      model.generate(**enc, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
                     pad_token_id=tok.pad_token_id or 0)
  return best(run, repeats)


def main():
  ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument("--quick", action="store_true")
  ap.add_argument("--new-tokens", type=int, default=64)
  ap.add_argument("--repeats", type=int, default=2)
  ap.add_argument("--population", type=int, default=8)
  ap.add_argument("--no-hf", action="store_true", help="skip the transformers comparison")
  args = ap.parse_args()
  batches = (1, 4) if args.quick else (1, 8, 32)
  new_tokens = 8 if args.quick else args.new_tokens
  path = resolve("smollm2-135m-instruct")

  t0 = time.perf_counter()
  lm = tj.load_lm("smollm2-135m-instruct")
  t_load = time.perf_counter() - t0
  lm = from_params(dataclasses.replace(lm.config, eos_ids=()), lm.params, lm.tokenizer)  # fixed length

  rows = {"load_seconds_thicket": t_load, "new_tokens": new_tokens, "decode": []}
  rows["kernels"] = kernel_rows(lm.config, batches[-1])
  print(json.dumps(rows["kernels"]), flush=True)
  # Each library runs in its own phase, so that one's idle worker threads do not slow the other.
  for b in batches:
    t = thicket_decode(lm, b, new_tokens, args.repeats)
    t_first = thicket_decode(lm, b, 1, args.repeats)  # prefill and one token: the rest is decode steps
    t_plain = thicket_decode(lm, b, new_tokens, args.repeats, share_prefix=False) if b > 1 else t
    rows["decode"].append({"batch": b, "thicket_tokens_per_s": b * new_tokens / t,
                           "thicket_no_sharing_tokens_per_s": b * new_tokens / t_plain,
                           "prefill_s": t_first, "step_ms": 1e3 * (t - t_first) / max(new_tokens - 1, 1),
                           "_t": t, "_t_plain": t_plain})

  # Population: N members decode the same batch inside one population computation.
  n, b = args.population if not args.quick else 2, 8 if not args.quick else 2
  tokens, valid = lm.batch([PROMPTS[i % len(PROMPTS)] for i in range(b)])
  key, sig = jax.random.key(0), np.full(n, 1e-3, np.float32)
  t_one = thicket_decode(lm, b, new_tokens, args.repeats)   # the base model, no noise to draw
  t_alone = best(lambda: jax.block_until_ready(             # one perturbed member through the same path
      lm.population_ids(key, sig[:1], tokens, valid, max_new_tokens=new_tokens)), args.repeats)
  t_pop = best(lambda: jax.block_until_ready(
      lm.population_ids(key, sig, tokens, valid, max_new_tokens=new_tokens)), 1)
  fn = lm.greedy_fn_for(tokens, valid, new_tokens)
  compiled = _compiled_scorer(fn, None, 1, None, False).lower(
      lm.params, key, np.arange(n, dtype=np.int32), sig, (tokens, valid)).compile()
  mem = compiled.memory_analysis()
  weights_mb = sum(x.nbytes for x in jax.tree.leaves(lm.params)) / 2**20
  rows["population"] = {
      "members": n, "batch": b, "t_one_member_s": t_one, "t_member_alone_s": t_alone,
      "t_population_s": t_pop, "efficiency": n * t_one / t_pop, "efficiency_vs_member_alone": n * t_alone / t_pop,
      "members_per_s": n / t_pop,
      "weights_mb": weights_mb, "xla_temp_mb": mem.temp_size_in_bytes / 2**20 if mem else None,
      "memory_per_member_in_flight_mb": mem.temp_size_in_bytes / 2**20 if mem else None}
  print(json.dumps(rows["population"]), flush=True)

  hf = None
  if not args.no_hf:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    torch.set_num_threads(os.cpu_count() or 1)
    t0 = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    tok.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32).eval()
    rows["load_seconds_hf"] = time.perf_counter() - t0
    hf = (model, tok)
    rows["torch"] = torch.__version__
  for row in rows["decode"]:
    t, t_plain = row.pop("_t"), row.pop("_t_plain")
    if hf:
      th = hf_decode(*hf, row["batch"], new_tokens, args.repeats)
      th_first = hf_decode(*hf, row["batch"], 1, args.repeats)
      row["hf_tokens_per_s"] = row["batch"] * new_tokens / th
      row["hf_prefill_s"], row["hf_step_ms"] = th_first, 1e3 * (th - th_first) / max(new_tokens - 1, 1)
      row["speedup"], row["speedup_no_sharing"] = th / t, th / t_plain
    print(json.dumps(row), flush=True)

  print(f"\n# SmolLM2-135M-Instruct (GGUF Q4_1 -> float32), {new_tokens} new tokens, CPU x{os.cpu_count()}, "
        f"jax {jax.__version__}" + (f", torch {rows['torch']}" if hf else ""))
  print(f"load: thicket {rows['load_seconds_thicket']:.1f} s" +
        (f", transformers {rows['load_seconds_hf']:.1f} s" if hf else ""))
  nan = float("nan")
  print("| batch | thicket_jax tok/s | no sharing | transformers tok/s | ratio | no sharing |\n|---|---|---|---|---|---|")
  for r in rows["decode"]:
    print(f"| {r['batch']} | {r['thicket_tokens_per_s']:.1f} | {r['thicket_no_sharing_tokens_per_s']:.1f} | "
          f"{r.get('hf_tokens_per_s', nan):.1f} | {r.get('speedup', nan):.2f}x | {r.get('speedup_no_sharing', nan):.2f}x |")
  print("\n| batch | prefill + 1 token, s: thicket_jax / transformers | decode step, ms: thicket_jax / transformers | "
        "step ratio |\n|---|---|---|---|")
  for r in rows["decode"]:
    hf_step = r.get("hf_step_ms", nan)
    print(f"| {r['batch']} | {r['prefill_s']:.2f} / {r.get('hf_prefill_s', nan):.2f} | {r['step_ms']:.1f} / "
          f"{hf_step:.1f} | {hf_step / r['step_ms']:.2f}x |")
  p = rows["population"]
  print(f"\npopulation: {p['members']} members x batch {p['batch']}: efficiency N t(base)/t(N) = "
        f"{p['efficiency']:.3f} ({p['t_one_member_s']:.2f} s base model, {p['t_population_s']:.2f} s all; "
        f"N t(one member alone)/t(N) = {p['efficiency_vs_member_alone']:.3f}); "
        f"XLA temp memory {p['xla_temp_mb']:.0f} MB for one member in flight "
        f"(weights {p['weights_mb']:.0f} MB, shared by all members)")


if __name__ == "__main__":
  main()
