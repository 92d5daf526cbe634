"""`python -m engine make-tiny-weights DIR`: tiny random GEN3C models in the real weights layout (tests, smoke runs)."""
from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m engine make-tiny-weights",
                                     description="Write tiny random GEN3C models in the real weights layout.")
    parser.add_argument("out_dir")
    parser.add_argument("--height", type=int, default=64)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--chunk-frames", type=int, default=17)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--moge", action="store_true", help="also write a random MoGe v1 (ViT-S, ~44 MB)")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from engine.errors import InputError
    from engine.models.tiny import make_tiny_weights

    try:
        path = make_tiny_weights(args.out_dir, args.height, args.width, args.chunk_frames, args.seed, args.overwrite,
                                 moge=args.moge)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote tiny weights to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
