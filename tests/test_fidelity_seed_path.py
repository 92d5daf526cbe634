"""One seed path: the studio, `engine preview`, `engine generate` and `Gen3CPipeline.generate` build the same
seed Scene (`engine.scene.build_scene`), MoGe sees the same pixels in each, and every cache comes from that Scene.
"""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from engine import depth as depth_mod
from engine.depth import DepthResult
from engine.images import load_image
from engine.scene import build_scene

SRC_H, SRC_W = 80, 200  # not the model's 64x128 aspect: the fit crops


class FakeMoGe:
    """Stands in for engine.depth.MoGeEstimator: records every image it is given; an off-centre, non-square K."""

    seen: list = []

    def __init__(self, model, *args, **kwargs):
        self.model = model

    def estimate(self, image, **kwargs):
        FakeMoGe.seen.append(np.array(image))
        h, w = image.shape[:2]
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        depth = 2.0 + 0.5 * xx / w + 0.2 * yy / h + image[..., 1].astype(np.float32) / 1020.0
        K = np.array([[1.1 * w, 0, w / 2 + 1.3], [0, 1.05 * w, h / 2 - 0.7], [0, 0, 1]], np.float32)
        return DepthResult(depth, K)

    def release(self):
        pass


@pytest.fixture()
def fake_moge(monkeypatch):
    FakeMoGe.seen = []
    monkeypatch.setattr(depth_mod, "MoGeEstimator", FakeMoGe)
    return FakeMoGe


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("seed")
    yy, xx = np.mgrid[0:SRC_H, 0:SRC_W]
    image = np.stack([xx * 255 // SRC_W, yy * 255 // SRC_H, (7 * xx + 3 * yy) % 256], -1).astype(np.uint8)
    Image.fromarray(image).save(folder / "image.png")
    depth = (2.5 + xx / SRC_W + 0.4 * np.sin(yy / 9.0)).astype(np.float32)
    depth[30:50, 60:100] = 1.6  # a box: depth edges for the filter
    K = np.array([[150.0, 0, 103.2], [0, 140.0, 38.1], [0, 0, 1]], np.float32)
    np.savez(folder / "depth.npz", depth=depth, K=K)
    (folder / "moge").mkdir()
    (folder / "moge" / "model.pt").write_bytes(b"not read: the estimator is a stand-in")
    return folder


def _tiny_pipe(weights, estimator=None):
    from engine.pipeline import Gen3CPipeline

    return Gen3CPipeline.from_pretrained(weights, device="cpu", placement="resident", zero_text=True,
                                         depth_estimator=estimator)


def test_moge_sees_the_image_as_loaded_in_every_entry_point(inputs, fake_moge, tiny_weights_dir, tmp_path,
                                                            capsys):
    from engine.cli import generate as cli_generate
    from engine.cli import preview as cli_preview
    from studio.handlers.scene import load_upload

    image = load_image(inputs / "image.png")
    K = torch.tensor(FakeMoGe("x").estimate(image).K)
    FakeMoGe.seen.clear()
    # studio upload without a depth file
    session = load_upload(None, str(inputs / "image.png"), weights_dir=str(inputs))
    # engine preview --moge
    assert cli_preview.main(["--image", str(inputs / "image.png"), "--moge", "fake.pt", "--preset", "left",
                             "--frames", "3", "--height", "64", "--width", "128", "--out", str(tmp_path / "p"),
                             "--quiet"]) == 0
    # engine generate (MoGe from the weights folder's search path)
    assert cli_generate.main(["--image", str(inputs / "image.png"), "--moge", "fake.pt", "--preset", "left",
                              "--frames", "5", "--steps", "1", "--weights", str(tiny_weights_dir),
                              "--no-text-encoder", "--out", str(tmp_path / "g.mp4"), "--quiet",
                              "--device", "cpu"]) == 0, capsys.readouterr().err
    # Gen3CPipeline.generate with its depth estimator
    pipe = _tiny_pipe(tiny_weights_dir, FakeMoGe("x"))
    pipe.generate(image, (torch.eye(4).expand(5, 4, 4), K.expand(5, 3, 3)), 5, num_steps=1)
    seed_inputs = [s for s in FakeMoGe.seen if s.shape == image.shape]
    assert len(seed_inputs) == 4 and all(np.array_equal(s, image) for s in seed_inputs)
    # every other call is a generated frame at the model size (none here: one chunk each)
    assert all(s.shape == (64, 128, 3) for s in FakeMoGe.seen if s.shape != image.shape)
    expected = build_scene(image, FakeMoGe("x").estimate(image), *session.scene.image.shape[1:])
    for got, want in ((session.scene.image, expected.image), (session.scene.depth, expected.depth),
                      (session.scene.K, expected.K)):
        assert torch.equal(got, want)


def test_official_fit_runs_moge_on_the_image_stretched_to_720x1280(inputs, fake_moge):
    image = load_image(inputs / "image.png")
    scene = build_scene(image, None, 64, 128, "official", estimator=FakeMoGe("x"))
    assert len(FakeMoGe.seen) == 1 and np.array_equal(FakeMoGe.seen[0], cv2.resize(image, (1280, 720)))
    assert scene.fit == "official" and scene.official
    assert not torch.equal(scene.condition, scene.image)  # u/128 - 1 (bf16) against the cache image's path


def test_preview_at_model_resolution_is_the_pipelines_chunk0_conditioning(inputs, tiny_weights_dir, tmp_path,
                                                                          monkeypatch):
    """For one image and depth file: `engine preview` at the model size renders exactly what the pipeline renders
    for chunk 0, and the studio's preview caches are the same scene's cache at their sizes."""
    from engine import video
    from engine.cli import preview as cli_preview
    from engine.paths import load_npz

    written = {}
    real_write = video.write_mp4

    def recording_write(file, frames, *args, **kwargs):
        written[str(file).rsplit("/", 1)[-1]] = np.array(frames)
        return real_write(file, frames, *args, **kwargs)

    monkeypatch.setattr(video, "write_mp4", recording_write)
    out = tmp_path / "preview"
    assert cli_preview.main(["--image", str(inputs / "image.png"), "--depth", str(inputs / "depth.npz"),
                             "--preset", "left", "--frames", "17", "--height", "64", "--width", "128",
                             "--out", str(out), "--quiet"]) == 0
    w2cs, Ks = load_npz(out / "cameras.npz")
    masks = np.load(out / "masks.npz")["masks"]

    pipe = _tiny_pipe(tiny_weights_dir)
    image = load_image(inputs / "image.png")
    result = pipe.generate(image, (w2cs, Ks), 17, num_steps=1, depth=str(inputs / "depth.npz"), trace=True)
    chunk0 = result.trace[0]
    assert np.array_equal(chunk0["renders"][:, 0], written["preview.mp4"])
    assert np.array_equal(chunk0["masks"][:, 0], masks.astype(bool))
    # the preview's preset starts at the seed camera: the depth file's K fitted to 64x128
    scene = pipe.seed_scene(image, str(inputs / "depth.npz"))
    assert torch.equal(torch.as_tensor(Ks[0]), scene.K)


def test_studio_preview_caches_are_the_seed_scene_at_their_sizes(inputs):
    from studio.handlers.scene import load_upload
    from studio.state import PREVIEW_SIZE, VIDEO_SIZE
    from engine.model_defaults import FILTER_THRESHOLD, MODEL_HEIGHT, MODEL_WIDTH

    image = load_image(inputs / "image.png")
    session = load_upload(None, str(inputs / "image.png"), str(inputs / "depth.npz"))
    scene = build_scene(image, str(inputs / "depth.npz"), MODEL_HEIGHT, MODEL_WIDTH)
    for got, want in ((session.scene.image, scene.image), (session.scene.depth, scene.depth),
                      (session.scene.K, scene.K)):
        assert torch.equal(got, want)
    for cache, size in ((session.preview.frame_cache, PREVIEW_SIZE), (session.preview.video_cache, VIDEO_SIZE)):
        small = scene.resized(*size)
        assert torch.equal(cache.images[0], small.image)
        assert torch.equal(cache.points(0), small.points)
        assert cache.filter_points_threshold == pytest.approx(FILTER_THRESHOLD * MODEL_HEIGHT / size[0])
        # the threshold scaling keeps the coverage of the model-resolution cache
        full = scene.reliable.float().mean().item()
        assert abs(cache.valid_masks[0].float().mean().item() - full) <= 0.02


def test_generate_accepts_the_scene_and_refuses_a_second_depth(inputs, tiny_weights_dir):
    from engine.errors import InputError

    pipe = _tiny_pipe(tiny_weights_dir)
    image = load_image(inputs / "image.png")
    scene = pipe.seed_scene(image, str(inputs / "depth.npz"))
    cams = (torch.eye(4).expand(5, 4, 4), scene.K.expand(5, 3, 3))
    from_scene = pipe.generate(scene, cams, 5, num_steps=1)
    from_image = pipe.generate(image, cams, 5, num_steps=1, depth=str(inputs / "depth.npz"))
    assert np.array_equal(from_scene.frames, from_image.frames)
    with pytest.raises(InputError, match="depth comes with the scene"):
        pipe.generate(scene, cams, 5, depth=str(inputs / "depth.npz"))
    with pytest.raises(InputError, match="fit 'pad' differs"):
        pipe.generate(scene, cams, 5, fit="pad")
    with pytest.raises(InputError, match="scene is"):
        pipe.generate(scene.resized(32, 64), cams, 5)
    assert json.dumps(scene.stats())  # still a plain scene


def test_studio_previews_exports_and_generates_with_the_seed_lens(inputs, tmp_path, monkeypatch):
    """An off-centre K with fx != fy from a depth file: the studio's preview cameras, its NPZ export and the path
    it hands to generation are the official preset's (which repeats the seed K), at each size by the rescale rule."""
    from engine.cameras import preset_trajectory, scale_intrinsics
    from engine.model_defaults import MODEL_HEIGHT, MODEL_WIDTH
    from studio import files, handlers
    from studio import generate as gen
    from studio.handlers.preview import with_cameras
    from studio.state import PREVIEW_SIZE

    session = handlers.load_upload(None, str(inputs / "image.png"), str(inputs / "depth.npz"))
    session = handlers.set_preset(session, "left", "center_facing", 0.3, 1)
    scene, frames = session.scene, session.num_frames
    K = scene.K.double()
    assert K[0, 2] != MODEL_WIDTH / 2 and K[0, 0] != K[1, 1]  # the lens the test is about
    want_w2cs, want_Ks = preset_trajectory("left", scene.w2c.double(), K, frames, 0.3, "center_facing")

    w2cs, Ks = with_cameras(session).frame_cams
    np.testing.assert_allclose(w2cs.double(), want_w2cs, atol=1e-5)
    small = scale_intrinsics(K, PREVIEW_SIZE[0] / MODEL_HEIGHT, PREVIEW_SIZE[1] / MODEL_WIDTH)
    np.testing.assert_allclose(Ks.double(), small.expand(frames, 3, 3), rtol=1e-6)

    exported = files.export_path(handlers.scene_path(session), "npz", frames, MODEL_HEIGHT, MODEL_WIDTH, tmp_path)
    with np.load(exported) as npz:
        np.testing.assert_allclose(npz["Ks_all"], want_Ks.expand(frames, 3, 3), rtol=1e-6)

    seen = {}
    monkeypatch.setattr(gen, "weights_status", lambda *a, **k: (True, ""))
    monkeypatch.setattr(gen, "_pipeline", lambda *a, **k: type("Pipe", (), {
        "generate": staticmethod(lambda image, cams, n, **kw: seen.update(cams=cams.sample(n, MODEL_HEIGHT,
                                                                                           MODEL_WIDTH)))})())
    gen.run(session, None, gen.validate_settings("", "", 1, 1.0, 1, "official"))
    np.testing.assert_allclose(seen["cams"][1].double(), want_Ks.expand(frames, 3, 3), rtol=1e-6)
