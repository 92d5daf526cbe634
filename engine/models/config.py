"""`gen3c.json`: the top-level description of a weights folder (shared by models, convert, pipeline)."""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from engine.errors import InputError
from engine.json_input import MAX_CONFIG_BYTES, read_json_file
from engine.model_defaults import (
    AUGMENT_SIGMA,
    CHUNK_FRAMES,
    FPS,
    FRAME_BUFFER_MAX,
    MODEL_HEIGHT,
    MODEL_WIDTH,
    SIGMA_DATA,
)

CONFIG_NAME = "gen3c.json"
FORMAT = "gen3c-studio-weights"
VERSION = 1


@dataclass(frozen=True)
class Gen3CConfig:
    """Resolution, chunking and channel facts the pipeline reads instead of hard-coding them."""
    height: int = MODEL_HEIGHT
    width: int = MODEL_WIDTH
    chunk_frames: int = CHUNK_FRAMES
    fps: int = FPS
    sigma_data: float = SIGMA_DATA
    frame_buffer_max: int = FRAME_BUFFER_MAX
    text_max_length: int = 512
    text_dim: int = 1024
    latent_channels: int = 16
    spatial_compression: int = 8
    temporal_compression: int = 8
    augment_sigma: float = AUGMENT_SIGMA
    tiny: bool = False

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type in ("int", int):
                if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                    raise InputError(f"{CONFIG_NAME}: {f.name} must be a positive integer, got {value!r}")
            elif f.type in ("float", float):
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                        or value < 0:
                    raise InputError(f"{CONFIG_NAME}: {f.name} must be a finite number >= 0, got {value!r}")
            elif not isinstance(value, bool):
                raise InputError(f"{CONFIG_NAME}: {f.name} must be true or false, got {value!r}")
        s, t = self.spatial_compression, self.temporal_compression
        if self.height % (2 * s) or self.width % (2 * s):
            raise InputError(f"{CONFIG_NAME}: height/width must be multiples of {2 * s}")
        if (self.chunk_frames - 1) % t:
            raise InputError(f"{CONFIG_NAME}: chunk_frames must be 1 + a multiple of {t}")

    @property
    def latent_frames(self) -> int:
        return (self.chunk_frames - 1) // self.temporal_compression + 1

    @property
    def latent_height(self) -> int:
        return self.height // self.spatial_compression

    @property
    def latent_width(self) -> int:
        return self.width // self.spatial_compression

    def to_json(self) -> dict:
        return {"format": FORMAT, "version": VERSION, **asdict(self)}

    def save(self, weights_dir) -> Path:
        from engine.atomic import atomic_write_bytes

        text = json.dumps(self.to_json(), indent=1) + "\n"
        return atomic_write_bytes(Path(weights_dir) / CONFIG_NAME, text.encode())

    @classmethod
    def from_json(cls, data, source: str = CONFIG_NAME) -> "Gen3CConfig":
        if not isinstance(data, dict):
            raise InputError(f"{source}: expected a JSON object")
        if data.get("format") != FORMAT:
            raise InputError(f"{source}: format must be {FORMAT!r}, got {data.get('format')!r}")
        if data.get("version") != VERSION:
            raise InputError(f"{source}: unsupported version {data.get('version')!r} (expected {VERSION})")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known - {"format", "version"})
        if unknown:
            raise InputError(f"{source}: unknown fields {', '.join(unknown)}")
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def load(cls, weights_dir) -> "Gen3CConfig":
        """Read and validate `<weights_dir>/gen3c.json`."""
        path = Path(weights_dir) / CONFIG_NAME
        if not path.is_file():
            from engine.errors import WeightsMissingError
            raise WeightsMissingError(f"{path} not found: not a GEN3C Studio weights folder "
                                      "(run `python -m engine convert` or `make-tiny-weights`)")
        return cls.from_json(read_json_file(path, str(path), max_bytes=MAX_CONFIG_BYTES), str(path))
