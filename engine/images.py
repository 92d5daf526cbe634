"""Input images: loading any user image safely, fitting it to the model size, tensor conversion.

Every loader returns uint8 RGB `[H, W, 3]`; bad input raises `InputError` with a one-line message.
Resizing is done with PIL (Lanczos, which antialiases when downscaling) and the aspect ratio is always
kept: `fit_image` centre-crops or pads, never stretches.

Geometry convention (engine-wide): pixel centres at integer coordinates. A PIL / `align_corners=False`
resize by factor s maps x -> s * (x + 0.5) - 0.5, so intrinsics follow the same map (see `Fit`).
"""
from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from engine import validate
from engine.errors import InputError
from engine.model_defaults import MODEL_HEIGHT, MODEL_WIDTH

MAX_SIDE = 8192
MAX_PIXELS = 50_000_000
# Pad colour for fit_image(mode="pad"): black, the same colour the warped renders use for holes (-1), so the
# padded border looks the same in the conditioning frame and in every warp.
PAD_VALUE = 0
# Decoders we accept for user files. Anything else (EPS would run Ghostscript, exotic plugins) is refused.
# How fit_image brings an image to the target size (never by stretching).
FIT_MODES = ("crop", "pad")
ALLOWED_FORMATS = ("PNG", "JPEG", "WEBP", "TIFF", "BMP", "GIF", "PPM", "TGA", "AVIF")  # JPEG covers MPO


def _check_size(width: int, height: int, what: str) -> None:
    if width <= 0 or height <= 0:
        raise InputError(f"{what}: image is empty ({width}x{height} pixels)")
    if width > MAX_SIDE or height > MAX_SIDE or width * height > MAX_PIXELS:
        raise InputError(
            f"{what}: image is too large ({width}x{height}); the limit is {MAX_SIDE} px a side and "
            f"{MAX_PIXELS // 1_000_000} MP"
        )


def _open_pil(source, what: str) -> Image.Image:
    """Open and fully decode an image file without trusting its header."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise InputError(f"{what}: file not found")
        fp = path.open("rb")
    elif isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) == 0:
            raise InputError(f"{what}: no data (0 bytes)")
        fp = io.BytesIO(bytes(source))
    elif hasattr(source, "read"):
        fp = source
    else:  # pragma: no cover - guarded by load_image
        raise InputError(f"{what}: unsupported source type {type(source).__name__}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            Image.init()
            img = Image.open(fp, formats=[f for f in ALLOWED_FORMATS if f in Image.OPEN])
            _check_size(img.width, img.height, what)  # before decoding: bomb-safe
            if getattr(img, "n_frames", 1) > 1:
                img.seek(0)
            if ImageFile.LOAD_TRUNCATED_IMAGES:  # someone relaxed PIL globally; we still want a full decode
                raise InputError(f"{what}: PIL is configured to accept truncated images; refusing")
            img.load()
    except InputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InputError(f"{what}: image is too large (decompression bomb guard)") from None
    except UnidentifiedImageError:
        raise InputError(f"{what}: not an image file (format not recognised or not allowed; "
                         f"use {', '.join(ALLOWED_FORMATS[:5])}...)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise InputError(f"{what}: corrupt or truncated image ({str(exc).splitlines()[0][:80]})") from None
    finally:
        if isinstance(source, (str, os.PathLike)):
            fp.close()
    return img


def _composite_white(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    a = alpha.astype(np.float32)[..., None] / 255.0
    out = rgb.astype(np.float32) * a + 255.0 * (1.0 - a)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def _pil_to_rgb(img: Image.Image, what: str) -> np.ndarray:
    try:
        img = ImageOps.exif_transpose(img)
    except Exception:  # a broken EXIF block must not make the image unusable
        pass
    mode = img.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        arr = np.asarray(img).astype(np.float64)
        if arr.min() < 0:
            raise InputError(f"{what}: negative pixel values in a {mode} image")
        peak = 65535.0 if arr.max() <= 65535 else float(arr.max())
        return np.repeat(np.round(arr / peak * 255.0).astype(np.uint8)[..., None], 3, axis=-1)
    if mode == "F":
        return _array_to_rgb(np.asarray(img, dtype=np.float32), what)
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
        rgba = np.asarray(img.convert("RGBA"))
        return _composite_white(rgba[..., :3], rgba[..., 3])
    if mode == "RGB":
        return np.ascontiguousarray(np.asarray(img, dtype=np.uint8))
    return np.ascontiguousarray(np.asarray(img.convert("RGB"), dtype=np.uint8))


def _array_to_rgb(arr: np.ndarray, what: str) -> np.ndarray:
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise InputError(f"{what}: array must be [H,W], [H,W,1], [H,W,3] or [H,W,4]; got shape {tuple(arr.shape)}")
    _check_size(arr.shape[1], arr.shape[0], what)
    if arr.dtype == np.uint8:
        out = arr
    elif arr.dtype == np.uint16:
        out = np.round(arr.astype(np.float32) / 257.0).astype(np.uint8)
    elif arr.dtype in (np.float16, np.float32, np.float64):
        if not np.isfinite(arr).all():
            raise InputError(f"{what}: float image contains NaN or infinite values")
        if arr.min() < -1e-3 or arr.max() > 1 + 1e-3:
            raise InputError(f"{what}: float image values must lie in [0, 1] (got {arr.min():.3g}..{arr.max():.3g})")
        out = np.round(np.clip(arr.astype(np.float32), 0, 1) * 255.0).astype(np.uint8)
    else:
        raise InputError(f"{what}: unsupported array dtype {arr.dtype} (use uint8, uint16 or float in [0,1])")
    if out.ndim == 2:
        out = np.repeat(out[..., None], 3, axis=-1)
    elif out.shape[2] == 4:
        out = _composite_white(out[..., :3], out[..., 3])
    return np.ascontiguousarray(out)


def load_image(source, name: str | None = None) -> np.ndarray:
    """Any user image -> uint8 RGB array [H, W, 3].

    `source`: a path, bytes, a binary file object, a PIL image or a numpy array (uint8, uint16, or float
    in [0, 1]; [H,W], [H,W,1], [H,W,3] or [H,W,4]). EXIF orientation is applied, alpha is composited over
    white, grayscale becomes RGB and 16-bit images are scaled (not clipped) to 8 bits. Non-images, corrupt
    or truncated files, empty and over-large images raise `InputError`.
    """
    if name is None:
        name = f"image {Path(source).name}" if isinstance(source, (str, os.PathLike)) else "image"
    if isinstance(source, np.ndarray):
        return _array_to_rgb(source, name)
    if isinstance(source, torch.Tensor):
        raise InputError(f"{name}: pass a numpy array or file, not a torch tensor")
    if isinstance(source, Image.Image):
        _check_size(source.width, source.height, name)
        try:
            source.load()
        except (OSError, ValueError, SyntaxError) as exc:
            raise InputError(f"{name}: corrupt or truncated image ({exc})") from None
        return _pil_to_rgb(source, name)
    if isinstance(source, (str, os.PathLike, bytes, bytearray, memoryview)) or hasattr(source, "read"):
        return _pil_to_rgb(_open_pil(source, name), name)
    raise InputError(f"{name}: unsupported source type {type(source).__name__}")


@dataclass(frozen=True)
class Fit:
    """How `fit_image` mapped a source image onto the target size.

    The source is resized to `resized_size` (per-axis factors `scale_x`, `scale_y`, both ~= `scale`),
    then `crop_x/crop_y` pixels are removed from the top-left (mode "crop") or `pad_x/pad_y` pixels are
    added there (mode "pad"). Sizes are (height, width).
    """

    mode: str
    scale: float
    scale_x: float
    scale_y: float
    crop_x: int
    crop_y: int
    pad_x: int
    pad_y: int
    source_size: tuple[int, int]
    resized_size: tuple[int, int]
    target_size: tuple[int, int]

    def apply_to_intrinsics(self, K) -> np.ndarray:
        """K (pixels, source image) -> K of the fitted image (float32 numpy).

        The resize by (scale_y, scale_x) is :func:`engine.cameras.scale_intrinsics` (x' = s (x + 0.5) - 0.5),
        then the crop or pad shifts the principal point: x'' = x' - crop + pad.
        """
        from engine.cameras import scale_intrinsics

        out = scale_intrinsics(validate.intrinsics(K, "intrinsics", batch=False), self.scale_y, self.scale_x)
        out[0, 2] += self.pad_x - self.crop_x
        out[1, 2] += self.pad_y - self.crop_y
        return out.astype(np.float32)

    def apply_to_depth(self, depth) -> np.ndarray:
        """Depth [H,W] of the source -> depth of the fitted image (bilinear; padding = 0 = no point).

        Pixels with depth <= 0 count as "no data": the bilinear weights are renormalised over valid
        neighbours, and an output pixel that is mostly invalid stays 0. With all-valid input this is
        exactly the official bilinear (align_corners=False) resize.
        """
        d = np.asarray(depth, dtype=np.float32)
        if d.shape != self.source_size:
            raise InputError(f"depth is {d.shape[0]}x{d.shape[1]} but the image is {self.source_size[0]}x{self.source_size[1]}")
        resized = resize_depth(d, *self.resized_size)
        return self._place(resized, 0.0)

    def apply_to_mask(self, mask) -> np.ndarray:
        """Bool mask [H,W] of the source -> mask of the fitted image (nearest; padding = False)."""
        m = torch.from_numpy(np.asarray(mask, dtype=np.float32))[None, None]
        r = F.interpolate(m, size=self.resized_size, mode="nearest")[0, 0].numpy() > 0.5
        return self._place(r, False)

    def _place(self, arr: np.ndarray, fill) -> np.ndarray:
        th, tw = self.target_size
        if self.mode == "crop":
            return np.ascontiguousarray(arr[self.crop_y:self.crop_y + th, self.crop_x:self.crop_x + tw])
        out = np.full((th, tw) + arr.shape[2:], fill, dtype=arr.dtype)
        rh, rw = arr.shape[:2]
        out[self.pad_y:self.pad_y + rh, self.pad_x:self.pad_x + rw] = arr
        return out


def resize_depth(depth: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear (align_corners=False) depth resize that ignores pixels with depth <= 0 (see Fit.apply_to_depth)."""
    d = np.asarray(depth, dtype=np.float32)
    if d.shape == (height, width):
        return d.copy()
    t = torch.from_numpy(np.ascontiguousarray(d))[None, None]
    valid = (t > 0).float()
    num = F.interpolate(t * valid, size=(height, width), mode="bilinear", align_corners=False)
    den = F.interpolate(valid, size=(height, width), mode="bilinear", align_corners=False)
    out = torch.where(den > 0.5, num / den.clamp_min(1e-8), torch.zeros_like(num))
    return out[0, 0].numpy().astype(np.float32)


def plan_fit(source_size: tuple[int, int], height: int, width: int, mode: str = "crop") -> Fit:
    """The `Fit` that `fit_image` would use for a source of (height, width) = source_size."""
    validate.one_of(mode, FIT_MODES, "fit mode")
    height, width = validate.image_size(height, width, name="fit target")
    sh, sw = source_size
    if sh <= 0 or sw <= 0:
        raise InputError(f"image is empty ({sw}x{sh} pixels)")
    scale = max(height / sh, width / sw) if mode == "crop" else min(height / sh, width / sw)
    if mode == "crop":
        rh, rw = max(height, round(sh * scale)), max(width, round(sw * scale))
        crop_x, crop_y, pad_x, pad_y = (rw - width) // 2, (rh - height) // 2, 0, 0
    else:
        rh, rw = max(1, min(height, round(sh * scale))), max(1, min(width, round(sw * scale)))
        crop_x, crop_y, pad_x, pad_y = 0, 0, (width - rw) // 2, (height - rh) // 2
    return Fit(mode, float(scale), rw / sw, rh / sh, crop_x, crop_y, pad_x, pad_y,
               (sh, sw), (rh, rw), (int(height), int(width)))


def fit_image(image: np.ndarray, height: int = MODEL_HEIGHT, width: int = MODEL_WIDTH,
              mode: str = "crop") -> tuple[np.ndarray, Fit]:
    """Bring a uint8 [H,W,3] image to height x width keeping the aspect ratio.

    mode "crop": scale to cover, centre crop. mode "pad": scale to fit, centre, pad with black
    (`PAD_VALUE`). Returns (uint8 image [height, width, 3], Fit).
    """
    validate.uint8_image(image)
    fit = plan_fit(image.shape[:2], height, width, mode)
    rh, rw = fit.resized_size
    if (rh, rw) == image.shape[:2]:
        resized = image
    else:
        # reducing_gap: box-reduce by an integer factor first, then Lanczos (same look, much faster on big photos)
        resized = np.array(Image.fromarray(image).resize((rw, rh), Image.Resampling.LANCZOS, reducing_gap=3.0),
                           dtype=np.uint8)
    if mode == "crop":
        out = fit._place(resized, 0)
    else:
        out = np.full((fit.target_size[0], fit.target_size[1], 3), PAD_VALUE, dtype=np.uint8)
        out[fit.pad_y:fit.pad_y + rh, fit.pad_x:fit.pad_x + rw] = resized
    return np.ascontiguousarray(out), fit


def to_model_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 [H,W,3] -> float32 torch [3,H,W] in [-1, 1]."""
    validate.uint8_image(image)
    arr = image if image.flags.writeable and image.flags.c_contiguous else np.array(image, order="C")
    return torch.from_numpy(arr).permute(2, 0, 1).float() / 127.5 - 1.0


def to_uint8(tensor) -> np.ndarray:
    """Torch/numpy [..., 3, H, W] in [-1, 1] -> uint8 numpy [..., H, W, 3] (rounded, clamped)."""
    t = torch.as_tensor(tensor).detach()
    if t.dim() < 3 or t.shape[-3] != 3:
        raise ValueError(f"expected [..., 3, H, W], got {tuple(t.shape)}")
    t = ((t.float().cpu() + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8)
    return np.ascontiguousarray(t.movedim(-3, -1).numpy())
