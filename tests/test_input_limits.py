"""Hostile and out-of-range input at every entry point: cameras that are not rigid or not pinhole or far away,
deeply nested or oversized JSON, frame counts and numeric flags past their limits.

Every case must be refused with engine.errors.InputError (the CLI: exit 2 and one line) before any work is done.
The tests use only the entry points (Cache3D, paths, importers, studio handlers, CLI, pipeline), so each one
also ran against the code before engine.validate existed, where it failed.
"""
from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch

from engine.cache3d import Cache3D
from engine.cameras import preset_trajectory
from engine.errors import InputError
from engine.paths import CameraPath, Keyframe, path_to_dict, read_path_file, save_npz, to_nerfstudio
from reference_fixtures import load_fixture

H, W = 88, 160
K_REF = np.array([[100.0, 0, 80], [0, 100.0, 44], [0, 0, 1]])
DEEP = "[" * 100_000 + "]" * 100_000  # far past json's recursion limit


@pytest.fixture(scope="module")
def d():
    return load_fixture("warp_scene")


def _bad_w2cs(w2cs: torch.Tensor) -> dict:
    sheared, projective, reflected, far = (w2cs.clone() for _ in range(4))
    sheared[:, 0, 1] += 0.2
    projective[:, 3, 2] = 0.1
    reflected[:, 0, :3] *= -1
    far[:, 0, 3] = 1e9
    return {"sheared": sheared, "projective": projective, "reflected": reflected, "far": far}


def _bad_Ks(Ks: torch.Tensor) -> dict:
    zero, zero_skewed, negative, last_row = (Ks.clone() for _ in range(4))
    zero[:, 0, 0] = 0
    zero_skewed[:, 0, 0], zero_skewed[:, 0, 1], zero_skewed[:, 1, 0] = 0, 5, 3  # fx = 0 but invertible
    negative[:, 0, 0] *= -1
    last_row[:, 2, 0] = 0.1
    return {"fx 0": zero, "fx 0 skewed": zero_skewed, "fx < 0": negative, "last row": last_row}


# ---------------------------------------------------------------------------------------------- Cache3D

@pytest.mark.parametrize("case", ["sheared", "projective", "reflected", "far"])
def test_cache_refuses_a_w2c_that_is_not_rigid_or_far(d, case):
    bad = _bad_w2cs(d["target_w2cs"][:2])[case]
    cache = Cache3D(d["image"], d["depth"], d["w2c"], d["K"])
    with pytest.raises(InputError, match="w2c"):
        cache.render(bad, d["target_Ks"][:2])
    with pytest.raises(InputError, match="w2c"):
        Cache3D(d["image"], d["depth"], bad[0], d["K"])
    before = cache.images.clone()
    with pytest.raises(InputError, match="w2c"):
        cache.update(d["image"], d["depth"], bad[0], d["K"], alignment=None)
    assert cache.num_buffers == 1 and torch.equal(cache.images, before)


@pytest.mark.parametrize("case", ["fx 0", "fx 0 skewed", "fx < 0", "last row"])
def test_cache_refuses_a_K_that_is_not_pinhole(d, case):
    bad = _bad_Ks(d["target_Ks"][:2])[case]
    cache = Cache3D(d["image"], d["depth"], d["w2c"], d["K"])
    with pytest.raises(InputError, match="K"):
        cache.render(d["target_w2cs"][:2], bad)
    with pytest.raises(InputError, match="K"):
        Cache3D(d["image"], d["depth"], d["w2c"], bad[0])
    with pytest.raises(InputError, match="K"):
        cache.update(d["image"], d["depth"], d["w2c"], bad[0], alignment=None)
    assert cache.num_buffers == 1


# ---------------------------------------------------------------------------------------------- paths, importers

def _far_w2c(distance=1e7):
    w2c = np.eye(4)
    w2c[0, 3] = -distance  # camera centre at (distance, 0, 0)
    return w2c


def test_keyframes_and_paths_refuse_a_camera_far_away():
    with pytest.raises(InputError, match="keyframe"):
        Keyframe(_far_w2c(), 50.0)
    with pytest.raises(InputError, match="keyframe"):
        Keyframe.from_look_at([2e5, 0, 0], [0, 0, 1], 50.0)
    w2cs = np.stack([np.eye(4), _far_w2c()])
    with pytest.raises(InputError, match="w2c"):
        CameraPath.from_cameras(w2cs, K_REF, H)


def _two_keyframes():
    return CameraPath((Keyframe(np.eye(4), 50.0), Keyframe.from_look_at([0.2, 0, 0], [0, 0, 2], 50.0)))


def _refused(file, match="camera path"):
    with pytest.raises(InputError, match=match) as err:
        read_path_file(file, H)
    assert "\n" not in str(err.value)


def test_project_file_with_a_far_camera_is_refused(tmp_path):
    d = path_to_dict(_two_keyframes())
    d["keyframes"][1]["w2c"] = [float(x) for x in _far_w2c().reshape(-1)]
    f = tmp_path / "far.json"
    f.write_text(json.dumps(d))
    _refused(f)


def test_nerfstudio_file_with_a_far_camera_is_refused(tmp_path):
    d = to_nerfstudio(_two_keyframes(), 5, H, W)
    c2w = np.asarray(d["keyframes"][1]["matrix"]).reshape(4, 4)
    c2w[0, 3] = 1e7
    d["keyframes"][1]["matrix"] = [float(x) for x in c2w.reshape(-1)]
    f = tmp_path / "far_ns.json"
    f.write_text(json.dumps(d))
    _refused(f)


@pytest.mark.parametrize("case", ["far", "fx 0 skewed"])
def test_npz_with_a_far_camera_or_a_non_pinhole_K_is_refused(tmp_path, case):
    w2cs = np.stack([np.eye(4)] * 3).astype(np.float32)
    Ks = np.stack([K_REF] * 3).astype(np.float32)
    if case == "far":
        w2cs[1] = _far_w2c()
    else:
        Ks[1, 0, 0], Ks[1, 0, 1], Ks[1, 1, 0] = 0, 5, 3
    f = tmp_path / "bad.npz"
    np.savez(f, w2cs_all=w2cs, Ks_all=Ks)
    _refused(f)
    with pytest.raises(InputError):
        save_npz(tmp_path / "out.npz", w2cs, Ks)
    assert not (tmp_path / "out.npz").exists()


# ---------------------------------------------------------------------------------------------- studio payloads

@pytest.fixture(scope="module")
def session(tmp_path_factory):
    from studio import handlers
    from studio.state import Session

    return handlers.load_sample(Session(folder=str(tmp_path_factory.mktemp("session"))), "tabletop")


def _view_payload(eye):
    return json.dumps({"camera": {"eye": dict(zip("xyz", eye)), "center": {"x": 0, "y": 0, "z": 0},
                                  "up": {"x": 0, "y": 0, "z": 1}}})


def test_view_payload_with_a_camera_far_away_is_refused(session):
    from studio import handlers

    handlers.add_keyframe_from_view(session, _view_payload([0.1, -1.2, 0.3]))  # a normal view is fine
    with pytest.raises(InputError):
        handlers.add_keyframe_from_view(session, _view_payload([1e9, -1.2, 0.3]))


def test_view_payloads_deeply_nested_or_oversized_are_refused(session):
    from studio import handlers
    from studio.viewcam import parse_view_payload

    with pytest.raises(InputError, match="3D view camera"):
        parse_view_payload(DEEP)
    with pytest.raises(InputError, match="3D view camera"):
        handlers.add_keyframe_from_view(session, '{"camera": ' + DEEP + "}")
    with pytest.raises(InputError, match="clicked point"):
        handlers.look_at_clicked_point(session, DEEP)
    padded = json.loads(_view_payload([0.1, -1.2, 0.3]))
    padded["padding"] = "x" * 1_000_000
    with pytest.raises(InputError, match="too large"):
        parse_view_payload(json.dumps(padded))


# ---------------------------------------------------------------------------------------------- JSON files

def test_nerfstudio_matrix_string_deeply_nested_is_refused(tmp_path):
    d = to_nerfstudio(_two_keyframes(), 5, H, W)
    d["keyframes"][0]["matrix"] = "[" * 5000  # the old web viewer's string form, parsed again
    f = tmp_path / "nested_matrix.json"
    f.write_text(json.dumps(d))
    _refused(f)


def test_nesting_is_checked_before_the_parser_runs(tmp_path, monkeypatch):
    f = tmp_path / "deep.json"
    f.write_text("[" * 200 + "]" * 200)

    def no_parse(*args, **kwargs):
        raise AssertionError("json.loads reached with deeply nested input")

    monkeypatch.setattr(json, "loads", no_parse)
    _refused(f, "nested")


def test_weights_configs_deeply_nested_are_refused(tmp_path):
    from engine.models.config import Gen3CConfig
    from engine.models.vae import read_latent_stats

    (tmp_path / "gen3c.json").write_text(DEEP)
    with pytest.raises(InputError, match="gen3c.json"):
        Gen3CConfig.load(tmp_path)
    (tmp_path / "config.json").write_text('{"latents_mean": ' + DEEP + "}")
    with pytest.raises(InputError, match="config.json"):
        read_latent_stats(tmp_path / "config.json", 16, 16)


def test_sample_meta_deeply_nested_is_refused(tmp_path, monkeypatch):
    from engine import samples

    folder = tmp_path / "nested"
    folder.mkdir()
    for name in ("image.png", "depth.npz"):
        (folder / name).write_bytes(b"")
    (folder / "meta.json").write_text(DEEP)
    monkeypatch.setattr(samples, "SAMPLES_DIR", tmp_path)
    with pytest.raises(InputError, match="meta.json"):
        samples.sample_meta("nested")


# ---------------------------------------------------------------------------------------------- frame counts

def test_a_million_frame_preset_is_refused_at_once():
    t0 = time.perf_counter()
    with pytest.raises(InputError, match="num_frames"):
        preset_trajectory("left", np.eye(4), K_REF, 10**6, 0.3, "center_facing")
    assert time.perf_counter() - t0 < 0.5


def test_sampling_a_path_past_the_frame_memory_bound_is_refused():
    with pytest.raises(InputError, match="num_frames"):
        _two_keyframes().sample(50_000, H, W)


def _preview(capsys, *args):
    from engine.cli.preview import main

    code = main(list(args) + ["--quiet"])
    captured = capsys.readouterr()
    return code, captured.err


def test_cli_preview_refuses_a_million_frames_at_once(tmp_path, capsys):
    out = tmp_path / "out"
    t0 = time.perf_counter()
    code, err = _preview(capsys, "--sample", "tabletop", "--preset", "left", "--frames", "1000000", "--out", str(out))
    assert time.perf_counter() - t0 < 1.0
    assert code == 2 and err.startswith("error:") and "--frames" in err and err.count("\n") == 1
    assert not out.exists()


@pytest.fixture()
def nothing_loads(monkeypatch):
    """Any scene, image or weights loading fails the test: the flags must be refused before."""
    from engine import images, samples
    from engine.models import weights
    from engine.pipeline import Gen3CPipeline

    def never(*args, **kwargs):
        raise AssertionError("input was read before the flags were checked")

    monkeypatch.setattr(samples, "load_sample", never)
    monkeypatch.setattr(images, "load_image", never)
    monkeypatch.setattr(weights, "find_weights", never)
    monkeypatch.setattr(Gen3CPipeline, "from_pretrained", never)


@pytest.mark.parametrize("flags, name", [
    (["--fps", "0"], "--fps"),
    (["--fps", "100000"], "--fps"),
    (["--distance", "nan"], "--distance"),
    (["--distance", "0"], "--distance"),
    (["--distance", "1e9"], "--distance"),
    (["--fov", "500"], "--fov"),
    (["--frames", "50000"], "--frames"),
    (["--height", "4096", "--width", "4096", "--frames", "200"], "--frames"),
    (["--height", "8"], "height"),
])
def test_cli_preview_refuses_bad_numbers_before_reading_anything(tmp_path, capsys, nothing_loads, flags, name):
    out = tmp_path / "out"
    code, err = _preview(capsys, "--sample", "tabletop", "--preset", "left", "--out", str(out), *flags)
    assert code == 2 and err.startswith("error:") and name in err and err.count("\n") == 1
    assert not out.exists()


@pytest.mark.parametrize("flags, name", [
    (["--frames", "1000000"], "--frames"),
    (["--steps", "1000000"], "--steps"),
    (["--guidance", "nan"], "--guidance"),
    (["--guidance", "-3"], "--guidance"),
    (["--seed", str(2**40)], "--seed"),
    (["--distance", "nan"], "--distance"),
    (["--fov", "0"], "--fov"),
    (["--prompt", "x" * 5000], "--prompt"),
])
def test_cli_generate_refuses_bad_numbers_before_reading_anything(tmp_path, capsys, nothing_loads, flags, name):
    from engine.cli.generate import main

    out = tmp_path / "video.mp4"
    code = main(["--image", str(tmp_path / "image.png"), "--preset", "left", "--weights", str(tmp_path / "w"),
                 "--out", str(out), "--quiet", *flags])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error:") and name in err and err.count("\n") == 1
    assert not out.exists()


# ---------------------------------------------------------------------------------------------- one seed limit

def test_one_seed_limit_for_the_studio_the_pipeline_and_the_sampler():
    """numpy's RandomState draws the official augmentation noise: seeds 0..2^32-1 work, so that is the limit."""
    from types import SimpleNamespace

    from engine.pipeline import Gen3CPipeline
    from engine.sampler import augmentation_noise
    from studio import generate as gen

    top = 2**32 - 1
    assert gen.validate_settings("", "", 2, 1.0, top, "official")["seed"] == top
    assert augmentation_noise((1, 2), top).shape == (1, 2)
    cfg = SimpleNamespace(height=H, width=W, chunk_frames=17, fps=24, frame_buffer_max=2)
    pipe = Gen3CPipeline(cfg, None, None)
    image = np.zeros((H, W, 3), np.uint8)
    cams = (torch.eye(4).repeat(17, 1, 1), torch.from_numpy(K_REF).float().repeat(17, 1, 1))
    for seed in (top + 1, 2**40, -1):
        with pytest.raises(InputError, match="seed"):
            gen.validate_settings("", "", 2, 1.0, seed, "official")
        with pytest.raises(InputError, match="seed"):
            pipe.generate(image, cams, 17, num_steps=1, seed=seed)
