"""Prompt encoding with the T5 encoder (official: T5-11B, 512 tokens, tail zeroed, no attention mask)."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch

from engine.atomic import atomic_write_bytes
from engine.errors import InputError, OutputError

DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "gen3c-studio" / "prompt_embeds"
MAX_PROMPT_CHARS = 20_000


def _check_prompts(prompts) -> list[str]:
    if isinstance(prompts, str) or not isinstance(prompts, (list, tuple)) or not prompts:
        raise InputError("prompts: expected a non-empty list of strings")
    for p in prompts:
        if not isinstance(p, str):
            raise InputError(f"prompts: expected strings, got {type(p).__name__}")
        if len(p) > MAX_PROMPT_CHARS:
            raise InputError(f"prompts: a prompt is {len(p)} characters long (limit {MAX_PROMPT_CHARS})")
    return list(prompts)


class ZeroTextEncoder:
    """No text encoder: all-zero embeddings (the official `--disable_prompt_encoder`)."""

    def __init__(self, max_length: int = 512, dim: int = 1024):
        self.max_length, self.dim = int(max_length), int(dim)

    def encode(self, prompts: list[str]) -> torch.Tensor:
        """[B, max_length, dim] zeros (float32, CPU)."""
        return torch.zeros(len(_check_prompts(prompts)), self.max_length, self.dim)

    def release(self) -> None:
        pass


class TextEncoder:
    """T5 encoder + its text tokenizer with an on-disk cache of prompt embeddings.

    `encode(prompts)` tokenises to `max_length` with padding (truncating longer prompts), runs the
    encoder, zeroes each row past its prompt's token count (official behaviour) and returns float32
    [B, max_length, dim] on the encoder's device. Embeddings are cached as safetensors under
    `cache_dir` keyed by a hash of (prompt, encoder identity); `cache_dir=None` disables the cache.
    """

    def __init__(self, model, tokenizer, max_length: int, identity: str, cache_dir=None):
        self.model, self.tokenizer = model, tokenizer
        self.max_length = int(max_length)
        self.dim = int(model.config.d_model)
        self.identity = identity
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def _cache_path(self, prompt: str) -> Path | None:
        if self.cache_dir is None:
            return None
        key = hashlib.sha256(json.dumps([self.identity, self.max_length, prompt]).encode()).hexdigest()
        return self.cache_dir / f"{key}.safetensors"

    def _read_cache(self, path: Path | None) -> torch.Tensor | None:
        if path is None or not path.is_file():
            return None
        from safetensors.torch import load_file
        try:
            emb = load_file(str(path))["embedding"]
        except Exception:  # a corrupt cache entry is recomputed
            return None
        return emb if emb.shape == (self.max_length, self.dim) else None

    def _write_cache(self, path: Path | None, emb: torch.Tensor) -> None:
        if path is None:
            return
        from safetensors.torch import save
        try:
            atomic_write_bytes(path, save({"embedding": emb.detach().float().cpu().contiguous()}))
        except OutputError:
            pass  # the cache is an optimisation: a full or read-only disk must not fail generation

    @torch.no_grad()
    def _run(self, prompts: list[str]) -> torch.Tensor:
        if self.model is None:
            raise RuntimeError("TextEncoder was released")
        tokens = self.tokenizer(prompts, return_tensors="pt", padding="max_length", max_length=self.max_length,
                                truncation=True)
        ids = tokens["input_ids"].to(self.device)
        mask = tokens["attention_mask"].to(self.device)
        out = self.model(input_ids=ids, attention_mask=mask).last_hidden_state.float()
        lengths = mask.sum(dim=1)
        keep = torch.arange(self.max_length, device=out.device)[None, :] < lengths[:, None]
        return out * keep[..., None]

    def encode(self, prompts: list[str]) -> torch.Tensor:
        prompts = _check_prompts(prompts)
        paths = [self._cache_path(p) for p in prompts]
        rows: list[torch.Tensor | None] = [self._read_cache(p) for p in paths]
        todo = [i for i, r in enumerate(rows) if r is None]
        if todo:
            fresh = self._run([prompts[i] for i in todo])
            for j, i in enumerate(todo):
                rows[i] = fresh[j]
                self._write_cache(paths[i], fresh[j])
        return torch.stack([r.to(self.device) for r in rows])

    def release(self) -> None:
        """Free the encoder (cached embeddings stay usable from disk by a new instance)."""
        self.model = None
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def _identity(folder: Path, dtype: torch.dtype) -> str:
    """Identify an encoder by its config and weight files (size + mtime) and compute dtype."""
    parts = [(folder / "config.json").read_text(), str(dtype)]
    for f in sorted(folder.glob("*.safetensors*")):
        st = f.stat()
        parts.append(f"{f.name}:{st.st_size}:{int(st.st_mtime)}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def load_text_encoder(weights_dir=None, device=None, dtype=None, cache_dir=DEFAULT_CACHE) -> TextEncoder:
    """T5 encoder + text tokenizer from `<weights>/text_encoder` and `<weights>/text_tokenizer`.

    dtype defaults to bf16 on CUDA and fp32 on CPU. Raises WeightsMissingError when absent
    (use ZeroTextEncoder then).
    """
    from engine.models.config import Gen3CConfig
    from engine.models.dit import default_device, default_dtype
    from engine.models.weights import find_weights

    status = find_weights(weights_dir)
    status.require("config", "text_encoder", "text_tokenizer")
    from transformers import T5EncoderModel

    from engine.models.integrity import check_model_part, load_checked, load_text_tokenizer

    cfg = Gen3CConfig.load(status.root)
    check_model_part(status.root, "text_encoder")  # configs agree with the tensors, files whole
    text_tokenizer = load_text_tokenizer(status.root)
    device = torch.device(device) if device is not None else default_device()
    dtype = dtype or default_dtype(device)
    folder = status.root / "text_encoder"
    model = load_checked(lambda: T5EncoderModel.from_pretrained(str(folder), dtype=dtype), folder, "text encoder")
    model = model.to(device).eval().requires_grad_(False)
    if model.config.d_model != cfg.text_dim:
        raise InputError(f"{folder}: d_model {model.config.d_model} != gen3c.json text_dim {cfg.text_dim}")
    return TextEncoder(model, text_tokenizer, cfg.text_max_length, _identity(folder, dtype), cache_dir=cache_dir)
