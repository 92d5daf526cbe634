"""The official fidelity mode (``fit="official"``): the numerical quirks of NVIDIA's ``gen3c_single_image.py``.

The studio's default mode keeps the aspect ratio (crop or pad), rounds to uint8 and stays in float32; this mode
reproduces what the official main loop does instead, step for step, so a run can be compared with it:

- cache image (``official_cache_image``): the image stretched with OpenCV bilinear to 1280x720 (a uint8 result),
  divided by 255 and resized with torch bilinear (no antialias) to the model size, then x2 - 1;
- chunk-0 condition frame (``official_condition_frame``): the image file's pixels as bf16(u/128 - 1), resized
  (bicubic with antialias, stretched) to the model size when the sizes differ;
- condition latents (``official_condition_latent``): chunk 0's clip is bf16, so the tokenizer's normalisation
  (z - mean) / std and the x sigma_data run in bf16 arithmetic; later chunks normalise in float32; both are then
  rounded to bf16;
- decoded frames to uint8 by truncation (``truncate_to_uint8``);
- seed depth: MoGe on the image stretched to 720x1280 (``engine.depth.official_seed_depth``), a depth file
  stretched bilinearly to the model size with K scaled per axis without the half-pixel term
  (``official_depth_to_size``), as upstream scales the MoGe intrinsics.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from engine import validate

MOGE_SIZE = (720, 1280)  # the official image size for MoGe and the cache image's detour (height, width)

__all__ = ["MOGE_SIZE", "official_cache_image", "official_condition_frame", "official_condition_latent",
           "official_depth_to_size", "truncate_to_uint8"]


def official_cache_image(image: np.ndarray, height: int, width: int) -> torch.Tensor:
    """The image the official cache gets: uint8 [H0,W0,3] -> float32 [3,height,width] in [-1, 1].

    ``_predict_moge_depth``: ``cv2.resize`` to 1280x720 (INTER_LINEAR, rounds to uint8), / 255, torch bilinear
    (align_corners False, no antialias) to (height, width), x 2 - 1.
    """
    import cv2

    image = validate.uint8_image(image)
    mh, mw = MOGE_SIZE
    stretched = cv2.resize(np.ascontiguousarray(image), (mw, mh))
    x = torch.tensor(stretched / 255.0, dtype=torch.float32).permute(2, 0, 1)
    x = F.interpolate(x[None], size=(height, width), mode="bilinear", align_corners=False)[0]
    return x * 2 - 1


def official_condition_frame(image: np.ndarray, height: int, width: int) -> torch.Tensor:
    """The official chunk-0 condition frame: float32 [3,height,width] holding bf16 values of u/128 - 1.

    ``read_video_or_image_into_frames_BCTHW``: u / 128 - 1 cast to bf16; at another size the frame is stretched
    with bicubic + antialias (computed in float32, as torchvision does for bf16 tensors) and cast back to bf16.
    """
    image = validate.uint8_image(image)
    x = torch.from_numpy(image.transpose(2, 0, 1) / 128.0 - 1.0).bfloat16()
    if tuple(x.shape[1:]) != (height, width):
        x = F.interpolate(x.float()[None], size=(height, width), mode="bicubic", align_corners=False,
                          antialias=True)[0].bfloat16()
    return x.float()


def official_condition_latent(vae, clip: torch.Tensor, *, bf16_input: bool) -> torch.Tensor:
    """Condition latent of a [1,3,T,H,W] clip as the official ``get_condition_latent`` makes it (float32 copy).

    ``bf16_input`` (chunk 0, whose clip is bf16): the raw latent is cast to bf16 and normalised with bf16 mean and
    std in bf16 arithmetic, then x sigma_data in bf16. Otherwise (later chunks) the normalisation is float32. Either
    way the result is rounded to bf16, as ``get_condition_latent`` casts it.
    """
    with torch.no_grad():
        if not bf16_input:
            return vae.encode(clip).float().bfloat16().float()
        z = vae.encode_raw(clip).float()
        t = z.shape[2]
        channels = vae.mean.shape[0]
        mean = vae.mean[:, :t].reshape(1, channels, t, 1, 1).to(z.device).bfloat16()
        std = vae.std[:, :t].reshape(1, channels, t, 1, 1).to(z.device).bfloat16()
        return ((z.bfloat16() - mean) / std * vae.sigma_data).float()


def truncate_to_uint8(video: torch.Tensor) -> np.ndarray:
    """[T,3,H,W] decoded frames -> uint8 [T,H,W,3] as ``_run_tokenizer_decoding``: ((1 + x).clamp(0, 2) / 2 * 255)
    truncated (not rounded)."""
    v = ((1.0 + video.float()).clamp(0, 2) / 2 * 255).to(torch.uint8)
    return v.permute(0, 2, 3, 1).cpu().numpy()


def official_depth_to_size(depth: np.ndarray, K: np.ndarray, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(depth [height,width], K) of a depth map stretched to (height, width) the way upstream resizes MoGe's depth:
    torch bilinear (align_corners False) and K scaled per axis (f and c times the factor, no half-pixel term)."""
    d = np.asarray(depth, np.float32)
    K = np.asarray(K, np.float64).copy()
    if d.shape != (height, width):
        h0, w0 = d.shape
        t = torch.from_numpy(np.ascontiguousarray(d))[None, None]
        d = F.interpolate(t, size=(height, width), mode="bilinear", align_corners=False)[0, 0].numpy()
        K[0, 0] *= width / w0
        K[0, 2] *= width / w0
        K[1, 1] *= height / h0
        K[1, 2] *= height / h0
    return np.ascontiguousarray(d, dtype=np.float32), K.astype(np.float32)
