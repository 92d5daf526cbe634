"""`python -m engine <command>`: the headless GEN3C Studio command line.

Each command lives in its own module with a `main(argv) -> int`; this file only dispatches, so
`python -m engine --help` stays fast (heavy imports happen inside the chosen command).
"""
from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "preview": ("engine.cli_preview", "warp an image along a camera path: mp4, masks, path JSON, PLY"),
    "generate": ("engine.cli_generate", "run the GEN3C diffusion model along a camera path (needs weights)"),
    "convert": ("engine.convert", "convert official GEN3C / Cosmos tokenizer / T5 checkpoints to our layout"),
    "make-tiny-weights": ("engine.models.tiny", "write tiny random models in the real weights layout"),
    "samples": ("engine.cli_samples", "list the bundled sample scenes"),
    "bench": (None, "benchmarks printing JSON: bench warp | dit | vae | pipeline"),
}

BENCHES = {
    "warp": "engine.bench_warp",
    "dit": "engine.bench_models",
    "vae": "engine.bench_models",
    "pipeline": "engine.bench_pipeline",
}


def _usage() -> str:
    lines = ["usage: python -m engine <command> [options]", "", "commands:"]
    lines += [f"  {name:<18} {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "Run `python -m engine <command> --help` for a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"error: unknown command {command!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    if command == "bench":
        if not rest or rest[0] not in BENCHES:
            print(f"usage: python -m engine bench {{{'|'.join(BENCHES)}}} [options]", file=sys.stderr)
            return 2
        module = importlib.import_module(BENCHES[rest[0]])
        # dit/vae share a module: it receives the bench name as its first argument
        return int(module.main(rest if BENCHES[rest[0]] == "engine.bench_models" else rest[1:]) or 0)
    module = importlib.import_module(COMMANDS[command][0])
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
