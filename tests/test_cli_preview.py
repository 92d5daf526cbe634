"""`python -m engine preview` end to end on a bundled sample, plus its input errors."""
from __future__ import annotations

import json

import numpy as np
import pytest

from engine import paths, video
from engine.cli.preview import main


def _run(capsys, *args):
    code = main(list(args) + ["--quiet"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_preview_writes_every_output(tmp_path, capsys):
    out = tmp_path / "out"
    code, stdout, _ = _run(capsys, "--sample", "tabletop", "--preset", "left", "--frames", "9",
                           "--height", "88", "--width", "160", "--out", str(out))
    assert code == 0
    summary = json.loads(stdout)
    assert summary["frames"] == 9
    expected = {"preview.mp4", "masks.mp4", "masks.npz", "camera_path.json",
                "camera_path.nerfstudio.json", "cameras.npz", "pointcloud.ply"}
    assert expected == {p.name for p in out.iterdir()}

    frames = video.read_video(out / "preview.mp4")
    assert frames.shape == (9, 88, 160, 3)
    masks = np.load(out / "masks.npz")["masks"]
    assert masks.shape == (9, 88, 160) and set(np.unique(masks)) <= {0, 1}
    # frame 0 is the seed camera: it sees every reliable point (the official depth-edge filter drops more at
    # this tiny size); as the camera moves, holes open
    from engine import samples, scene as scene_mod

    image, depth = samples.load_sample("tabletop")
    reliable = scene_mod.build_scene(image, depth, height=88, width=160).reliable.numpy()
    assert (masks[0] >= reliable).all() and masks[0].mean() > 0.5
    assert masks[-1].mean() < masks[0].mean()
    assert summary["mean_coverage"] == pytest.approx(masks.mean(), abs=1e-3)

    # the written cameras are the official preset at this resolution and reload through every format
    w2cs, Ks = paths.load_npz(out / "cameras.npz")
    assert w2cs.shape == (9, 4, 4) and Ks.shape == (9, 3, 3)
    path = paths.load_path_json(out / "camera_path.json")
    w2c_path, _ = path.sample(9, 88, 160)
    np.testing.assert_allclose(np.asarray(w2c_path), np.asarray(w2cs), atol=1e-5)
    ns = paths.load_nerfstudio(out / "camera_path.nerfstudio.json")
    assert len(ns.keyframes) == 9
    assert (out / "pointcloud.ply").read_bytes().startswith(b"ply\n")


def test_preview_along_an_imported_path(tmp_path, capsys):
    path = paths.CameraPath((paths.Keyframe.from_look_at((0, 0, 0), (0, 0, 3), 60.0),
                             paths.Keyframe.from_look_at((0.2, -0.1, 0.1), (0, 0, 3), 55.0)))
    path_file = tmp_path / "path.json"
    paths.save_path_json(path, path_file)
    out = tmp_path / "o"
    code, stdout, _ = _run(capsys, "--sample", "living_room", "--path", str(path_file), "--frames", "5",
                           "--height", "88", "--width", "160", "--out", str(out))
    assert code == 0
    w2cs, Ks = paths.load_npz(out / "cameras.npz")
    # a path file without intrinsics zooms the seed camera's lens: its principal point and pixel aspect, fy from
    # each frame's FOV (engine.paths.intrinsics), so the cameras render the same scene the model is given
    from engine import samples, scene as scene_mod

    seed_K = scene_mod.build_scene(*samples.load_sample("living_room"), height=88, width=160).K.numpy()
    expected_w2cs, expected_Ks = path.sample(5, 88, 160)
    np.testing.assert_allclose(w2cs, np.asarray(expected_w2cs), atol=1e-6)
    fy = 44.0 / np.tan(np.radians([kf.fov_y_deg for kf in path.keyframes]) / 2)
    np.testing.assert_allclose(Ks[[0, -1], 1, 1], fy, rtol=1e-6)
    np.testing.assert_allclose(Ks[:, 0, 0] / Ks[:, 1, 1], seed_K[0, 0] / seed_K[1, 1], rtol=1e-6)
    np.testing.assert_allclose(Ks[:, :2, 2], np.broadcast_to(seed_K[:2, 2], (5, 2)), atol=1e-4)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--sample", "tabletop", "--preset", "sideways"], "sideways"),
        (["--sample", "tabletop", "--preset", "left", "--frames", "1"], "at least 2"),
        (["--sample", "no_such_scene", "--preset", "left"], "no_such_scene"),
        (["--sample", "tabletop", "--preset", "left", "--rotation", "spin"], "spin"),
    ],
)
def test_bad_arguments_fail_with_one_line_and_write_nothing(tmp_path, capsys, args, message):
    out = tmp_path / "never"
    code, _, err = _run(capsys, *args, "--height", "88", "--width", "160", "--out", str(out))
    assert code == 2
    assert err.startswith("error:") and message in err and err.count("\n") == 1
    assert not out.exists() or not any(out.iterdir())


def test_bad_path_and_image_files(tmp_path, capsys):
    bad_json = tmp_path / "bad.json"
    bad_json.write_text('{"keyframes": [1, 2')
    not_image = tmp_path / "photo.png"
    not_image.write_bytes(b"this is not a png")
    depth = tmp_path / "d.npy"
    np.save(depth, np.ones((4, 4), np.float32))
    for args in (["--sample", "tabletop", "--path", str(bad_json)],
                 ["--image", str(not_image), "--depth", str(depth), "--preset", "left"]):
        code, _, err = _run(capsys, *args, "--height", "88", "--width", "160", "--out", str(tmp_path / "o"))
        assert code == 2 and err.startswith("error:")
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_missing_moge_weights_says_what_to_download(tmp_path, capsys, monkeypatch):
    from PIL import Image

    monkeypatch.delenv("GEN3C_WEIGHTS", raising=False)
    monkeypatch.delenv("MOGE_MODEL", raising=False)
    monkeypatch.chdir(tmp_path)
    img = tmp_path / "img.png"
    Image.fromarray(np.full((32, 48, 3), 128, np.uint8)).save(img)
    code, _, err = _run(capsys, "--image", str(img), "--preset", "left", "--weights", str(tmp_path / "none"),
                        "--height", "88", "--width", "160", "--out", str(tmp_path / "o"))
    assert code == 2 and "moge" in err.lower() and "model.pt" in err
