"""engine.depth: MoGe loading/estimation through the real checkpoint path (tiny random models) and depth files."""
from __future__ import annotations

import io
import math
import os
from functools import partial

import numpy as np
import pytest
import torch
from PIL import Image

from engine import depth as D
from engine.errors import InputError, WeightsMissingError


# --------------------------------------------------------------------------------------- tiny MoGe
def _tiny_backbone(*, pretrained=False, **kwargs):
    """A hand-shrunk DINOv2 (width 32, 4 blocks) standing in for ViT-S/14 so tests run in seconds."""
    from moge.model.dinov2.layers import MemEffAttention, NestedTensorBlock
    from moge.model.dinov2.models.vision_transformer import DinoVisionTransformer

    assert not pretrained
    return DinoVisionTransformer(img_size=518, patch_size=14, embed_dim=32, depth=4, num_heads=2, mlp_ratio=2,
                                 block_fn=partial(NestedTensorBlock, attn_class=MemEffAttention),
                                 init_values=1.0, block_chunks=0)


@pytest.fixture
def tiny_backbone(monkeypatch):
    import moge.model.dinov2.hub.backbones as backbones

    monkeypatch.setattr(backbones, "dinov2_vits14", _tiny_backbone)


V1_CONFIG = dict(encoder="dinov2_vits14", intermediate_layers=4, dim_proj=16, dim_upsample=[8, 8, 8],
                 num_res_blocks=1, remap_output="exp", res_block_norm="layer_norm", last_conv_channels=8)


def _head(dim_out):
    return dict(dim_in=[16, 8, 8, 8, 8], dim_res_blocks=[16, 8, 8, 8, 8], dim_out=[None] * 4 + [dim_out],
                resamplers=["conv_transpose"] * 3 + ["bilinear"], num_res_blocks=0,
                res_block_in_norm="none", res_block_hidden_norm="layer_norm")


V2_CONFIG = dict(
    encoder=dict(backbone="dinov2_vits14", intermediate_layers=4, dim_out=16),
    neck=dict(dim_in=[18, 2, 2, 2, 2], dim_res_blocks=[16, 8, 8, 8, 8], dim_out=[None] * 5,
              resamplers=["conv_transpose"] * 3 + ["bilinear"], num_res_blocks=[0, 1, 1, 0, 0],
              res_block_in_norm="none", res_block_hidden_norm="layer_norm"),
    points_head=_head(3), mask_head=_head(1), scale_head=dict(dims=[32, 16, 1]), remap_output="exp",
)


def _save_tiny(tmp_path, version):
    from moge.model import import_model_class_by_version

    torch.manual_seed(0)
    cfg = V1_CONFIG if version == "v1" else V2_CONFIG
    model = import_model_class_by_version(version)(**cfg)
    path = tmp_path / version / "model.pt"
    path.parent.mkdir(parents=True)
    torch.save({"model_config": cfg, "model": model.state_dict()}, path)
    return path, model


def _image(h=64, w=96):
    ys, xs = np.mgrid[0:h, 0:w]
    return np.stack([xs * 2 % 256, ys * 3 % 256, (xs + ys) % 256], -1).astype(np.uint8)


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_tiny_moge_estimate(tmp_path, tiny_backbone, version):
    path, _ = _save_tiny(tmp_path, version)
    calls = []
    est = D.MoGeEstimator(str(path), device="cpu", num_tokens=24, progress=lambda f, m: calls.append(f))
    assert est.version == version and not est.use_fp16 and est.dtype == torch.float32
    res = est.estimate(_image())
    assert res.depth.shape == (64, 96) and res.depth.dtype == np.float32 and res.K.shape == (3, 3)
    assert res.mask.shape == (64, 96) and res.mask.dtype == bool
    assert np.isfinite(res.depth).all() and (res.depth >= 0).all() and res.depth.max() <= D.MAX_DEPTH
    assert (res.depth[~res.mask] == D.INVALID_DEPTH).all()
    # Pixel K: principal point at the image centre in pixels, positive focals, square-ish pixels.
    assert res.K[0, 2] == pytest.approx(48.0) and res.K[1, 2] == pytest.approx(32.0)
    assert res.K[0, 0] > 0 and res.K[1, 1] == pytest.approx(res.K[0, 0], rel=1e-4)
    res.validate(64, 96)
    assert calls[0] == 0.0 and calls[-1] == 1.0
    est.release()
    with pytest.raises(RuntimeError):
        est.estimate(_image())


def test_version_detected_from_keys_when_config_is_ambiguous(tmp_path, tiny_backbone):
    _, m1 = _save_tiny(tmp_path, "v1")
    _, m2 = _save_tiny(tmp_path / "b", "v2")
    assert D.detect_moge_version({"model_config": {}, "model": m1.state_dict()}) == "v1"
    assert D.detect_moge_version({"model_config": {}, "model": m2.state_dict()}) == "v2"
    with pytest.raises(InputError, match="version"):
        D.detect_moge_version({"model_config": {}, "model": {"x": torch.zeros(1)}})


def test_invalid_pixel_rule():
    depth = torch.tensor([[1.0, float("inf"), float("nan"), 2e4], [0.5, 3.0, -1.0, 7.0]])
    mask = torch.tensor([[True, False, True, True], [False, True, True, True]])
    K = torch.tensor([[0.8, 0, 0.5], [0, 1.2, 0.5], [0, 0, 1]])
    res = D.moge_output_to_result({"depth": depth, "mask": mask, "intrinsics": K}, height=2, width=4)
    np.testing.assert_array_equal(res.depth, [[1.0, 1000.0, 1e4, 1e4], [1000.0, 3.0, 0.0, 7.0]])
    np.testing.assert_allclose(res.K, [[3.2, 0, 2.0], [0, 2.4, 1.0], [0, 0, 1]], rtol=1e-6)


def test_estimate_applies_rule_through_model(tmp_path, tiny_backbone, monkeypatch):
    path, _ = _save_tiny(tmp_path, "v1")
    est = D.MoGeEstimator(path, device="cpu", num_tokens=24)
    real_infer = est._model.infer

    def infer_with_holes(image, **kw):
        out = real_infer(image, **kw)
        out["mask"][:10] = False
        out["depth"][:10] = torch.inf
        out["depth"][20, 5] = torch.nan
        out["mask"][20, 5] = True
        return out

    monkeypatch.setattr(est._model, "infer", infer_with_holes)
    res = est.estimate(_image())
    assert (res.depth[:10] == D.INVALID_DEPTH).all() and not res.mask[:10].any()
    assert res.depth[20, 5] == D.MAX_DEPTH


def test_checkpoint_key_mismatch_is_reported(tmp_path, tiny_backbone):
    path, model = _save_tiny(tmp_path, "v2")
    sd = model.state_dict()
    sd.pop("mask_head.output_blocks.4.weight")
    sd["extra.weight"] = torch.zeros(1)
    bad = tmp_path / "bad.pt"
    torch.save({"model_config": V2_CONFIG, "model": sd}, bad)
    with pytest.raises(InputError, match="1 missing keys.*1 unexpected"):
        D.MoGeEstimator(bad, device="cpu")
    sd = model.state_dict()
    sd["mask_head.output_blocks.4.weight"] = torch.zeros(2, 8, 1, 1)
    torch.save({"model_config": V2_CONFIG, "model": sd}, bad)
    with pytest.raises(InputError, match="shapes"):
        D.MoGeEstimator(bad, device="cpu")
    (tmp_path / "junk.pt").write_bytes(b"garbage")
    with pytest.raises(InputError, match="not loadable"):
        D.MoGeEstimator(tmp_path / "junk.pt", device="cpu")
    torch.save({"weights": 1}, tmp_path / "dict.pt")
    with pytest.raises(InputError, match="model_config"):
        D.MoGeEstimator(tmp_path / "dict.pt", device="cpu")


def test_missing_weights_message(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsMissingError, match="moge-vitl/resolve/main/model.pt"):
        D.MoGeEstimator(tmp_path / "nope" / "model.pt")
    with pytest.raises(WeightsMissingError, match="moge/model.pt"):
        D.MoGeEstimator("Ruicheng/definitely-not-cached-moge")


def test_find_moge_weights(tmp_path, monkeypatch):
    monkeypatch.delenv("GEN3C_WEIGHTS", raising=False)
    monkeypatch.delenv("MOGE_MODEL", raising=False)
    assert D.find_moge_weights(tmp_path) is None
    other = tmp_path / "x.pt"
    other.write_bytes(b"1")
    monkeypatch.setenv("MOGE_MODEL", str(other))
    assert D.find_moge_weights(tmp_path) == other
    env_dir = tmp_path / "env"
    (env_dir / "moge").mkdir(parents=True)
    (env_dir / "moge" / "model.pt").write_bytes(b"1")
    monkeypatch.setenv("GEN3C_WEIGHTS", str(env_dir))
    assert D.find_moge_weights(tmp_path) == env_dir / "moge" / "model.pt"
    (tmp_path / "moge").mkdir()
    (tmp_path / "moge" / "model.pt").write_bytes(b"1")
    assert D.find_moge_weights(tmp_path) == tmp_path / "moge" / "model.pt"


# -------------------------------------------------------------------------------------- depth files
def _depth(h=12, w=16):
    ys, xs = np.mgrid[0:h, 0:w]
    return (1.0 + 0.1 * xs + 0.05 * ys).astype(np.float32)


def test_npy_default_fov_note(tmp_path):
    f = tmp_path / "d.npy"
    np.save(f, _depth())
    res = D.load_depth_file(f, 12, 16)
    np.testing.assert_array_equal(res.depth, _depth())
    assert res.mask.all()
    fy = 6 / math.tan(math.radians(30))
    np.testing.assert_allclose(res.K, [[fy, 0, 8], [0, fy, 6], [0, 0, 1]], rtol=1e-6)
    assert any("60 degree" in n for n in res.notes)
    res2 = D.load_depth_file(f, 12, 16, fov_y_deg=90)
    assert res2.K[1, 1] == pytest.approx(6.0) and not res2.notes
    res3 = D.load_depth_file(f, 12, 16, K=np.diag([5.0, 5.0, 1.0]) + np.array([[0, 0, 8], [0, 0, 6], [0, 0, 0]]))
    assert res3.K[0, 0] == 5.0


def test_npz_with_K_and_mask(tmp_path):
    f = tmp_path / "d.npz"
    K = np.array([[20.0, 0, 7.5], [0, 20.0, 5.5], [0, 0, 1]])
    mask = np.ones((12, 16), bool)
    mask[0, 0] = False
    np.savez_compressed(f, depth=_depth(), K=K, mask=mask)
    res = D.load_depth_file(f, 12, 16)
    np.testing.assert_allclose(res.K, K)
    assert res.depth[0, 0] == 0 and not res.mask[0, 0] and res.mask.sum() == 12 * 16 - 1
    np.savez(f, depth=_depth(), intrinsics=K)
    np.testing.assert_allclose(D.load_depth_file(f, 12, 16).K, K)


def test_png16_millimetres_and_scale(tmp_path):
    mm = np.array([[1000, 2500], [0, 65535]], np.uint16)
    f = tmp_path / "d.png"
    Image.fromarray(mm).save(f)
    res = D.load_depth_file(f, 2, 2)
    np.testing.assert_allclose(res.depth, [[1.0, 2.5], [0.0, 65.535]], rtol=1e-6)
    assert not res.mask[1, 0]
    np.testing.assert_allclose(D.load_depth_file(f, 2, 2, scale=0.01).depth[0], [10.0, 25.0], rtol=1e-6)
    Image.fromarray(np.full((2, 2), 9, np.uint8)).save(f)
    with pytest.raises(InputError, match="16-bit"):
        D.load_depth_file(f, 2, 2)


def test_exr(tmp_path):
    os.environ.setdefault("OPENCV_IO_ENABLE_OPENEXR", "1")
    cv2 = pytest.importorskip("cv2")
    f = tmp_path / "d.exr"
    try:
        ok = cv2.imwrite(str(f), _depth())
    except cv2.error:
        ok = False
    if not ok:
        pytest.skip("this OpenCV build cannot write EXR")
    np.testing.assert_allclose(D.load_depth_file(f, 12, 16).depth, _depth(), rtol=1e-6)


def test_exr_unreadable_is_a_clear_error(tmp_path):
    f = tmp_path / "d.exr"
    f.write_bytes(b"\x76\x2f\x31\x01" + b"\x00" * 64)
    with pytest.raises(InputError, match="EXR"):
        D.load_depth_file(f, 12, 16)


def test_same_aspect_is_resized_with_K(tmp_path):
    f = tmp_path / "d.npz"
    K = np.array([[20.0, 0, 7.5], [0, 20.0, 5.5], [0, 0, 1]])
    np.savez(f, depth=np.full((12, 16), 2.0, np.float32), K=K)
    res = D.load_depth_file(f, 24, 32)
    assert res.depth.shape == (24, 32) and np.allclose(res.depth, 2.0)
    np.testing.assert_allclose(res.K, [[40, 0, 15.5], [0, 40, 11.5], [0, 0, 1]], rtol=1e-6)
    assert any("resized" in n for n in res.notes)


def test_nonfinite_share_reported(tmp_path):
    d = _depth()
    d[:3] = np.nan
    f = tmp_path / "d.npy"
    np.save(f, d)
    res = D.load_depth_file(f, 12, 16)
    assert (res.depth[:3] == 0).all() and not res.mask[:3].any() and res.mask[3:].all()
    assert any("25.0% of depth pixels were NaN/inf" in n for n in res.notes)


@pytest.mark.parametrize("arr, kwargs, match", [
    (np.full((12, 16), np.nan, np.float32), {}, "NaN or infinite"),
    (-_depth(), {}, "negative"),
    (np.zeros((12, 16), np.float32), {}, "no valid depth"),
    (_depth(12, 20), {}, "aspect"),
    (np.zeros((3, 12, 16), np.float32), {}, "2-D"),
    (_depth(), {"K": np.zeros((3, 3))}, "K"),
    (_depth(), {"K": np.eye(4)}, "K"),
    (np.array([["a"]]), {}, "numeric|not a valid"),
])
def test_bad_depth_arrays(tmp_path, arr, kwargs, match):
    f = tmp_path / "d.npy"
    np.save(f, arr)
    with pytest.raises(InputError, match=match):
        D.load_depth_file(f, 12, 16, **kwargs)


def test_hostile_files(tmp_path):
    f = tmp_path / "x.npy"
    np.save(f, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(InputError):
        D.load_depth_file(f, 12, 16)
    f.write_bytes(b"hello world")
    with pytest.raises(InputError, match="unsupported format"):
        D.load_depth_file(f, 12, 16)
    # A header claiming a gigantic array must be rejected before anything is allocated.
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f4", "fortran_order": False, "shape": (100000, 100000)})
    f.write_bytes(buf.getvalue())
    with pytest.raises(InputError, match="shape"):
        D.load_depth_file(f, 12, 16)
    np.savez(tmp_path / "k.npz", other=np.ones(3))
    with pytest.raises(InputError, match="'depth'"):
        D.load_depth_file(tmp_path / "k.npz", 12, 16)
    (tmp_path / "t.npz").write_bytes(b"PK\x03\x04broken")
    with pytest.raises(InputError, match="npz"):
        D.load_depth_file(tmp_path / "t.npz", 12, 16)
    with pytest.raises(InputError, match="not found"):
        D.load_depth_file(tmp_path / "missing.npy", 12, 16)


def test_bytes_and_file_objects(tmp_path):
    buf = io.BytesIO()
    np.save(buf, _depth())
    np.testing.assert_array_equal(D.load_depth_file(buf.getvalue(), 12, 16).depth, _depth())
    buf.seek(0)
    np.testing.assert_array_equal(D.load_depth_file(buf, 12, 16).depth, _depth())
    with pytest.raises(InputError, match="empty"):
        D.load_depth_file(b"", 12, 16)


def test_depth_result_coerces_and_validates():
    r = D.DepthResult(np.ones((2, 3)), np.array([[2, 0, 1.5], [0, 2, 1], [0, 0, 1]]), np.ones((2, 3), np.uint8))
    assert r.depth.dtype == np.float32 and r.K.dtype == np.float32 and r.mask.dtype == bool
    assert r.validate(2, 3) is r
    with pytest.raises(InputError, match="image is 3x3"):
        r.validate(3, 3)
    with pytest.raises(InputError, match="finite"):
        D.DepthResult(np.full((2, 3), np.nan), r.K).validate(2, 3)
    with pytest.raises(InputError):
        D.DepthResult(r.depth, np.zeros((3, 3))).validate(2, 3)


def test_official_seed_depth_follows_upstream_resizes(tmp_path, tiny_backbone, monkeypatch):
    path, _ = _save_tiny(tmp_path, "v1")
    est = D.MoGeEstimator(path, device="cpu", num_tokens=24)
    seen = {}
    moge_depth = np.linspace(1, 3, 45 * 80, dtype=np.float32).reshape(45, 80)
    moge_depth[:5] = D.INVALID_DEPTH

    def fake_estimate(image, **kw):
        seen["shape"] = image.shape
        K = np.array([[80 * 0.7, 0, 40], [0, 45 * 1.2, 22.5], [0, 0, 1]], np.float32)
        return D.DepthResult(moge_depth, K, moge_depth < D.INVALID_DEPTH)

    monkeypatch.setattr(est, "estimate", fake_estimate)
    res = D.official_seed_depth(est, _image(90, 100), height=44, width=80, moge_size=(45, 80))
    assert seen["shape"] == (45, 80, 3)  # stretched, aspect ignored, as upstream
    ref = torch.nn.functional.interpolate(torch.from_numpy(moge_depth)[None, None], size=(44, 80),
                                          mode="bilinear", align_corners=False)[0, 0].numpy()
    np.testing.assert_allclose(res.depth, ref, rtol=1e-6)
    np.testing.assert_allclose(res.K, [[56, 0, 40], [0, 54 * 44 / 45, 22.5 * 44 / 45], [0, 0, 1]], rtol=1e-5)


def test_cpu_precision_and_argument_checks(tmp_path, tiny_backbone):
    path, _ = _save_tiny(tmp_path, "v2")
    est = D.MoGeEstimator(path, device="cpu", dtype=torch.float16)
    assert est.dtype == torch.float32 and not est.use_fp16  # MoGe's fp16 autocast is never used on CPU
    assert next(est._model.parameters()).dtype == torch.float32
    with pytest.raises(InputError, match="version"):
        D.MoGeEstimator(path, version="v3", device="cpu")
    with pytest.raises(InputError, match="dtype"):
        D.MoGeEstimator(path, device="cpu", dtype=torch.int8)
    with pytest.raises(InputError, match="uint8"):
        est.estimate(np.zeros((32, 32, 3), np.float32))
    with pytest.raises(InputError, match="too small"):
        est.estimate(np.zeros((8, 32, 3), np.uint8))
