"""What the torchrun tests run on every rank (``python -m torch.distributed.run ... tests/parallel_worker.py``).

``generate WEIGHTS SCENE OUT.npz PLAN``: the Python API, ``Gen3CPipeline.from_pretrained(..., parallel=PLAN)``;
rank 0 saves the uint8 frames and the final latents. PLAN "none" is the single-process reference (run as a plain
process with the workers' thread settings: CPU kernels may round differently with another thread count).

``agree OUT_DIR``: rank 1 refuses its input before the checkpoint that rank 0 reaches; through
``engine.cli.parallel.run_parallel_command``, the way ``python -m engine generate --parallel`` runs.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

PROMPT = "a red house near the river"
FRAMES, STEPS, GUIDANCE = 17, 2, 2.5


def generate(weights, scene, plan):
    """(frames uint8 [T,H,W,3], latents [chunks,1,C,t,h,w] float32, is_main) of one tiny generation."""
    import torch

    from engine import cameras, depth as depth_mod, images
    from engine.pipeline import Gen3CPipeline

    pipe = Gen3CPipeline.from_pretrained(weights, device="cpu", text_cache_dir=None, parallel=plan)
    image = images.load_image(Path(scene) / "image.png")
    depth = depth_mod.load_depth_file(Path(scene) / "depth.npz", image.shape[0], image.shape[1])
    _, fit = images.fit_image(image, pipe.height, pipe.width)
    cams = cameras.preset_trajectory("left", torch.eye(4), fit.apply_to_intrinsics(depth.K), FRAMES, 0.3,
                                     "center_facing")
    result = pipe.generate(image, cams, FRAMES, prompt=PROMPT, num_steps=STEPS, guidance=GUIDANCE, depth=depth)
    latents = torch.stack(result.latents).numpy()
    is_main = pipe.parallel is None or pipe.parallel.is_main
    if pipe.parallel is not None:
        pipe.parallel.close()
    return result.frames, latents, is_main


def _agree(out_dir) -> int:
    from types import SimpleNamespace

    from engine.cli.parallel import run_parallel_command
    from engine.errors import InputError

    def run(args, session):
        if session.rank == 1:
            raise InputError("rank 1 refuses its input")
        session.agree()  # rank 0 got here with good inputs
        Path(out_dir, "rank0-passed-the-checkpoint").write_text("")
        return {"ok": True}

    return run_parallel_command(run, SimpleNamespace(), "ulysses", "cpu")


def main(argv) -> int:
    if argv[0] == "generate":
        weights, scene, out, plan = argv[1:5]
        frames, latents, is_main = generate(weights, scene, None if plan == "none" else plan)
        if is_main:
            np.savez(out, frames=frames, latents=latents)
        return 0
    if argv[0] == "agree":
        return _agree(argv[1])
    raise SystemExit(f"unknown mode {argv[0]!r}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
