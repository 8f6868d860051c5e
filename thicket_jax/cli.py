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
  args = parser.parse_args(argv)
  if args.version:
    from thicket_jax import __version__
    print(__version__)
    return 0
  if args.command is None:
    parser.print_help()
    return 2
  try:
    return {"toy": _toy}[args.command](args)
  except ValueError as e:
    print(f"thicket: error: {e}", file=sys.stderr)
    return 2


if __name__ == "__main__":
  sys.exit(main())
