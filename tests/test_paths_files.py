"""engine.paths.files: project JSON, nerfstudio camera_path.json and GEN3C NPZ reading and writing."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from paths_helpers import K_REF, H, W, kf, three_keyframe_path
from engine.cameras import preset_trajectory
from engine.errors import InputError
from engine.paths import (
    CameraPath,
    Keyframe,
    load_npz,
    load_nerfstudio,
    load_path_json,
    path_from_dict,
    path_to_dict,
    save_nerfstudio,
    save_npz,
    save_path_json,
    to_nerfstudio,
)


@pytest.fixture
def path3():
    return three_keyframe_path()


# ---------------------------------------------------------------------------- project JSON


def test_path_json_round_trip_exact(tmp_path, path3):
    p = path3.with_keyframe(1, path3.keyframes[1].with_time(1 / 3)).with_options(constant_speed=True)
    f = tmp_path / "path.json"
    save_path_json(p, f)
    d = json.loads(f.read_text())
    assert d["format"] == "gen3c-studio-path" and d["version"] == 2 and len(d["keyframes"][0]["w2c"]) == 16
    q = load_path_json(f)
    assert q == p
    assert all(np.array_equal(a.w2c, b.w2c) for a, b in zip(p.keyframes, q.keyframes))


def _write(tmp_path, obj, name="bad.json"):
    f = tmp_path / name
    f.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return f


@pytest.mark.parametrize(
    "mutate,match",
    [
        (lambda d: d.pop("keyframes"), "missing 'keyframes'"),
        (lambda d: d.update(format="other"), "format"),
        (lambda d: d.update(version=3), "version"),
        (lambda d: d.update(version=True), "version"),
        (lambda d: d.update(interpolation="cubic"), "interpolation"),
        (lambda d: d.update(constant_speed="no"), "constant_speed"),
        (lambda d: d.update(keyframes="many"), "list"),
        (lambda d: d["keyframes"][0].pop("fov_y_deg"), "keyframe 0 is missing 'fov_y_deg'"),
        (lambda d: d["keyframes"][1].update(fov_y_deg="wide"), "keyframe 1 fov"),
        (lambda d: d["keyframes"][1].update(fov_y_deg=True), "keyframe 1 fov"),
        (lambda d: d["keyframes"][0].update(w2c=[1, 2, 3]), "16 numbers"),
        (lambda d: d["keyframes"][0].update(w2c=[2.0] + [0.0] * 4 + [1.0] + [0.0] * 4 + [1.0] + [0.0] * 4 + [1.0]),
         "keyframe 0.*rigid"),
        (lambda d: d["keyframes"][0].update(time="soon"), "time"),
        (lambda d: d.update(keyframes=d["keyframes"] * 5001), "too many keyframes"),
    ],
)
def test_path_json_bad_files(tmp_path, path3, mutate, match):
    d = path_to_dict(path3)
    mutate(d)
    with pytest.raises(InputError, match=match):
        load_path_json(_write(tmp_path, d))


def test_path_json_hostile_files(tmp_path, path3):
    text = json.dumps(path_to_dict(path3)).replace("50.0", "NaN", 1)
    with pytest.raises(InputError, match="JSON"):
        load_path_json(_write(tmp_path, text))
    with pytest.raises(InputError, match="JSON"):
        load_path_json(_write(tmp_path, "{not json"))
    with pytest.raises(InputError, match="object"):
        load_path_json(_write(tmp_path, "[1, 2]"))
    big = tmp_path / "big.json"
    with open(big, "wb") as fh:
        fh.truncate(21 * 1024 * 1024)
    with pytest.raises(InputError, match="too large"):
        load_path_json(big)
    with pytest.raises(InputError, match="cannot be read"):
        load_path_json(tmp_path / "missing.json")
    with pytest.raises(InputError, match="object"):
        path_from_dict([1])
    with pytest.raises(InputError, match="file path"):
        load_path_json(12)


def test_save_leaves_nothing_on_error(tmp_path, path3):
    with pytest.raises(InputError, match="does not exist"):
        save_path_json(path3, tmp_path / "nope" / "p.json")
    with pytest.raises(InputError, match="CameraPath"):
        save_path_json("not a path", tmp_path / "p.json")
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------- nerfstudio


def test_nerfstudio_hand_example():
    # identity-rotation camera at (1,2,3) looks down world +z (OpenCV); nerfstudio stores the OpenGL c2w
    a = Keyframe(np.array([[1, 0, 0, -1], [0, 1, 0, -2], [0, 0, 1, -3], [0, 0, 0, 1.0]]), 60.0)
    b = kf([1, 2, 4], fov=60)
    d = to_nerfstudio(CameraPath((a, b), interpolation="linear"), 3, 100, 200, fps=30)
    assert d["keyframes"][0]["matrix"] == [1, 0, 0, 1, 0, -1, 0, 2, 0, 0, -1, 3, 0, 0, 0, 1]
    assert d["camera_path"][0]["camera_to_world"] == d["keyframes"][0]["matrix"]
    np.testing.assert_allclose(np.reshape(d["camera_path"][1]["camera_to_world"], (4, 4))[:3, 3], [1, 2, 3.5])
    assert d["keyframes"][0]["fov"] == 60.0 and d["keyframes"][0]["aspect"] == 2.0
    assert d["render_height"] == 100 and d["render_width"] == 200 and d["fps"] == 30
    assert d["seconds"] == pytest.approx(3 / 30) and len(d["camera_path"]) == 3
    assert d["smoothness_value"] == 0.0


def test_nerfstudio_round_trip(tmp_path, path3):
    p = path3.with_keyframe(1, path3.keyframes[1].with_time(0.6))
    f = tmp_path / "camera_path.json"
    save_nerfstudio(p, f, 25, H, W, fps=24)
    q = load_nerfstudio(f)
    assert q.interpolation == p.interpolation and [k.time for k in q.keyframes] == [None, 0.6, None]
    for a, b in zip(p.keyframes, q.keyframes):
        np.testing.assert_allclose(b.w2c, a.w2c, atol=1e-12, rtol=0)
        assert b.fov_y_deg == a.fov_y_deg
    # per-frame entries are exactly the sampled cameras (OpenGL-flipped), fov vertical degrees
    d = json.loads(f.read_text())
    w2cs, Ks = p.sample(25, H, W)
    for t in (0, 7, 24):
        gl = np.reshape(d["camera_path"][t]["camera_to_world"], (4, 4))
        cv = gl @ np.diag([1.0, -1, -1, 1])
        np.testing.assert_allclose(np.linalg.inv(cv), w2cs[t].numpy(), atol=1e-5)
        f_y = (H / 2) / math.tan(math.radians(d["camera_path"][t]["fov"]) / 2)
        assert f_y == pytest.approx(Ks[t, 1, 1].item(), rel=1e-5)


def test_nerfstudio_foreign_files(tmp_path, path3):
    # keyframe 0 at the origin with a turned camera: the string form's order is not guessable there
    path3 = path3.with_keyframe(0, kf([0, 0, 0], 25, -10, 5))
    d = to_nerfstudio(path3, 9, H, W)
    # viewer file without our block, matrices in the old string form (three.js column-major)
    old = {k: v for k, v in d.items() if k != "gen3c_studio"}
    old["keyframes"] = [dict(e, matrix=json.dumps(np.reshape(e["matrix"], (4, 4)).T.reshape(-1).tolist()))
                        for e in d["keyframes"]]
    q = load_nerfstudio(_write(tmp_path, old, "old.json"))
    assert q.interpolation == "smooth"
    for a, b in zip(path3.keyframes, q.keyframes):
        np.testing.assert_allclose(b.w2c, a.w2c, atol=1e-12)
    # only per-frame cameras (what ns-render reads): every frame becomes a keyframe
    frames = {k: v for k, v in d.items() if k not in ("keyframes", "gen3c_studio")}
    q = load_nerfstudio(_write(tmp_path, frames, "frames.json"))
    assert len(q) == 9
    np.testing.assert_allclose(q.keyframes[4].w2c, path3.keyframes[1].w2c, atol=1e-6)


@pytest.mark.parametrize(
    "mutate,match",
    [
        (lambda d: (d.pop("keyframes"), d.pop("camera_path")), "no keyframes"),
        (lambda d: d["keyframes"][0].pop("matrix"), "missing 'matrix'"),
        (lambda d: d["keyframes"][0].update(matrix=[1, 0, 0]), "16 numbers"),
        (lambda d: d["keyframes"][0].update(matrix="[1, 0"), "string"),
        (lambda d: d["keyframes"][0].update(matrix=[1, 0, 0, 0, 0, 3, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]), "rigid"),
        (lambda d: d["keyframes"][1].update(fov="x"), "fov"),
        (lambda d: d["keyframes"][1].update(fov=0.1), "fov"),
    ],
)
def test_nerfstudio_bad_files(tmp_path, path3, mutate, match):
    d = to_nerfstudio(path3, 5, H, W)
    mutate(d)
    with pytest.raises(InputError, match=match):
        load_nerfstudio(_write(tmp_path, d))


def test_to_nerfstudio_bad_args(path3):
    with pytest.raises(InputError, match="fps"):
        to_nerfstudio(path3, 5, H, W, fps=0)
    with pytest.raises(InputError, match="num_frames"):
        to_nerfstudio(path3, 0, H, W)


# ---------------------------------------------------------------------------- NPZ


def test_npz_round_trip_exact(tmp_path):
    w2cs, Ks = preset_trajectory("clockwise", np.eye(4), K_REF, 17, 0.3, "center_facing")
    f = tmp_path / "cams.npz"
    save_npz(f, w2cs, Ks)
    w2, K2 = load_npz(f)
    assert torch.equal(w2, w2cs) and torch.equal(K2, Ks)
    # leading batch dim of 1, as the official code writes it
    g = tmp_path / "batched.npz"
    np.savez(g, w2cs_all=w2cs.numpy()[None], Ks_all=Ks.numpy()[None])
    w3, K3 = load_npz(g)
    assert torch.equal(w3, w2cs) and torch.equal(K3, Ks)
    # and the path made from it reproduces the cameras
    p = CameraPath.from_cameras(w3, K3, H)
    torch.testing.assert_close(p.sample(17, H, W)[0], w2cs, atol=1e-5, rtol=0)


def test_npz_refuses_pickles(tmp_path):
    f = tmp_path / "evil.npz"
    obj = np.empty(2, dtype=object)
    obj[0], obj[1] = {"a": 1}, [2]
    np.savez(f, w2cs_all=obj, Ks_all=np.stack([K_REF] * 2))
    with pytest.raises(InputError, match="pickled"):
        load_npz(f)


def test_npz_bad_files(tmp_path):
    eye = np.stack([np.eye(4)] * 3).astype(np.float32)
    Ks = np.stack([K_REF] * 3).astype(np.float32)
    cases = {
        "missing.npz": (dict(w2cs_all=eye), "missing 'Ks_all'"),
        "count.npz": (dict(w2cs_all=eye, Ks_all=Ks[:2]), "3 frames but Ks_all has 2"),
        "shape.npz": (dict(w2cs_all=eye[:, :3], Ks_all=Ks), "shape"),
        "nan.npz": (dict(w2cs_all=eye * np.nan, Ks_all=Ks), "NaN"),
        "scale.npz": (dict(w2cs_all=eye * 2, Ks_all=Ks), "rigid|last row"),
        "text.npz": (dict(w2cs_all=np.array(["a"] * 3), Ks_all=Ks), "dtype"),
    }
    for name, (arrays, match) in cases.items():
        np.savez(tmp_path / name, **arrays)
        with pytest.raises(InputError, match=match):
            load_npz(tmp_path / name)
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(InputError, match="not a valid"):
        load_npz(tmp_path / "junk.npz")
    np.save(tmp_path / "single.npy", eye)
    with pytest.raises(InputError, match="single array"):
        load_npz(tmp_path / "single.npy")


def test_save_npz_validates(tmp_path):
    with pytest.raises(InputError, match="rigid"):
        save_npz(tmp_path / "x.npz", np.stack([np.diag([1.0, 2, 1, 1])]), K_REF[None])
    assert list(tmp_path.iterdir()) == []
