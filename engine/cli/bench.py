"""`python -m engine bench warp|dit|vae|pipeline|fast|gpu [options]`: run one benchmark of `engine.bench` (prints
JSON)."""
from __future__ import annotations

import importlib
import sys

BENCHES = {
    "warp": "engine.bench.warp",
    "dit": "engine.bench.models",
    "vae": "engine.bench.models",
    "pipeline": "engine.bench.pipeline",
    "fast": "engine.bench.fast",
    "gpu": "engine.bench.gpu",
}
# dit and vae share a module, which takes the bench name as its first argument
_TAKES_NAME = {"engine.bench.models"}


def usage() -> str:
    return (f"usage: python -m engine bench {{{'|'.join(BENCHES)}}} [options]\n\n"
            "Run `python -m engine bench <name> --help` for a benchmark's options.")


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    if not argv or argv[0] not in BENCHES:
        print(usage(), file=sys.stderr)
        return 2
    module_name = BENCHES[argv[0]]
    module = importlib.import_module(module_name)
    return int(module.main(argv if module_name in _TAKES_NAME else argv[1:]) or 0)
