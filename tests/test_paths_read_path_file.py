"""engine.paths.read_path_file: one reader for the CLI's --path and the studio's import.

Every file is put through all three entry points: the reader itself, the studio's import
(``studio.files.import_path``) and the real command line (``python -m engine preview --path``).
A file one of them accepts, the others accept with the same cameras; a file one of them refuses,
the others refuse with the same one-line message (the studio prefixes "import: ", the CLI "error: ").
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from paths_helpers import kf, three_keyframe_path
from engine.__main__ import main as engine_main
from engine.cameras import intrinsics_from_fov
from engine.errors import InputError
from engine.paths import (
    MAX_FILE_BYTES,
    PATH_FILE_FORMATS,
    CameraPath,
    load_npz,
    path_to_dict,
    read_path_file,
    save_nerfstudio,
    save_npz,
    save_path_json,
    to_nerfstudio,
)
from studio import files as studio_files

H, W = 32, 64  # small, so the preview command runs in a blink; NPZ intrinsics are given at this size
T = 5  # frames the command renders


def _path() -> CameraPath:
    return three_keyframe_path()


def _npz_cameras(count: int = T):
    """Cameras a GEN3C NPZ would hold, with a K the path model cannot express (fx != fy, cx off centre)."""
    w2cs, _ = CameraPath((kf([0, 0, 0], 0, 0, 0, 50), kf([0.3, 0.1, 0.2], 20, 5, 0, 50))).sample(count, H, W)
    K = np.array([[30.0, 0.0, 30.5], [0.0, 31.0, 17.25], [0.0, 0.0, 1.0]], dtype=np.float32)
    return w2cs, torch.from_numpy(np.stack([K] * count))


def _seed_K() -> np.ndarray:
    """The seed camera of the scene the command renders (the tabletop sample at H x W): the lens every path
    without intrinsics of its own is sampled with (issue 7: paths keep the seed camera)."""
    from engine import samples
    from engine.scene import build_scene

    return build_scene(*samples.load_sample("tabletop"), H, W).K.double().numpy()


def _cli(capsys, file, tmp_path, frames: int = T):
    """Run `python -m engine preview --path file`: (exit code, stderr, output folder)."""
    out = tmp_path / f"preview-of-{file.name}"
    code = engine_main(["preview", "--sample", "tabletop", "--path", str(file), "--frames", str(frames),
                        "--height", str(H), "--width", str(W), "--out", str(out), "--quiet"])
    return code, capsys.readouterr().err, out


# ---------------------------------------------------------------------------- accepted files
# Each writer returns (file, format, expected keyframe w2cs, tolerance, exact NPZ cameras or None).


def _project(tmp_path):
    f = tmp_path / "path.json"
    save_path_json(_path(), f)
    return f, "project", [k.w2c for k in _path().keyframes], 0.0, None


def _project_spaced(tmp_path):
    f = tmp_path / "spaced.json"
    f.write_text("\n\n  \t" + json.dumps(path_to_dict(_path()), indent=7) + "\n  \n\t", encoding="utf-8")
    return f, "project", [k.w2c for k in _path().keyframes], 0.0, None


def _project_without_suffix(tmp_path):
    f = tmp_path / "my_path"
    save_path_json(_path(), f)
    return f, "project", [k.w2c for k in _path().keyframes], 0.0, None


def _project_with_bom(tmp_path):
    f = tmp_path / "bom.json"
    f.write_bytes(b"\xef\xbb\xbf" + json.dumps(path_to_dict(_path())).encode("utf-8"))
    return f, "project", [k.w2c for k in _path().keyframes], 0.0, None


def _nerfstudio(tmp_path):
    f = tmp_path / "camera_path.json"
    save_nerfstudio(_path(), f, T, H, W)
    return f, "nerfstudio", [k.w2c for k in _path().keyframes], 1e-12, None


def _nerfstudio_keyframes_only(tmp_path):
    # a viewer export: keyframes, no render_height / render_width, no per-frame cameras, no block of ours
    d = to_nerfstudio(_path(), T, H, W)
    d = {k: v for k, v in d.items() if k not in ("render_height", "render_width", "camera_path", "gen3c_studio")}
    f = tmp_path / "viewer_export.json"
    f.write_text(json.dumps(d))
    return f, "nerfstudio", [k.w2c for k in _path().keyframes], 1e-12, None


def _nerfstudio_frames_only(tmp_path):
    d = to_nerfstudio(_path(), T, H, W)
    d = {k: v for k, v in d.items() if k not in ("render_height", "keyframes", "gen3c_studio")}
    f = tmp_path / "frames.json"
    f.write_text(json.dumps(d))
    w2cs, _, _ = _path().sample_numpy(T, H, W)
    return f, "nerfstudio", list(w2cs), 1e-12, None


def _npz(tmp_path, name="cameras.npz"):
    w2cs, Ks = _npz_cameras()
    f = tmp_path / name
    save_npz(f, w2cs, Ks)
    return f, "npz", list(w2cs.double().numpy()), 0.0, (w2cs, Ks)


def _npz_named_json(tmp_path):
    return _npz(tmp_path, "cameras.json")


ACCEPTED = [_project, _project_spaced, _project_without_suffix, _project_with_bom, _nerfstudio,
            _nerfstudio_keyframes_only, _nerfstudio_frames_only, _npz, _npz_named_json]


@pytest.mark.parametrize("write", ACCEPTED, ids=lambda w: w.__name__.strip("_"))
def test_every_entry_point_accepts_the_file_with_the_same_cameras(write, tmp_path, capsys):
    file, fmt, key_w2cs, tol, npz_cameras = write(tmp_path)
    found = read_path_file(file, H)
    assert found.format == fmt and fmt in PATH_FILE_FORMATS
    assert len(found.path) == len(key_w2cs)
    for got, want in zip(found.path.keyframes, key_w2cs):
        np.testing.assert_allclose(got.w2c, want, atol=tol, rtol=0)

    assert studio_files.import_path(file, H).keyframes == found.path.keyframes

    code, err, out = _cli(capsys, file, tmp_path)
    assert code == 0, err
    w2cs, Ks = load_npz(out / "cameras.npz")
    if npz_cameras is None:
        # per-frame files hold exactly these poses too; the lens is the seed camera's
        expected = _path().with_intrinsics(_seed_K(), H, W).sample(T, H, W)
        torch.testing.assert_close(w2cs, expected[0], atol=1e-5, rtol=0)
        torch.testing.assert_close(Ks, expected[1], atol=1e-4, rtol=1e-6)
    else:  # an NPZ with exactly --frames cameras is rendered with its own cameras, K as stored
        assert torch.equal(w2cs, npz_cameras[0]) and torch.equal(Ks, npz_cameras[1])
        assert torch.equal(found.cameras[0], npz_cameras[0]) and torch.equal(found.cameras[1], npz_cameras[1])


def test_npz_with_another_frame_count_is_sampled_as_a_path(tmp_path, capsys):
    file, *_ = _npz(tmp_path)
    code, err, out = _cli(capsys, file, tmp_path, frames=2 * T - 1)
    assert code == 0, err
    w2cs, Ks = load_npz(out / "cameras.npz")
    source_w2cs, source_Ks = _npz_cameras()
    # every camera of the file is a keyframe: the odd frames are the file's cameras again
    torch.testing.assert_close(w2cs[::2], source_w2cs, atol=1e-5, rtol=0)
    # K reduced to a vertical FOV from fy, sampled with the seed camera's lens: the seed K zoomed about its
    # principal point, so fy is the file's and fx / fy and the principal point are the seed's
    fov = float(np.degrees(2 * np.arctan(H / 2 / source_Ks[0, 1, 1].item())))
    seed = _seed_K()
    expected_K = torch.tensor([[seed[0, 0] / seed[1, 1] * source_Ks[0, 1, 1].item(), 0.0, seed[0, 2]],
                               [0.0, source_Ks[0, 1, 1].item(), seed[1, 2]], [0.0, 0.0, 1.0]], dtype=torch.float32)
    torch.testing.assert_close(Ks, expected_K.expand_as(Ks), atol=1e-4, rtol=1e-6)
    # (without a seed lens, a FOV means square pixels and a centred principal point)
    assert not torch.allclose(expected_K, torch.from_numpy(intrinsics_from_fov(fov, H, W).astype(np.float32)))


def test_one_size_cap_for_every_entry_point(tmp_path, capsys):
    text = json.dumps(path_to_dict(_path())).encode("utf-8")
    at_cap = tmp_path / "at_cap.json"
    at_cap.write_bytes(text + b" " * (MAX_FILE_BYTES - len(text)))
    assert at_cap.stat().st_size == MAX_FILE_BYTES
    assert read_path_file(at_cap, H).format == "project"
    assert studio_files.import_path(at_cap, H).keyframes == _path().keyframes
    assert _cli(capsys, at_cap, tmp_path)[0] == 0

    over = tmp_path / "over_cap.json"
    over.write_bytes(text + b" " * (MAX_FILE_BYTES + 1 - len(text)))
    _assert_refused_alike(over, "is too large", tmp_path, capsys)


# ---------------------------------------------------------------------------- refused files


def _write_bytes(name, data):
    def write(tmp_path):
        f = tmp_path / name
        f.write_bytes(data)
        return f
    write.__name__ = name
    return write


def _too_big(tmp_path):
    f = tmp_path / "big.json"
    with open(f, "wb") as fh:
        fh.truncate(MAX_FILE_BYTES + 1024 * 1024)
    return f


def _nan_project(tmp_path):
    f = tmp_path / "nan.json"
    f.write_text(json.dumps(path_to_dict(_path())).replace("50.0", "NaN", 1))
    return f


def _bad_project_content(tmp_path):
    d = path_to_dict(_path())
    del d["keyframes"][0]["fov_y_deg"]
    f = tmp_path / "no_fov.json"
    f.write_text(json.dumps(d))
    return f


def _pickle_npz(tmp_path):
    f = tmp_path / "evil.npz"
    obj = np.empty(2, dtype=object)
    obj[0], obj[1] = {"a": 1}, [2]
    np.savez(f, w2cs_all=obj, Ks_all=np.stack([np.eye(3)] * 2))
    return f


def _single_npy(tmp_path):
    f = tmp_path / "cams.npz"
    with open(f, "wb") as fh:
        np.save(fh, np.stack([np.eye(4)] * 3))
    return f


def _one_camera_npz(tmp_path):
    w2cs, Ks = _npz_cameras(2)
    f = tmp_path / "one.npz"
    save_npz(f, w2cs[:1], Ks[:1])
    return f


def _missing(tmp_path):
    return tmp_path / "missing.json"


def _folder(tmp_path):
    f = tmp_path / "folder.json"
    f.mkdir()
    return f


REFUSED = [
    (_too_big, "is too large"),
    (_write_bytes("latin1.json", '{"format": "gen3c-studio-path", "name": "caf\xe9"}'.encode("latin-1")),
     "is not UTF-8 text"),
    (_write_bytes("broken.json", b'{"camera_path": [1, 2'), "is not valid JSON"),
    (_nan_project, "is not valid JSON (non-finite number NaN)"),
    (_write_bytes("list.json", b"[1, 2]"), "holds a JSON list"),
    (_write_bytes("foreign.json", b'{"hello": 1}'), "is not a camera path"),
    (_write_bytes("other.json", b'{"format": "other", "keyframes": []}'), "has format 'other'"),
    (_bad_project_content, ": keyframe 0 is missing 'fov_y_deg'"),
    (_write_bytes("wrong.json", b'{"keyframes": "nope"}'), "has no keyframes and no camera_path entries"),
    (_pickle_npz, "is a pickled object array (refused)"),
    (_write_bytes("junk.npz", b"PK\x03\x04 not really a zip"), "is not a valid .npz archive"),
    (_single_npy, "is a single array"),
    (_write_bytes("empty.json", b""), "is empty"),
    (_write_bytes("path.txt", b"0 0 0"), "is not valid JSON"),
    (_missing, "cannot be read"),
    (_folder, "is not a file"),
]


def _assert_refused_alike(file, reason, tmp_path, capsys):
    with pytest.raises(InputError) as engine_error:
        read_path_file(file, H)
    message = str(engine_error.value)
    assert message.startswith(f"camera path {file.name}") and reason in message and "\n" not in message

    with pytest.raises(InputError) as studio_error:
        studio_files.import_path(file, H)
    assert str(studio_error.value) == f"import: {message}"

    code, err, out = _cli(capsys, file, tmp_path)
    assert code == 2 and err == f"error: {message}\n"
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize("write,reason", REFUSED, ids=[w.__name__.strip("_") for w, _ in REFUSED])
def test_every_entry_point_refuses_the_file_with_the_same_message(write, reason, tmp_path, capsys):
    _assert_refused_alike(write(tmp_path), reason, tmp_path, capsys)


def test_a_one_camera_file_is_a_one_keyframe_path_that_cannot_be_previewed(tmp_path, capsys):
    # Reading it works (a path of one keyframe is a still camera the studio can add to), sampling
    # motion does not: the CLI says why, in one line.
    f = _one_camera_npz(tmp_path)
    found = read_path_file(f, H)
    assert found.format == "npz" and len(found.path) == 1 and not found.path.can_animate
    np.testing.assert_allclose(found.path.keyframes[0].w2c, found.cameras[0][0].double().numpy(), atol=0)
    assert len(studio_files.import_path(f, H).keyframes) == 1
    code, err, out = _cli(capsys, f, tmp_path)
    assert code == 2 and err == ("error: a path needs at least two keyframes to preview motion or generate "
                                 "(it has 1): add a keyframe\n")
    assert not out.exists() or not any(out.iterdir())


def test_studio_without_a_file():
    with pytest.raises(InputError, match="^import: no file received$"):
        studio_files.import_path(None, H)
