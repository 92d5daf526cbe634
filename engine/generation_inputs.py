"""Checks of ``Gen3CPipeline.generate``'s own inputs (beyond ``engine.validate``): the fit, a given seed Scene,
injected noise. Each raises ``InputError`` with a one-line message before any work."""
from __future__ import annotations

import torch

from engine import validate
from engine.errors import InputError


def check_fit(fit) -> str:
    """One of ``engine.scene.SCENE_FITS``: "crop", "pad" or "official"."""
    from engine.scene import SCENE_FITS

    return validate.one_of(fit, SCENE_FITS, "fit")


def check_scene(scene, depth, fit, height: int, width: int):
    """A seed Scene given to generate: at the model size, with no second depth and no other fit."""
    if depth is not None:
        raise InputError("depth comes with the scene: pass either a Scene or an image with depth")
    if fit is not None and fit != (scene.fit or "crop"):
        raise InputError(f"fit {fit!r} differs from the scene's ({scene.fit!r}); the scene was already fitted")
    if (scene.height, scene.width) != (height, width):
        raise InputError(f"scene is {scene.height}x{scene.width}; the model needs {height}x{width}")
    return scene


def check_noise(noise, num_chunks: int, shape: tuple) -> list | None:
    """The injected noise: one finite float tensor of ``shape`` per chunk (float32 CPU copies), or None."""
    if noise is None:
        return None
    if torch.is_tensor(noise) or not isinstance(noise, (list, tuple)):
        raise InputError(f"noise must be a list of {num_chunks} tensors (one per chunk), got {type(noise).__name__}")
    if len(noise) != num_chunks:
        raise InputError(f"noise has {len(noise)} tensors; this run has {num_chunks} chunks")
    out = []
    for k, x in enumerate(noise):
        if not torch.is_tensor(x) or not x.is_floating_point():
            raise InputError(f"noise for chunk {k} must be a floating-point tensor, got {type(x).__name__}")
        if tuple(x.shape) != tuple(shape):
            raise InputError(f"noise for chunk {k} has shape {list(x.shape)}; expected {list(shape)} (latent_shape())")
        if not bool(torch.isfinite(x).all()):
            raise InputError(f"noise for chunk {k} holds NaN or infinite values")
        out.append(x.detach().to("cpu", torch.float32).clone())
    return out
