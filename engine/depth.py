"""Seed depth: MoGe estimation (v1 / v2 checkpoints) and user depth files.

Both produce a `DepthResult` at the size of the image it belongs to (before `fit_image`); `build_scene`
then applies the same `Fit` to image, depth and K.

Invalid-pixel rule for MoGe (official `_predict_moge_depth`): mask 0 / inf -> depth 1000 (a far shell,
`INVALID_DEPTH`), NaN -> 1e4, clamp to [0, 1e4]. For depth *files*, non-finite or zero pixels mean
"no data": they become 0 (no point) and the share is reported in `DepthResult.notes`.
"""
from __future__ import annotations

import gc
import io
import math
import os
import re
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from engine import validate
from engine.errors import InputError, WeightsMissingError
from engine.model_defaults import MODEL_HEIGHT, MODEL_WIDTH

INVALID_DEPTH = 1000.0
MAX_DEPTH = 1e4
DEFAULT_FOV_Y_DEG = 60.0
MAX_SIDE = 8192
MOGE_URL = "https://huggingface.co/Ruicheng/moge-vitl/resolve/main/model.pt"
MOGE_HELP = (
    "MoGe depth weights not found. Download MoGe v1 ViT-L (the model GEN3C uses, ~1.3 GB) from "
    f"{MOGE_URL} and save it as <weights>/moge/model.pt (weights folder from --weights or $GEN3C_WEIGHTS), "
    "or point $MOGE_MODEL at the file. Without it, use a sample scene or supply a depth file."
)


@dataclass
class DepthResult:
    """Depth for one image: z-depth float32 [H,W], K float32 [3,3] in pixels, optional valid mask."""

    depth: np.ndarray
    K: np.ndarray
    mask: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)

    def __post_init__(self):
        self.depth = np.asarray(self.depth, dtype=np.float32)
        self.K = np.asarray(self.K, dtype=np.float32)
        if self.mask is not None:
            self.mask = np.asarray(self.mask).astype(bool, copy=False)

    def validate(self, height: int, width: int) -> "DepthResult":
        """Check shapes/dtypes/values against the image size (H, W); returns self."""
        d = np.asarray(self.depth)
        if d.shape != (height, width):
            raise InputError(f"depth is {d.shape} but the image is {height}x{width}")
        if not np.isfinite(d).all() or (d < 0).any():
            raise InputError("depth must be finite and non-negative")
        _validate_K(self.K)
        if self.mask is not None and (np.asarray(self.mask).shape != (height, width) or np.asarray(self.mask).dtype != bool):
            raise InputError(f"depth mask must be bool [{height},{width}]")
        return self


def _validate_K(K, what: str = "K") -> np.ndarray:
    return validate.intrinsics(K, what, batch=False).astype(np.float32)


# ----------------------------------------------------------------------------------------------- MoGe
def find_moge_weights(weights_dir=None) -> Path | None:
    """First existing MoGe checkpoint among <weights_dir>/moge/model.pt, $GEN3C_WEIGHTS/moge/model.pt, $MOGE_MODEL."""
    candidates = []
    if weights_dir:
        candidates.append(Path(weights_dir) / "moge" / "model.pt")
    if os.environ.get("GEN3C_WEIGHTS"):
        candidates.append(Path(os.environ["GEN3C_WEIGHTS"]) / "moge" / "model.pt")
    if os.environ.get("MOGE_MODEL"):
        candidates.append(Path(os.environ["MOGE_MODEL"]))
    for c in candidates:
        if c.is_file():
            return c
    return None


_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def _resolve_checkpoint(model) -> Path:
    p = Path(model)
    if p.is_dir():
        p = p / "model.pt"
    if p.is_file():
        return p
    if isinstance(model, str) and _HUB_ID.match(model) and not model.endswith(".pt"):
        try:
            from huggingface_hub import hf_hub_download

            return Path(hf_hub_download(repo_id=model, filename="model.pt", repo_type="model"))
        except Exception as exc:  # offline, unknown repo, network error
            raise WeightsMissingError(
                f"MoGe weights {model!r} could not be fetched from the hub ({type(exc).__name__}). {MOGE_HELP}"
            ) from None
    raise WeightsMissingError(f"MoGe checkpoint {str(model)!r} does not exist. {MOGE_HELP}")


def detect_moge_version(checkpoint: dict) -> str:
    """'v1' or 'v2' from a checkpoint's config (encoder is a name in v1, a dict in v2) or its keys."""
    cfg = checkpoint.get("model_config") or {}
    if isinstance(cfg.get("encoder"), dict) or "neck" in cfg:
        return "v2"
    if isinstance(cfg.get("encoder"), str):
        return "v1"
    keys = checkpoint.get("model", {}).keys()
    if any(k.startswith("neck.") for k in keys):
        return "v2"
    if any(k.startswith("head.") for k in keys):
        return "v1"
    raise InputError("cannot tell MoGe version from the checkpoint (pass version='v1' or 'v2')")


def _load_checkpoint(path: Path) -> dict:
    try:
        ckpt = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise InputError(f"MoGe checkpoint {path.name}: not loadable ({type(exc).__name__}: {str(exc).splitlines()[0][:80] if str(exc) else ''})") from None
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("model"), dict) or not isinstance(ckpt.get("model_config"), dict):
        raise InputError(f"MoGe checkpoint {path.name}: expected a dict with 'model_config' and 'model'")
    return ckpt


def _build_model(ckpt: dict, version: str, name: str):
    from moge.model import import_model_class_by_version

    cls = import_model_class_by_version(version)
    try:
        model = cls(**dict(ckpt["model_config"]))
    except Exception as exc:
        raise InputError(f"MoGe checkpoint {name}: its model_config does not build a {version} model ({type(exc).__name__}: {exc})") from None
    expected, got = set(model.state_dict().keys()), set(ckpt["model"].keys())
    missing, unexpected = sorted(expected - got), sorted(got - expected)
    if missing or unexpected:
        raise InputError(
            f"MoGe checkpoint {name} does not match a {version} model: {len(missing)} missing keys "
            f"{missing[:3]}, {len(unexpected)} unexpected keys {unexpected[:3]}"
        )
    try:
        model.load_state_dict(ckpt["model"], strict=True)
    except RuntimeError as exc:
        raise InputError(f"MoGe checkpoint {name}: tensor shapes do not match ({str(exc).splitlines()[-1].strip()[:100]})") from None
    return model


class MoGeEstimator:
    """MoGe depth + intrinsics for one image at a time.

    `model`: a local `model.pt` (or a folder holding one) or a hub id such as "Ruicheng/moge-vitl" (only
    fetched where the hub is reachable). `version` "v1"/"v2" or None to detect it from the checkpoint.
    On CPU the model runs in float32 (MoGe's fp16 autocast is off). On CUDA `dtype` picks the precision:
    float16 (default: fp32 weights with fp16 autocast, MoGe's own mixed precision), bfloat16 (bf16 weights)
    or float32 (the official GEN3C setting, for parity). `num_tokens` / `resolution_level` are passed to
    MoGe's `infer` (default level 9, as official).
    """

    def __init__(self, model, version: str | None = None, device=None, dtype=None, *,
                 num_tokens: int | None = None, resolution_level: int = 9, progress=None):
        if version not in (None, "v1", "v2"):
            raise InputError(f"MoGe version must be 'v1' or 'v2', got {version!r}")
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        if dtype is None:
            dtype = torch.float16 if self.device.type == "cuda" else torch.float32
        dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype
        if dtype not in (torch.float32, torch.float16, torch.bfloat16):
            raise InputError(f"MoGe dtype must be float32, float16 or bfloat16, got {dtype}")
        if self.device.type != "cuda":
            dtype = torch.float32
        self.dtype = dtype
        self.num_tokens = num_tokens
        self.resolution_level = int(resolution_level)
        _report(progress, 0.0, "loading MoGe")
        path = _resolve_checkpoint(model)
        ckpt = _load_checkpoint(path)
        self.version = version or detect_moge_version(ckpt)
        net = _build_model(ckpt, self.version, path.name)
        del ckpt
        weights_dtype = torch.bfloat16 if dtype == torch.bfloat16 else torch.float32
        self._model = net.to(device=self.device, dtype=weights_dtype).eval()
        self.checkpoint = path
        _report(progress, 1.0, "MoGe loaded")

    @property
    def use_fp16(self) -> bool:
        return self.device.type == "cuda" and self.dtype == torch.float16

    @torch.inference_mode()
    def estimate(self, image: np.ndarray, *, fov_x_deg: float | None = None, progress=None) -> DepthResult:
        """Depth, pixel intrinsics and valid mask for a uint8 [H,W,3] image, at its own size."""
        if self._model is None:
            raise RuntimeError("MoGeEstimator was released")
        validate.uint8_image(image, "MoGe input")
        H, W = image.shape[:2]
        if min(H, W) < 14:
            raise InputError(f"image {H}x{W} is too small for depth estimation (min 14 px a side)")
        _report(progress, 0.0, "estimating depth")
        x = torch.from_numpy(np.ascontiguousarray(image)).to(self.device).permute(2, 0, 1).float() / 255.0
        kwargs = dict(resolution_level=self.resolution_level, apply_mask=True, force_projection=True,
                      use_fp16=self.use_fp16)
        if self.num_tokens is not None:
            kwargs["num_tokens"] = int(self.num_tokens)
        if fov_x_deg is not None:
            kwargs["fov_x"] = float(fov_x_deg)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*autocast.*")  # MoGe's fp32 autocast on CPU
            out = self._model.infer(x, **kwargs)
        result = moge_output_to_result(out, H, W)
        _report(progress, 1.0, "depth done")
        return result

    def release(self) -> None:
        """Free the model (and the CUDA cache)."""
        self._model = None
        gc.collect()
        if self.device.type == "cuda" and torch.cuda.is_available():
            torch.cuda.empty_cache()


def call_estimator(estimator, image: np.ndarray) -> DepthResult:
    """Run a depth estimator: a `MoGeEstimator`-like object (``.estimate``) or a callable ``image -> DepthResult``."""
    result = estimator.estimate(image) if hasattr(estimator, "estimate") else estimator(image)
    if not isinstance(result, DepthResult):
        raise InputError(f"the depth estimator returned a {type(result).__name__}, not a DepthResult")
    return result


def official_seed_depth(estimator, image: np.ndarray, height: int = MODEL_HEIGHT,
                        width: int = MODEL_WIDTH, moge_size: tuple[int, int] = (720, 1280)) -> DepthResult:
    """The official GEN3C seed depth (`_predict_moge_depth`), for the official mode (``fit="official"``).

    The image is stretched (aspect ignored) with cv2 bilinear to `moge_size` (720x1280), the estimator (a
    `MoGeEstimator` or a callable, see `call_estimator`) runs there, mask-0 pixels get depth 1000, the depth is
    bilinearly resized to (height, width), NaN -> 1e4, clamp [0, 1e4], and K (pixels at moge_size) is rescaled
    by (width / 1280, height / 720) without a half-pixel term, exactly as upstream. The default fits
    (`engine.scene.build_scene` with "crop" / "pad") keep the aspect instead.
    """
    import cv2
    import torch.nn.functional as F

    validate.uint8_image(image, "MoGe input")
    mh, mw = moge_size
    stretched = cv2.resize(image, (mw, mh))
    res = call_estimator(estimator, np.ascontiguousarray(stretched))
    depth = torch.from_numpy(np.asarray(res.depth, np.float32))[None, None]
    depth = F.interpolate(depth, size=(height, width), mode="bilinear", align_corners=False)[0, 0]
    depth = torch.nan_to_num(depth, nan=MAX_DEPTH).clamp(0, MAX_DEPTH)
    K = res.K.astype(np.float64)
    K[0] *= width / mw
    K[1] *= height / mh
    return DepthResult(depth.numpy().astype(np.float32), K.astype(np.float32), None,
                       ["official GEN3C seed depth (image stretched to 720x1280 for MoGe)"])


def moge_output_to_result(out: dict, height: int, width: int) -> DepthResult:
    """MoGe `infer` output -> DepthResult with the official invalid/NaN handling and pixel K."""
    depth = out["depth"].float()
    mask = out.get("mask")
    mask = torch.isfinite(depth) if mask is None else mask.bool() & ~torch.isinf(depth)
    depth = torch.where(mask, depth, torch.full_like(depth, INVALID_DEPTH))
    depth = torch.nan_to_num(depth, nan=MAX_DEPTH, posinf=MAX_DEPTH, neginf=0.0).clamp(0.0, MAX_DEPTH)
    K = out["intrinsics"].float().cpu().clone()
    K[0] *= width
    K[1] *= height
    return DepthResult(depth.cpu().numpy().astype(np.float32), K.numpy().astype(np.float32),
                       mask.cpu().numpy().astype(bool), ["depth estimated by MoGe"])


def _report(progress, fraction: float, message: str) -> None:
    if progress is not None:
        progress(fraction, message)


# ------------------------------------------------------------------------------------------ depth files
_NPY_MAGIC = b"\x93NUMPY"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_EXR_MAGIC = b"\x76\x2f\x31\x01"
_MAX_ARRAY_BYTES = MAX_SIDE * MAX_SIDE * 8


def _read_npy(fp, what: str) -> np.ndarray:
    try:
        version = np.lib.format.read_magic(fp)
        readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
        if version not in readers:
            raise ValueError(version)
        shape, _fortran, dtype = readers[version](fp)  # header only: check the size before allocating
    except Exception:
        raise InputError(f"{what}: not a valid .npy array") from None
    if len(shape) not in (2, 3) or math.prod(shape) * dtype.itemsize > _MAX_ARRAY_BYTES:
        raise InputError(f"{what}: array shape {shape} is not a depth map [H,W] of at most {MAX_SIDE} px a side")
    held = len(fp.getbuffer()) - fp.tell() if isinstance(fp, io.BytesIO) else None
    if held is not None and held < math.prod(shape) * dtype.itemsize:  # numpy would allocate it all first
        raise InputError(f"{what}: array header claims shape {shape} but the file holds {held:,} bytes of data")
    fp.seek(0)
    try:
        return np.load(fp, allow_pickle=False)
    except Exception as exc:
        raise InputError(f"{what}: cannot read array ({type(exc).__name__})") from None


def _read_npz(data: bytes, what: str) -> dict:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except zipfile.BadZipFile:
        raise InputError(f"{what}: not a valid .npz archive") from None
    arrays = {}
    for info in infos:
        key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
        if key not in ("depth", "K", "intrinsics", "mask"):
            continue
        if info.file_size > _MAX_ARRAY_BYTES:
            raise InputError(f"{what}: member {key!r} is too large ({info.file_size} bytes)")
        try:
            member = io.BytesIO(zf.read(info))
        except Exception:
            raise InputError(f"{what}: member {key!r} is corrupt") from None
        arrays[key] = _read_npy(member, f"{what}[{key}]")
    if "depth" not in arrays:
        raise InputError(f"{what}: .npz needs a 'depth' array (optional 'K' or 'intrinsics', 'mask')")
    return arrays


def _read_png16(data: bytes, what: str, scale: float) -> np.ndarray:
    from PIL import Image

    try:
        img = Image.open(io.BytesIO(data), formats=["PNG"])
        if img.width > MAX_SIDE or img.height > MAX_SIDE:
            raise InputError(f"{what}: depth PNG is too large ({img.width}x{img.height})")
        img.load()
    except InputError:
        raise
    except Exception:
        raise InputError(f"{what}: corrupt or truncated PNG") from None
    if img.mode not in ("I;16", "I;16B", "I;16L", "I"):
        raise InputError(f"{what}: depth PNG must be 16-bit single-channel (got mode {img.mode}); 8-bit cannot hold depth")
    return np.asarray(img).astype(np.float64) * scale


def _read_exr(path: Path | None, data: bytes, what: str) -> np.ndarray:
    os.environ.setdefault("OPENCV_IO_ENABLE_OPENEXR", "1")
    try:
        import cv2
    except ImportError:
        raise InputError(f"{what}: reading .exr needs OpenCV (opencv-python-headless)") from None
    buf = np.frombuffer(data, np.uint8)
    try:
        arr = cv2.imdecode(buf, cv2.IMREAD_ANYDEPTH | cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:
        raise InputError(f"{what}: cannot read EXR ({str(exc).strip().splitlines()[-1][:80]})") from None
    if arr is None:
        raise InputError(f"{what}: cannot read EXR (corrupt file or OpenEXR support disabled)")
    if arr.ndim == 3:
        arr = arr[..., 0] if arr.shape[2] == 1 else arr[..., 2]  # cv2 is BGR: R holds depth in 3-channel EXRs
    return arr


def load_depth_file(file, height: int, width: int, K=None, fov_y_deg: float | None = None,
                    scale: float | None = None) -> DepthResult:
    """Read a user depth map that belongs to an image of (height, width) pixels.

    Formats (detected from the content): .npy, .npz (`depth`, optional `K`/`intrinsics` and `mask`),
    16-bit PNG (millimetres unless `scale` says otherwise; 0 = no data) and .exr (OpenCV). The map must be
    the image's size, or a different size with the same aspect ratio (it is then resized bilinearly and a K
    stored in the file is rescaled with it). K comes from the `K` argument (pixels, image size), else the
    file, else `fov_y_deg`, else a 60 degree vertical FOV (noted in `.notes`). Zero and non-finite pixels are
    "no data" (depth 0, mask False); negative depth, an all-invalid map or a singular K raise InputError.
    """
    from engine.cameras import intrinsics_from_fov, scale_intrinsics
    from engine.images import resize_depth

    height, width = int(height), int(width)
    notes: list[str] = []
    path = Path(file) if isinstance(file, (str, os.PathLike)) else None
    what = f"depth file {path.name}" if path is not None else "depth file"
    if scale is not None and not validate.finite_float(scale, f"{what}: scale") > 0:
        raise InputError(f"{what}: scale must be a positive number, got {scale}")
    if path is not None:
        if not path.is_file():
            raise InputError(f"{what}: file not found")
        if path.stat().st_size > _MAX_ARRAY_BYTES + 4096:
            raise InputError(f"{what}: file is too large")
        data = path.read_bytes()
    elif isinstance(file, (bytes, bytearray)):
        data = bytes(file)
    elif hasattr(file, "read"):
        data = file.read()
    else:
        raise InputError(f"{what}: unsupported source {type(file).__name__}")
    if not data:
        raise InputError(f"{what}: file is empty")

    file_K = mask = None
    if data.startswith(_NPY_MAGIC):
        depth = _read_npy(io.BytesIO(data), what)
    elif data.startswith(b"PK"):
        arrays = _read_npz(data, what)
        depth = arrays["depth"]
        file_K = arrays.get("K", arrays.get("intrinsics"))
        mask = arrays.get("mask")
    elif data.startswith(_PNG_MAGIC):
        depth = _read_png16(data, what, 1e-3 if scale is None else float(scale))
        scale = None
    elif data.startswith(_EXR_MAGIC):
        depth = _read_exr(path, data, what)
    else:
        raise InputError(f"{what}: unsupported format (use .npy, .npz, 16-bit PNG or .exr)")

    depth = np.asarray(depth)
    if depth.ndim == 3 and 1 in (depth.shape[0], depth.shape[-1]):
        depth = depth.reshape(depth.shape[1:] if depth.shape[0] == 1 else depth.shape[:2])
    if depth.ndim != 2 or depth.size == 0:
        raise InputError(f"{what}: depth must be a 2-D map [H,W], got shape {tuple(depth.shape)}")
    if not (np.issubdtype(depth.dtype, np.floating) or np.issubdtype(depth.dtype, np.integer)):
        raise InputError(f"{what}: depth dtype {depth.dtype} is not numeric")
    depth = depth.astype(np.float64)
    if scale is not None:
        if not validate.finite_float(scale, f"{what}: scale") > 0:
            raise InputError(f"{what}: scale must be a positive number, got {scale}")
        depth = depth * scale

    finite = np.isfinite(depth)
    if not finite.any():
        raise InputError(f"{what}: every depth value is NaN or infinite")
    if (depth[finite] < 0).any():
        raise InputError(f"{what}: depth has negative values (min {depth[finite].min():.4g}); expected z-depth >= 0")
    valid = finite & (depth > 0)
    if mask is not None:
        mask = np.asarray(mask)
        if mask.shape != depth.shape:
            raise InputError(f"{what}: mask shape {mask.shape} differs from depth shape {depth.shape}")
        valid &= mask.astype(bool)
    if not valid.any():
        raise InputError(f"{what}: no valid depth (all values zero, masked or non-finite)")
    if (~finite).any():
        notes.append(f"{(~finite).mean():.1%} of depth pixels were NaN/inf and are treated as no data")
    if valid.mean() < 1.0:
        notes.append(f"{1 - valid.mean():.1%} of pixels have no depth (no 3D point)")
    depth = np.where(valid, depth, 0.0).astype(np.float32)

    dh, dw = depth.shape
    if file_K is not None:
        file_K = _validate_K(file_K, f"{what}: K")
    if (dh, dw) != (height, width):
        if abs(dw / dh - width / height) > 0.01 * (width / height):
            raise InputError(f"{what}: depth is {dh}x{dw} but the image is {height}x{width} (different aspect ratio)")
        depth = resize_depth(depth, height, width)
        valid = depth > 0
        if file_K is not None:
            file_K = scale_intrinsics(file_K.astype(np.float64), height / dh, width / dw)
        notes.append(f"depth resized from {dh}x{dw} to {height}x{width}")

    if K is not None:
        K_out = _validate_K(K, "K")
    elif file_K is not None:
        K_out = np.asarray(file_K, np.float32)
    else:
        fov = DEFAULT_FOV_Y_DEG if fov_y_deg is None else fov_y_deg
        K_out = intrinsics_from_fov(fov, height, width).astype(np.float32)
        if fov_y_deg is None:
            notes.append(f"no intrinsics given: assumed a {DEFAULT_FOV_Y_DEG:g} degree vertical field of view")
    return DepthResult(depth, K_out, valid, notes)
