"""engine.images: safe loading of user images, aspect-preserving fit, tensor conversion."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from engine import images
from engine.errors import InputError


def _rgb(h=40, w=60, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _png_bytes(img: Image.Image, fmt="PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def test_sources_agree(tmp_path):
    arr = _rgb()
    data = _png_bytes(Image.fromarray(arr))
    path = tmp_path / "a.png"
    path.write_bytes(data)
    for src in (path, str(path), data, io.BytesIO(data), Image.fromarray(arr), arr):
        out = images.load_image(src)
        assert out.dtype == np.uint8 and out.shape == (40, 60, 3)
        np.testing.assert_array_equal(out, arr)


def test_exif_orientation_applied():
    arr = _rgb(20, 30)
    img = Image.fromarray(arr)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW to display
    out = images.load_image(_png_bytes(img, "PNG", exif=exif.tobytes()))
    np.testing.assert_array_equal(out, np.rot90(arr, k=-1))


def test_alpha_composited_over_white_and_grayscale():
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[0, 0, 3] = 255  # opaque red-ish
    rgba[0, 1, 3] = 0  # fully transparent -> white
    rgba[0, 2, 3] = 128
    out = images.load_image(_png_bytes(Image.fromarray(rgba, "RGBA")))
    np.testing.assert_array_equal(out[0, 0], [200, 0, 0])
    np.testing.assert_array_equal(out[0, 1], [255, 255, 255])
    a = 128 / 255
    np.testing.assert_array_equal(out[0, 2], np.round([200 * a + 255 * (1 - a), 255 * (1 - a), 255 * (1 - a)]))
    gray = np.arange(16, dtype=np.uint8).reshape(4, 4) * 10
    out = images.load_image(_png_bytes(Image.fromarray(gray, "L")))
    np.testing.assert_array_equal(out, np.repeat(gray[..., None], 3, -1))
    pal = Image.fromarray(_rgb(8, 8)).convert("P")
    assert images.load_image(_png_bytes(pal)).shape == (8, 8, 3)


def test_16bit_png_is_scaled_not_clipped():
    v = np.array([[0, 257, 32896, 65535]], dtype=np.uint16)
    out = images.load_image(_png_bytes(Image.fromarray(v)))
    np.testing.assert_array_equal(out[0, :, 0], [0, 1, 128, 255])
    np.testing.assert_array_equal(images.load_image(v)[0, :, 1], [0, 1, 128, 255])


def test_float_arrays():
    f = np.array([[[0.0, 0.5, 1.0]]], dtype=np.float32)
    np.testing.assert_array_equal(images.load_image(f)[0, 0], [0, 128, 255])
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        images.load_image(f * 3)
    with pytest.raises(InputError, match="NaN"):
        images.load_image(np.full((2, 2, 3), np.nan, np.float32))


@pytest.mark.parametrize("bad, match", [
    (b"this is not an image at all", "not an image"),
    (b"", "0 bytes"),
    (np.zeros((0, 5, 3), np.uint8), "empty"),
    (np.zeros((4, 4, 2), np.uint8), "shape"),
    (np.zeros((4, 4, 3), np.int64), "dtype"),
    (torch.zeros(3, 4, 4), "torch"),
    (12345, "unsupported"),
])
def test_rejects_bad_input(bad, match):
    with pytest.raises(InputError, match=match):
        images.load_image(bad)


def test_rejects_truncated_and_missing(tmp_path):
    data = _png_bytes(Image.fromarray(_rgb(64, 64)))
    with pytest.raises(InputError, match="corrupt or truncated"):
        images.load_image(data[: len(data) // 2])
    jpg = _png_bytes(Image.fromarray(_rgb(64, 64)), "JPEG")
    with pytest.raises(InputError, match="corrupt or truncated"):
        images.load_image(jpg[: len(jpg) // 2])
    with pytest.raises(InputError, match="not found"):
        images.load_image(tmp_path / "nope.png")


def test_rejects_huge_without_decoding():
    # A 1-bit 9000x9000 PNG compresses to a few kB; the header check must reject it before decoding.
    big = Image.new("1", (9000, 100))
    with pytest.raises(InputError, match="too large"):
        images.load_image(_png_bytes(big))
    with pytest.raises(InputError, match="too large"):
        images.load_image(np.zeros((8000, 8000), np.uint8))


def test_fit_crop_geometry_and_intrinsics():
    img = _rgb(300, 400)
    out, fit = images.fit_image(img, 100, 200, "crop")
    assert out.shape == (100, 200, 3)
    assert fit.resized_size == (150, 200) and (fit.crop_x, fit.crop_y) == (0, 25)
    assert fit.scale_x == pytest.approx(0.5) and fit.scale_y == pytest.approx(0.5)
    K = np.array([[300.0, 0, 199.5], [0, 300.0, 149.5], [0, 0, 1]])
    K2 = fit.apply_to_intrinsics(K)
    # The optical centre of the source lands on the centre of the fitted image; focal halves.
    np.testing.assert_allclose(K2, [[150, 0, 99.5], [0, 150, 49.5], [0, 0, 1]], atol=1e-5)
    # A world point projects to the same content in both images.
    X = np.array([0.3, -0.2, 2.0])
    p_src = K @ X / X[2]
    p_dst = K2.astype(np.float64) @ X / X[2]
    np.testing.assert_allclose(p_dst[:2], 0.5 * (p_src[:2] + 0.5) - 0.5 - np.array([0, 25]), atol=1e-4)


def test_fit_pad_keeps_aspect_and_pads_black():
    img = np.full((100, 100, 3), 200, np.uint8)
    out, fit = images.fit_image(img, 50, 100, "pad")
    assert out.shape == (50, 100, 3) and fit.resized_size == (50, 50) and fit.pad_x == 25
    assert (out[:, :25] == images.PAD_VALUE).all() and (out[:, 75:] == images.PAD_VALUE).all()
    assert (out[:, 25:75] == 200).all()
    d = np.full((100, 100), 2.0, np.float32)
    d2 = fit.apply_to_depth(d)
    assert d2.shape == (50, 100)
    assert (d2[:, :25] == 0).all() and np.allclose(d2[:, 25:75], 2.0)
    m = fit.apply_to_mask(np.ones((100, 100), bool))
    assert m[:, 30].all() and not m[:, 10].any()
    with pytest.raises(InputError, match="fit mode"):
        images.fit_image(img, 50, 100, "stretch")


def test_fit_depth_is_bilinear_like_official_and_ignores_holes():
    d = np.random.default_rng(1).uniform(1, 3, (64, 96)).astype(np.float32)
    _, fit = images.fit_image(_rgb(64, 96), 32, 48, "crop")
    ref = torch.nn.functional.interpolate(torch.from_numpy(d)[None, None], size=(32, 48), mode="bilinear",
                                          align_corners=False)[0, 0].numpy()
    np.testing.assert_allclose(fit.apply_to_depth(d), ref, atol=1e-6)
    d[:, :48] = 0  # a hole: its zeros must not drag valid depths down
    out = fit.apply_to_depth(d)
    assert (out[:, :23] == 0).all() and (out[:, 25:] >= 1).all()
    with pytest.raises(InputError, match="depth is"):
        fit.apply_to_depth(np.ones((10, 10)))


def test_identity_fit_is_exact():
    img = _rgb(704, 1280)
    out, fit = images.fit_image(img, 704, 1280)
    np.testing.assert_array_equal(out, img)
    K = np.array([[1000, 0, 640], [0, 1000, 352], [0, 0, 1]], np.float32)
    np.testing.assert_allclose(fit.apply_to_intrinsics(K), K)


def test_tensor_round_trip():
    img = _rgb()
    t = images.to_model_tensor(img)
    assert t.shape == (3, 40, 60) and t.dtype == torch.float32
    assert t.min() >= -1 and t.max() <= 1
    np.testing.assert_array_equal(images.to_uint8(t), img)
    np.testing.assert_array_equal(images.to_uint8(torch.full((3, 2, 2), 5.0)), np.full((2, 2, 3), 255))
    np.testing.assert_array_equal(images.to_uint8(t[None])[0], img)
    with pytest.raises(ValueError):
        images.to_uint8(torch.zeros(4, 2, 2))


def test_16bit_tiff_and_animated_gif_first_frame():
    v = (np.arange(12, dtype=np.uint16).reshape(3, 4) * 5000)
    out = images.load_image(_png_bytes(Image.fromarray(v), "TIFF"))
    np.testing.assert_array_equal(out[..., 0], np.round(v / 65535 * 255).astype(np.uint8))
    frames = [Image.new("RGB", (6, 5), c) for c in ((255, 0, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:])
    out = images.load_image(buf.getvalue())
    assert out.shape == (5, 6, 3) and out[0, 0, 0] > 200 and out[0, 0, 2] < 50


def test_directory_is_not_an_image(tmp_path):
    with pytest.raises(InputError, match="not found"):
        images.load_image(tmp_path)


def test_only_allowed_decoders():
    pcx = _png_bytes(Image.fromarray(_rgb(8, 8)), "PCX")
    with pytest.raises(InputError, match="not allowed"):
        images.load_image(pcx)
    eps_header = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n"
    with pytest.raises(InputError, match="not an image"):
        images.load_image(eps_header)
    webp = _png_bytes(Image.fromarray(_rgb(8, 8)), "WEBP", lossless=True)
    np.testing.assert_array_equal(images.load_image(webp), _rgb(8, 8))
