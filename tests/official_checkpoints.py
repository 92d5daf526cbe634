"""Official-format checkpoint files written from the reference fixtures: the GEN3C ``model.pt`` and the Cosmos
tokenizer folder (TorchScript ``encoder.jit`` / ``decoder.jit`` carrying the official key names, ``mean_std.pt``).
Used by the conversion tests and the fidelity tests, which build their pipeline the way a user does."""
from __future__ import annotations

from pathlib import Path

import torch


def dit_state(fx: dict) -> dict:
    """The official DiT state dict (``net.*``, ``logvar.*``) held by the dit_tiny fixture."""
    return {k: v for k, v in fx.items() if k.startswith(("net.", "logvar."))}


def tok_state(fx: dict) -> dict:
    """The official tokenizer state dict held by the tokenizer_tiny fixture."""
    return {k: v for k, v in fx.items() if k.startswith(("encoder.", "decoder.", "quant_conv.", "post_quant_conv."))}


def jit_archive(state: dict, path) -> None:
    """A TorchScript archive whose state_dict carries exactly `state`'s official key names."""
    import warnings

    class Holder(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x

    root = Holder()
    for key, tensor in state.items():
        *parents, leaf = key.split(".")
        module = root
        for name in parents:
            if not hasattr(module, name):
                module.add_module(name, Holder())
            module = getattr(module, name)
        module.register_buffer(leaf, tensor.clone())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.trace(root, torch.zeros(1)).save(str(path))


def write_official_files(root: Path, dit_fx: dict, tok_fx: dict) -> tuple[Path, Path]:
    """(model.pt, Cosmos-Tokenize1-CV8x8x8-720p folder) under ``root``, in the official formats."""
    root = Path(root)
    torch.save({"model": dit_state(dit_fx)}, root / "model.pt")
    tok_dir = root / "Cosmos-Tokenize1-CV8x8x8-720p"
    tok_dir.mkdir()
    state = tok_state(tok_fx)
    state["encoder.patcher3d._arange"] = state["encoder.patcher3d._arange"].long()
    state["encoder.patcher3d.patch_size_buffer"] = state["encoder.patcher3d.patch_size_buffer"].int()
    jit_archive({k: v for k, v in state.items() if k.startswith(("encoder.", "quant_conv."))}, tok_dir / "encoder.jit")
    jit_archive({k: v for k, v in state.items() if k.startswith(("decoder.", "post_quant_conv."))},
                tok_dir / "decoder.jit")
    torch.save(torch.stack([tok_fx["mean_std/mean"], tok_fx["mean_std/std"]]), tok_dir / "mean_std.pt")
    return root / "model.pt", tok_dir
