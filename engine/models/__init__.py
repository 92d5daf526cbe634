"""Diffusion models of GEN3C Studio: DiT, video VAE, T5 text encoder, the weights folder.

Attributes are imported lazily so `import engine.models` (e.g. for `find_weights` in the studio)
does not pull in diffusers/transformers.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "Gen3CConfig": "engine.models.config",
    "load_transformer": "engine.models.dit",
    "set_attention": "engine.models.dit",
    "compile_blocks": "engine.models.dit",
    "load_vae": "engine.models.vae",
    "VideoVAE": "engine.models.vae",
    "VaeTiling": "engine.models.vae",
    "TextEncoder": "engine.models.text",
    "ZeroTextEncoder": "engine.models.text",
    "load_text_encoder": "engine.models.text",
    "find_weights": "engine.models.weights",
    "WeightsStatus": "engine.models.weights",
    "make_tiny_weights": "engine.models.tiny",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'engine.models' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
