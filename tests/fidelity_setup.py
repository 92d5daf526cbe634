"""The official two-chunk run (`pipeline_tiny`) as the fidelity tests use it.

The pipeline is built the way a user builds it from official checkpoints: official-format files (the GEN3C
`model.pt` and the Cosmos tokenizer's TorchScript files with `mean_std.pt`, written from the fixtures as
tests/test_convert.py writes them) -> `engine.convert.convert_checkpoints(t5_dir=None, float32, 64x128, 17)` ->
`Gen3CPipeline.from_pretrained(zero_text=True, depth_estimator=stand_in_moge)`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from reference_fixtures import load_fixture, load_fixture_meta
from official_checkpoints import write_official_files

HEIGHT, WIDTH, CHUNK = 64, 128, 17


def convert_official(root: Path) -> Path:
    """The weights folder converted from the official-format files, without T5 (zero-text mode only)."""
    from engine.convert import convert_checkpoints

    model_pt, tok_dir = write_official_files(root, load_fixture("dit_tiny"), load_fixture("tokenizer_tiny"))
    return convert_checkpoints(model_pt, tok_dir, None, root / "weights", dtype=torch.float32, height=HEIGHT,
                               width=WIDTH, chunk_frames=CHUNK)


def stand_in_moge(K: np.ndarray):
    """The fixture's MoGe replacement: depth = 2 + 1.5 * mean over channels of (frame / 255), K as given."""
    from engine.depth import DepthResult

    def estimate(frame_uint8: np.ndarray) -> DepthResult:
        img = torch.tensor(frame_uint8).permute(2, 0, 1) / 255.0
        return DepthResult((2.0 + 1.5 * img.mean(0)).numpy(), K)

    return estimate


def official_pipeline(weights: Path, K: np.ndarray):
    from engine.pipeline import Gen3CPipeline

    return Gen3CPipeline.from_pretrained(weights, device="cpu", dtype=torch.float32, placement="resident",
                                         zero_text=True, depth_estimator=stand_in_moge(K))


def reference() -> dict:
    return load_fixture("pipeline_tiny")


def reference_meta() -> dict:
    return load_fixture_meta("pipeline_tiny")


def official_inputs(fx: dict) -> dict:
    """The run's inputs: the image, the seed depth and K as a DepthResult, the cameras and the injected noise."""
    from engine.depth import DepthResult

    return dict(image=fx["inputs/image_uint8"].numpy(),
                depth=DepthResult(fx["inputs/seed_depth"].numpy(), fx["inputs/K"].numpy()),
                cameras=(fx["inputs/w2cs"], fx["inputs/Ks"]),
                noise=[fx["chunk0/initial_noise"], fx["chunk1/initial_noise"]])
