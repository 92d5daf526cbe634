"""`python -m engine <command>`: the headless GEN3C Studio command line.

Each command lives in its own module of this package with a `main(argv) -> int`; this file only
dispatches, so `python -m engine --help` stays fast (heavy imports happen inside the chosen command).
"""
from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "preview": ("engine.cli.preview", "warp an image along a camera path: mp4, masks, path JSON, PLY"),
    "generate": ("engine.cli.generate", "run the GEN3C diffusion model along a camera path (needs weights)"),
    "convert": ("engine.cli.convert", "convert official GEN3C / Cosmos tokenizer / T5 checkpoints to our layout"),
    "make-tiny-weights": ("engine.cli.make_tiny_weights", "write tiny random models in the real weights layout"),
    "samples": ("engine.cli.samples", "list the bundled sample scenes"),
    "bench": ("engine.cli.bench", "benchmarks printing JSON: bench warp | dit | vae | pipeline"),
}


def _usage() -> str:
    lines = ["usage: python -m engine <command> [options]", "", "commands:"]
    lines += [f"  {name:<18} {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "Run `python -m engine <command> --help` for a command's options."]
    return "\n".join(lines)


def exit_code(exc: SystemExit) -> int:
    """The status a `SystemExit` stands for (argparse exits with 0 for --help, 2 for bad options)."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"error: unknown command {command!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[command][0])
    try:
        return int(module.main(rest) or 0)
    except SystemExit as exc:
        return exit_code(exc)
