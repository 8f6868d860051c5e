"""The `thicket` command line."""

from __future__ import annotations

import argparse
import sys


def _floats(text: str) -> tuple[float, ...]:
  try:
    return tuple(float(v) for v in text.split(",") if v.strip())
  except ValueError:
    raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _ints(text: str) -> tuple[int, ...]:
  try:
    return tuple(int(v) for v in text.split(",") if v.strip())
  except ValueError:
    raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _toy(args) -> int:
  from thicket_jax import toy
  import thicket_jax as tj
  base = toy.ToyConfig.tiny() if args.tiny else toy.ToyConfig()
  ro = base.randopt
  cfg = toy.ToyConfig(**{**base.__dict__, "randopt": tj.RandOptConfig(
      population=args.population or ro.population, sigmas=args.sigmas or ro.sigmas,
      top_ks=args.top_k or ro.top_ks, chunk_size=args.chunk_size or ro.chunk_size,
      seed=ro.seed if args.seed is None else args.seed)})
  res = toy.run(cfg, args.out, progress=not args.no_progress)
  b = res["base"]
  print(f"\nbase model: selection acc {b['train_accuracy']:.3f}, target test acc {b['test_accuracy']:.3f} "
        f"(source test acc {b['source_test_accuracy']:.3f})")
  print(f"members >= base on selection: {res['density']['0.0']:.1%}")
  print("   K | ensemble test acc | best member alone")
  for e in res["ensemble"]:
    print(f"{e['k']:4d} | {e['test_accuracy']:17.3f} | {e['top1_member_test_accuracy']:.3f}")
  print(f"wrote {args.out}/results.json and {args.out}/population.png ({res['wall_s']:.0f} s)")
  return 0


def _run(args) -> int:
  from thicket_jax import distributed
  distributed.initialize(args.coordinator_address, args.num_processes, args.process_id)
  from thicket_jax import run as run_mod
  cfg = run_mod.RunConfig(
      model=args.model, task=args.task, population=args.population, sigmas=args.sigmas,
      top_ks=args.top_k, train_examples=args.train_examples, test_examples=args.test_examples,
      max_new_tokens=args.max_new_tokens, seed=args.seed, chunk_size=args.chunk_size, dtype=args.dtype,
      gsm8k_tfds_dir=args.gsm8k_tfds_dir, gsm8k_manual_dir=args.gsm8k_manual_dir)
  results = run_mod.run(cfg, args.out, progress=not args.no_progress, model_devices=args.model_devices)
  if not distributed.is_writer():
    return 0
  run_mod.print_summary(results)
  print(f"wrote {args.out}/results.json and {args.out}/population.png "
        f"({results['timing']['total_seconds']:.0f} s)")
  return 0


def _eval(args) -> int:
  from thicket_jax import run as run_mod
  report = run_mod.evaluate_run(args.run, args.task, args.test_examples, args.top_k,
                                progress=not args.no_progress)
  print(f"{report['task']}: {report['test_examples']} test examples, base accuracy "
        f"{report['base_test_accuracy']:.3f}")
  print("   K | ensemble test acc | mean member test acc")
  for e in report["ensemble"]:
    print(f"{e['k']:4d} | {e['test_accuracy']:17.3f} | {e['mean_member_test_accuracy']:.3f}")
  return 0


def _generate(args) -> int:
  from thicket_jax.lm import load_lm
  lm = load_lm(args.model, dtype=args.dtype)
  for text in lm.generate(lm.params, args.prompt, max_new_tokens=args.max_new_tokens, chat=not args.raw):
    print(text)
  return 0


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(prog="thicket", description="RandOpt: post-training without gradients.")
  parser.add_argument("--version", action="store_true", help="print the version and exit")
  sub = parser.add_subparsers(dest="command")
  toy = sub.add_parser("toy", help="end-to-end RandOpt on a toy shifted-domain classifier")
  toy.add_argument("--out", default="runs/toy", help="output directory (resumable)")
  toy.add_argument("--population", type=int, help="N members")
  toy.add_argument("--sigmas", type=_floats, help="noise grid, e.g. 0.01,0.02")
  toy.add_argument("--top-k", type=_ints, help="ensemble sizes, e.g. 1,5,50")
  toy.add_argument("--chunk-size", type=int, help="members per compiled call / saved block")
  toy.add_argument("--seed", type=int)
  toy.add_argument("--tiny", action="store_true", help="tiny sizes (seconds)")
  toy.add_argument("--no-progress", action="store_true")
  g = sub.add_parser("generate", help="greedy completion of prompts by a language model")
  g.add_argument("--model", default="smollm2-135m-instruct",
                 help="embedded name, .gguf file or Hugging Face directory")
  g.add_argument("--prompt", action="append", required=True, help="a prompt (repeat for a batch)")
  g.add_argument("--max-new-tokens", type=int, default=64)
  g.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
  g.add_argument("--raw", action="store_true", help="no chat template: continue the text as is")
  r = sub.add_parser("run", help="RandOpt on a language model and a task (resumable)")
  r.add_argument("--model", default="smollm2-135m-instruct",
                 help="embedded name, .gguf file or Hugging Face directory")
  r.add_argument("--task", default="gsm8k",
                 help="gsm8k, countdown, math500, arc_challenge, arc_easy or jsonl:PATH")
  r.add_argument("--population", type=int, default=8, help="N members")
  r.add_argument("--sigmas", type=_floats, default=(5e-4, 1e-3, 2e-3), help="noise grid, e.g. 5e-4,1e-3")
  r.add_argument("--top-k", type=_ints, default=(1, 3), help="ensemble sizes, e.g. 1,5,50")
  r.add_argument("--train-examples", type=int, default=24, help="selection examples")
  r.add_argument("--test-examples", type=int, default=32)
  r.add_argument("--max-new-tokens", type=int, default=128)
  r.add_argument("--seed", type=int, default=0)
  r.add_argument("--chunk-size", type=int, default=1, help="members per compiled call / saved block")
  r.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
  r.add_argument("--gsm8k-tfds-dir", help="read GSM8K through tensorflow-datasets, prepared here")
  r.add_argument("--gsm8k-manual-dir", help="offline tfds build from train.jsonl / test.jsonl in this folder")
  r.add_argument("--out", default="runs/gsm8k", help="output directory (rerun to resume)")
  r.add_argument("--no-progress", action="store_true")
  r.add_argument("--model-devices", type=int, default=1,
                 help="split each member's weights over this many devices (a 'model' mesh axis)")
  r.add_argument("--coordinator-address", help="multi-process run: HOST:PORT of process 0 (jax.distributed)")
  r.add_argument("--num-processes", type=int, help="multi-process run: number of processes")
  r.add_argument("--process-id", type=int, help="multi-process run: this process's index (0 writes)")
  e = sub.add_parser("eval", help="re-evaluate a finished run's ensembles on a task")
  e.add_argument("--run", required=True, help="the run's output directory")
  e.add_argument("--task", help="another task (default: the run's)")
  e.add_argument("--test-examples", type=int)
  e.add_argument("--top-k", type=_ints)
  e.add_argument("--no-progress", action="store_true")
  args = parser.parse_args(argv)
  if args.version:
    from thicket_jax import __version__
    print(__version__)
    return 0
  if args.command is None:
    parser.print_help()
    return 2
  try:
    return {"toy": _toy, "generate": _generate, "run": _run, "eval": _eval}[args.command](args)
  except (ValueError, FileNotFoundError, ModuleNotFoundError) as e:
    print(f"thicket: error: {e}", file=sys.stderr)
    return 2


if __name__ == "__main__":
  sys.exit(main())
