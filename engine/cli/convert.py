"""`python -m engine convert`: official GEN3C / Cosmos tokenizer / T5 checkpoints -> our weights folder."""
from __future__ import annotations

import argparse
import sys

from engine.model_defaults import CHUNK_FRAMES, MODEL_HEIGHT, MODEL_WIDTH

DTYPES = ("float32", "bfloat16", "float16")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m engine convert", description=__doc__.splitlines()[0])
    parser.add_argument("--gen3c", required=True, help="GEN3C-Cosmos-7B model.pt")
    parser.add_argument("--tokenizer", required=True, help="official Cosmos tokenizer folder (the video VAE: Cosmos-Tokenize1-CV8x8x8-720p)")
    parser.add_argument("--t5", default=None, help="transformers T5 folder (e.g. google-t5/t5-11b)")
    parser.add_argument("--moge", default=None, help="optional MoGe model.pt to copy")
    parser.add_argument("--out", required=True, help="output weights folder")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="bfloat16")
    parser.add_argument("--height", type=int, default=MODEL_HEIGHT)
    parser.add_argument("--width", type=int, default=MODEL_WIDTH)
    parser.add_argument("--chunk-frames", type=int, default=CHUNK_FRAMES)
    parser.add_argument("--overwrite", action="store_true")
    return parser


def main(argv=None) -> int:
    """Official checkpoints -> weights folder. Returns the exit code (2 + one-line error on bad input)."""
    args = build_parser().parse_args(argv)
    import torch

    from engine.atomic import check_output_dir
    from engine.convert import convert_checkpoints
    from engine.errors import InputError

    try:
        check_output_dir(args.out, "--out", must_be_empty=not args.overwrite, parent_must_exist=True)
        convert_checkpoints(args.gen3c, args.tokenizer, args.t5, args.out, progress=print, moge_pt=args.moge,
                            dtype=getattr(torch, args.dtype), height=args.height, width=args.width,
                            chunk_frames=args.chunk_frames, overwrite=args.overwrite)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
