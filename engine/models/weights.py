"""The weights folder: its layout, finding it (saying exactly what is missing), writing it atomically."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from engine import atomic
from engine.errors import WeightsMissingError

ENV_VAR = "GEN3C_WEIGHTS"
DEFAULT_DIR = "weights"

# part -> files that must exist inside the weights folder (any one of each tuple)
PARTS = {
    "config": (("gen3c.json",),),
    "transformer": (("transformer/config.json",),
                    ("transformer/diffusion_pytorch_model.safetensors",
                     "transformer/diffusion_pytorch_model.safetensors.index.json")),
    "vae": (("vae/config.json",), ("vae/diffusion_pytorch_model.safetensors",)),
    "text_encoder": (("text_encoder/config.json",),
                     ("text_encoder/model.safetensors", "text_encoder/model.safetensors.index.json")),
    "text_tokenizer": (("text_tokenizer/tokenizer.json", "text_tokenizer/spiece.model",
                        "text_tokenizer/tokenizer_config.json"),),
}
OPTIONAL_PARTS = {"moge": (("moge/model.pt",),)}
SHARD_SIZE = "5GB"

SOURCES = """\
Download the official checkpoints (about 50 GB, NVIDIA Open Model License / Apache-2.0):
  huggingface-cli download nvidia/GEN3C-Cosmos-7B --local-dir checkpoints/Gen3C-Cosmos-7B          (model.pt)
  huggingface-cli download nvidia/Cosmos-Tokenize1-CV8x8x8-720p --local-dir checkpoints/Cosmos-Tokenize1-CV8x8x8-720p
        (the video VAE: encoder.jit, decoder.jit, mean_std.pt)
  huggingface-cli download google-t5/t5-11b --local-dir checkpoints/google-t5/t5-11b \\
        --include "config.json" "*.safetensors*" "pytorch_model*.bin*" "spiece.model" "tokenizer*"
        (the text encoder and its text tokenizer)
  optional depth model: huggingface-cli download Ruicheng/moge-vitl --local-dir checkpoints/moge-vitl  (model.pt)
then convert them into {target}:
  python -m engine convert --gen3c checkpoints/Gen3C-Cosmos-7B/model.pt \\
      --tokenizer checkpoints/Cosmos-Tokenize1-CV8x8x8-720p --t5 checkpoints/google-t5/t5-11b \\
      [--moge checkpoints/moge-vitl/model.pt] --out {target} --dtype bfloat16
and pass --weights {target} (or set {env}={target}).
Without GEN3C weights the studio still previews camera paths and warps; without T5 use the
no-text-encoder mode (zero prompt embeddings, as the official --disable_prompt_encoder)."""


def resolve_weights_dir(weights_dir=None) -> Path:
    """The folder to use: the argument, else $GEN3C_WEIGHTS, else ./weights."""
    if weights_dir is not None:
        return Path(weights_dir).expanduser()
    env = os.environ.get(ENV_VAR)
    return Path(env).expanduser() if env else Path(DEFAULT_DIR)


@dataclass
class WeightsStatus:
    """Which parts of a weights folder exist. `.ok` when every required part is present."""
    root: Path
    present: dict = field(default_factory=dict)   # part -> bool
    missing_files: dict = field(default_factory=dict)  # part -> [relative paths]

    @property
    def ok(self) -> bool:
        return all(self.present.get(p, False) for p in PARTS)

    @property
    def missing(self) -> list[str]:
        return [p for p in PARTS if not self.present.get(p, False)]

    @property
    def has_moge(self) -> bool:
        return self.present.get("moge", False)

    @property
    def help(self) -> str:
        """What to download and the command that writes this folder."""
        if self.ok:
            return f"All model weights found in {self.root}."
        lines = [f"Model weights incomplete in {self.root}: missing " + ", ".join(
            f"{p} ({' or '.join(self.missing_files[p])})" for p in self.missing) + "."]
        lines.append(SOURCES.format(target=self.root, env=ENV_VAR))
        return "\n".join(lines)

    def require(self, *parts: str) -> None:
        """Raise WeightsMissingError (with `.help`) unless the named parts are present."""
        absent = [p for p in parts if not self.present.get(p, False)]
        if absent:
            raise WeightsMissingError(self.help)


def _check(root: Path, groups) -> list[str]:
    missing = []
    for alternatives in groups:
        if not any((root / rel).is_file() for rel in alternatives):
            missing.append(alternatives[0])
    return missing


def find_weights(weights_dir=None) -> WeightsStatus:
    """Inspect a weights folder (argument, $GEN3C_WEIGHTS or ./weights) without loading anything."""
    root = resolve_weights_dir(weights_dir)
    status = WeightsStatus(root=root)
    for part, groups in {**PARTS, **OPTIONAL_PARTS}.items():
        missing = _check(root, groups)
        status.present[part] = not missing
        if missing:
            status.missing_files[part] = missing
    return status


# ---- writing a weights folder ------------------------------------------------------------------------

def check_written_folder(folder: Path) -> None:
    """What a writer must check before a weights folder is renamed into place: every part it wrote is whole
    and agrees with its config (engine.models.integrity)."""
    from engine.models.integrity import check_weights

    status = find_weights(folder)
    check_weights(folder, [p for p in PARTS if status.present.get(p)], together=False)


def atomic_output_dir(out_dir, overwrite: bool = False):
    """A temporary sibling folder (context manager) that replaces ``out_dir`` once it is written and checked
    (``check_written_folder``); on error it is removed and ``out_dir`` is untouched (``engine.atomic``)."""
    return atomic.atomic_output_dir(out_dir, overwrite, check=check_written_folder)


def save_transformer(transformer, folder: Path) -> None:
    transformer.save_pretrained(str(folder / "transformer"), safe_serialization=True, max_shard_size=SHARD_SIZE)


def save_vae(vae, mean, std, folder: Path) -> None:
    """`<folder>/vae`: the AutoencoderKLCosmos with the latent statistics in its config (diffusers' layout)."""
    from engine.models.vae import set_latent_stats

    set_latent_stats(vae, mean, std)
    vae.save_pretrained(str(folder / "vae"), safe_serialization=True)


def save_text_encoder(text_encoder, text_tokenizer, folder: Path) -> None:
    """`<folder>/text_encoder` (T5EncoderModel) and `<folder>/text_tokenizer` (its tokenizer)."""
    text_encoder.save_pretrained(str(folder / "text_encoder"), safe_serialization=True, max_shard_size=SHARD_SIZE)
    text_tokenizer.save_pretrained(str(folder / "text_tokenizer"))
