"""Weights-folder integrity: every file whole and readable, every config agreeing with its tensors.

Checked without loading a tensor, so a broken folder is refused in seconds and before any generation work:

- configs and tokenizer JSON are read through ``engine.json_input`` (size and nesting checked first);
- safetensors files through their headers, with safetensors' own reader, which refuses a truncated file
  (its header no longer covers it exactly) and garbage; sharded parts through their index, whose shards
  must all exist and hold exactly the tensors it lists;
- the model a config builds (on the meta device: no memory) against the tensors' names and shapes. Any
  missing, unexpected or mis-shaped tensor is an InputError naming the config and the weights file;
  diffusers and transformers only warn about unexpected and missing tensors (a transformer config with
  fewer layers than its tensors loads a cut-down model).

Every problem is a one-line :class:`engine.errors.InputError` naming the file.
"""
from __future__ import annotations

from pathlib import Path

import torch

from engine.errors import InputError
from engine.json_input import MAX_CONFIG_BYTES, MAX_JSON_BYTES, read_json_file
from engine.models.loading import format_keys

# part -> (single weights file, index of a sharded one)
WEIGHT_FILES = {
    "transformer": ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.safetensors.index.json"),
    "vae": ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.safetensors.index.json"),
    "text_encoder": ("model.safetensors", "model.safetensors.index.json"),
}
MODEL_PARTS = tuple(WEIGHT_FILES)
# Layer counts a config may ask for (the official 7B DiT has 28 blocks, T5-11B 24): a config asking for a
# million would take minutes to build even on the meta device.
MAX_LAYERS = 1024
_LAYER_FIELDS = ("num_layers", "num_decoder_layers")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0][:160]}" if text else type(exc).__name__


def read_config(file) -> dict:
    """A model's config.json as a dict (engine.json_input limits), or InputError naming the file."""
    data = read_json_file(file, str(file), max_bytes=MAX_CONFIG_BYTES)
    if not isinstance(data, dict):
        raise InputError(f"{file}: expected a JSON object")
    for name in _LAYER_FIELDS:
        value = data.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > MAX_LAYERS:
            raise InputError(f"{file}: {name} {value} is more than {MAX_LAYERS}")
    return data


def safetensors_shapes(file) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape from a safetensors file's header; InputError naming it when it is not whole."""
    from safetensors import safe_open

    try:
        with safe_open(str(file), framework="pt") as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except Exception as exc:  # safetensors reports every malformed or truncated file as SafetensorError
        raise InputError(f"{file}: not a complete safetensors file ({_first_line(exc)})") from None


def _sharded_tensors(folder: Path, index: Path) -> dict[str, tuple[tuple[int, ...], Path]]:
    data = read_json_file(index, str(index), max_bytes=MAX_JSON_BYTES)
    weight_map = data.get("weight_map") if isinstance(data, dict) else None
    if not isinstance(weight_map, dict) or not weight_map or \
            not all(isinstance(k, str) and isinstance(v, str) for k, v in weight_map.items()):
        raise InputError(f"{index}: expected a weight_map from tensor names to shard files")
    found: dict[str, tuple[tuple[int, ...], Path]] = {}
    for shard in sorted(set(weight_map.values())):
        file = folder / shard
        if Path(shard).name != shard or not file.is_file():
            raise InputError(f"{index}: lists the shard {shard!r}, which is not a file in {folder}")
        for key, shape in safetensors_shapes(file).items():
            if key in found:
                raise InputError(f"{file}: tensor {key} is also in {found[key][1].name}")
            found[key] = (shape, file)
    unlisted = sorted(set(found) - set(weight_map))
    absent = sorted(set(weight_map) - set(found))
    moved = sorted(k for k in set(found) & set(weight_map) if found[k][1].name != weight_map[k])
    for keys, what in ((absent, "lists tensors no shard holds"), (unlisted, "does not list tensors its shards hold"),
                       (moved, "puts tensors in other shards than those holding them")):
        if keys:
            raise InputError(f"{index}: {what}: {format_keys(keys)}")
    return found


def part_tensors(folder, part: str) -> tuple[dict[str, tuple[int, ...]], Path]:
    """(tensor name -> shape, the file that lists them) for a part's folder: its index when sharded."""
    folder = Path(folder)
    single, index = WEIGHT_FILES[part]
    if (folder / index).is_file():
        found = _sharded_tensors(folder, folder / index)
        return {k: shape for k, (shape, _) in found.items()}, folder / index
    if (folder / single).is_file():
        return safetensors_shapes(folder / single), folder / single
    raise InputError(f"{folder}: has neither {single} nor {index}")


def _builder(part: str):
    """The constructor of a part's model from its config dict."""
    if part == "transformer":
        from diffusers import CosmosTransformer3DModel

        return CosmosTransformer3DModel.from_config
    if part == "vae":
        from diffusers import AutoencoderKLCosmos

        return AutoencoderKLCosmos.from_config
    from transformers import T5Config, T5EncoderModel

    return lambda config: T5EncoderModel(T5Config.from_dict(config))


def build_on_meta(part: str, config: dict, config_file) -> torch.nn.Module:
    """The model ``config`` describes, built on the meta device (no memory); InputError when it builds none."""
    build = _builder(part)  # imported outside the meta context: module-level tensors must stay real
    try:
        with torch.device("meta"):
            return build(config)
    except Exception as exc:  # a config of the wrong types can fail anywhere in a library's constructor
        raise InputError(f"{config_file}: does not build a {part} model ({_first_line(exc)})") from None


def compare_tensors(model: torch.nn.Module, found: dict, config_file, weights_file) -> None:
    """Every tensor the model has must be in ``found`` with its shape, and nothing else.

    Tied parameters (one tensor under several names, like T5's shared embedding) need one of their names.
    """
    groups: dict[int, list[str]] = {}
    shapes: dict[str, tuple[int, ...]] = {}
    for name, tensor in model.state_dict(keep_vars=True).items():
        groups.setdefault(id(tensor), []).append(name)
        shapes[name] = tuple(tensor.shape)
    missing = [names[0] for names in groups.values() if not any(n in found for n in names)]
    unexpected = [k for k in found if k not in shapes]
    wrong = [f"{k} {list(found[k])} in the file, {list(shapes[k])} in the config's model"
             for k in found if k in shapes and tuple(found[k]) != shapes[k]]
    problems = [f"{len(keys)} {what} ({format_keys(keys)})" for keys, what in
                ((missing, "missing tensors"), (unexpected, "unexpected tensors"), (wrong, "mis-shaped tensors"))
                if keys]
    if problems:
        raise InputError(f"{config_file} does not match {weights_file}: " + "; ".join(problems))


def check_model_part(root, part: str) -> dict:
    """Check ``<root>/<part>`` (config, weights files, their agreement); returns its config."""
    folder = Path(root) / part
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise InputError(f"{config_file}: not found")
    config = read_config(config_file)
    found, weights_file = part_tensors(folder, part)
    model = build_on_meta(part, config, config_file)
    compare_tensors(model, found, config_file, weights_file)
    return config


def load_text_tokenizer(root):
    """The text tokenizer of ``<root>/text_tokenizer``: its JSON files checked, then loaded by transformers."""
    from transformers import AutoTokenizer

    folder = Path(root) / "text_tokenizer"
    for file in sorted(folder.glob("*.json")):
        read_json_file(file, str(file), max_bytes=MAX_JSON_BYTES)
    try:
        return AutoTokenizer.from_pretrained(str(folder))
    except Exception as exc:  # tokenizers and sentencepiece raise bare Exception / RuntimeError on bad files
        raise InputError(f"{folder}: cannot load the text tokenizer ({_first_line(exc)})") from None


def load_checked(load, folder, what: str):
    """``load()`` (a library's from_pretrained on a folder already checked) with its errors in one line."""
    from safetensors import SafetensorError

    try:
        return load()
    except (OSError, ValueError, RuntimeError, SafetensorError) as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(f"{folder}: cannot load the {what} ({_first_line(exc)})") from None


def check_weights(root, parts, *, together: bool = True) -> None:
    """Check the named parts of a weights folder (``"transformer"``, ``"vae"``, ``"text_encoder"``,
    ``"text_tokenizer"``; others are skipped): each file whole, each config agreeing with its tensors, and
    with ``together`` (what a generation needs) the parts' channels agreeing with ``gen3c.json``."""
    from engine.models.config import CONFIG_NAME, Gen3CConfig

    root = Path(root)
    cfg = Gen3CConfig.load(root)
    configs = {part: check_model_part(root, part) for part in MODEL_PARTS if part in parts}
    if "text_tokenizer" in parts:
        load_text_tokenizer(root)
    if not together:
        return
    expected = {
        "transformer": {"in_channels": cfg.latent_channels * (1 + 2 * cfg.frame_buffer_max) + 1,
                        "out_channels": cfg.latent_channels, "text_embed_dim": cfg.text_dim},
        "vae": {"latent_channels": cfg.latent_channels},
        "text_encoder": {"d_model": cfg.text_dim},
    }
    for part, config in configs.items():
        for key, value in expected[part].items():
            if key in config and config[key] != value:
                raise InputError(f"{root / part / 'config.json'}: {key} {config[key]!r} disagrees with "
                                 f"{root / CONFIG_NAME} (expected {value})")
