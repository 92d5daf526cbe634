"""GEN3C Studio: `python app.py` opens the camera-path editor on a sample scene (no weights, no network).

Flags: --host, --port, --share, --weights DIR (default $GEN3C_WEIGHTS), --no-browser. On Hugging Face
Spaces this file is the entry point (`python app.py`); `demo` is built by `build()` when run. On a ZeroGPU Space
the models load when this module is imported (`studio.zerogpu`; the README's "Hugging Face Spaces" section).
"""
from __future__ import annotations

import argparse
import os
import sys

# first: on ZeroGPU `spaces` must be imported before anything initialises CUDA
from studio import zerogpu

# ZeroGPU loads every model at import (only on a ZeroGPU Space or with GEN3C_ZEROGPU=1; else nothing loads)
zerogpu.load_at_import(os.environ.get("GEN3C_WEIGHTS"))


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="GEN3C Studio: camera paths over a point cloud, warped previews, video.")
    p.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                   help="interface to listen on (0.0.0.0 for all; default 127.0.0.1)")
    p.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    p.add_argument("--share", action="store_true", help="create a public gradio share link")
    p.add_argument("--weights", default=os.environ.get("GEN3C_WEIGHTS"),
                   help="GEN3C weights folder (default $GEN3C_WEIGHTS); the studio runs without it")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser tab")
    return p.parse_args(argv)


def build(weights_dir: str | None = None):
    """The studio Blocks (queue configured)."""
    from studio.layout import build_demo

    demo = build_demo(weights_dir)
    demo.queue(max_size=64, default_concurrency_limit=4)
    return demo


def main(argv=None) -> int:
    args = parse_args(argv)
    from studio.files import sweep_old_folders, studio_root
    from studio.layout import launch_kwargs
    from studio.runtime import limit_cpu_threads

    sweep_old_folders()
    limit_cpu_threads()  # a GPU-less studio's many small preview renders run best on one torch thread
    demo = build(args.weights)
    on_spaces = bool(os.environ.get("SPACE_ID"))
    demo.launch(
        server_name="0.0.0.0" if on_spaces else args.host,
        server_port=args.port,
        share=args.share,
        inbrowser=not args.no_browser and not on_spaces,
        allowed_paths=[str(studio_root())],
        ssr_mode=False,
        **launch_kwargs(),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
