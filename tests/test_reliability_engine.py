"""Reliability of the engine and its CLI: outputs whole or absent, output problems caught before any work,
a full disk reported in one line, and weights folders whose files or configs are broken refused in one line.

The faults are real where this machine allows (a small tmpfs that fills up, a read-only mount) and injected at
the OS boundary otherwise (Python's ``open`` raising ENOSPC, an ffmpeg that fails like a full disk): see
``tests/faults.py``.
"""
from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from engine.errors import InputError
from faults import (UnusableOut, enospc_after, fake_ffmpeg, fill, leftovers, lying_npy, peak_bytes,
                    read_only_folder, small_filesystem)


def _frames(t=12, h=64, w=64, seed=0):
    """Noise frames: they compress badly, so the mp4 is larger than the little room left on a full disk."""
    return np.random.default_rng(seed).integers(0, 256, (t, h, w, 3), dtype=np.uint8)


@pytest.fixture()
def full_disk(tmp_path, request):
    """A real filesystem (a 512 KiB tmpfs) with 16 KiB free, or what ``@pytest.mark.parametrize("full_disk",
    [n], indirect=True)`` says; a skip where mounting is not allowed (the injected ENOSPC tests still run)."""
    leave = getattr(request, "param", 16 * 1024)
    with small_filesystem(tmp_path / "full", 512 * 1024) as folder:
        if folder is None:
            pytest.skip("cannot mount a small tmpfs here")
        fill(folder, leave=leave)
        (folder / "filler").rename(folder / ".filler")
        yield folder


def _names(folder):
    return [n for n in leftovers(folder) if n != ".filler"]


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


# ------------------------------------------------------------------------------------ mp4: whole or absent

@pytest.mark.parametrize("mode", ["disk_full", "truncated", "fewer_frames"])
def test_mp4_a_failed_or_short_ffmpeg_run_leaves_nothing_and_names_the_file(tmp_path, monkeypatch, mode):
    from engine import video

    monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", str(fake_ffmpeg(tmp_path, mode)))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(InputError) as info:
        video.write_mp4(out_dir / "clip.mp4", _frames())
    message = str(info.value)
    assert "\n" not in message and "clip.mp4" in message
    if mode == "disk_full":
        assert message.startswith("disk full while writing")
    assert leftovers(out_dir) == []  # neither the final name nor a temporary file


def test_mp4_failure_keeps_the_previous_file(tmp_path, monkeypatch):
    from engine import video

    good = _frames(4, seed=1)
    target = video.write_mp4(tmp_path / "clip.mp4", good)
    before = target.read_bytes()
    monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", str(fake_ffmpeg(tmp_path, "disk_full")))
    with pytest.raises(InputError, match="disk full while writing"):
        video.write_mp4(target, _frames())
    assert target.read_bytes() == before


def test_mp4_on_a_really_full_disk(full_disk):
    from engine import video

    with pytest.raises(InputError) as info:
        video.write_mp4(full_disk / "clip.mp4", _frames(24))
    assert str(info.value) == f"disk full while writing {full_disk / 'clip.mp4'}"
    assert _names(full_disk) == []


# --------------------------------------------------------------------- the other writers: whole or absent

def _path():
    from engine import paths

    return paths.CameraPath((paths.Keyframe.from_look_at((0, 0, 0), (0, 0, 3), 60.0),
                             paths.Keyframe.from_look_at((0.2, -0.1, 0.1), (0, 0, 3), 55.0)))


def _writers():
    """(name, file name, write(target)) for every engine writer of small files."""
    import torch

    from engine import paths
    from engine.scene import write_ply

    rng = np.random.default_rng(0)
    xyz, rgb = rng.normal(size=(4000, 3)), rng.integers(0, 256, (4000, 3))
    w2cs, Ks = _path().sample(12, 64, 64)
    return [
        ("ply", "cloud.ply", lambda f: write_ply(f, xyz, rgb)),
        ("path json", "path.json", lambda f: paths.save_path_json(_path(), f)),
        ("nerfstudio", "path.nerfstudio.json", lambda f: paths.save_nerfstudio(_path(), f, 24, 64, 64)),
        ("npz", "cameras.npz", lambda f: paths.save_npz(f, w2cs, Ks)),
        ("latents", "latents.safetensors", lambda f: _save_latents(f, [torch.randn(1, 16, 3, 16, 16)])),
    ]


def _save_latents(file, latents):
    from engine.cli.generate import _save_latents as save

    save(file, latents)


@pytest.mark.parametrize("index", range(5), ids=[w[0] for w in _writers()])
def test_writer_disk_full_is_one_line_and_leaves_nothing(tmp_path, monkeypatch, index):
    _, name, write = _writers()[index]
    out = tmp_path / "out"
    out.mkdir()
    enospc_after(monkeypatch, out, 100)
    with pytest.raises(InputError) as info:
        write(out / name)
    assert str(info.value) == f"disk full while writing {out / name}"
    assert leftovers(out) == []


@pytest.mark.parametrize("full_disk", [0], indirect=True)
@pytest.mark.parametrize("index", range(5), ids=[w[0] for w in _writers()])
def test_writer_on_a_really_full_disk(full_disk, index):
    _, name, write = _writers()[index]
    with pytest.raises(InputError) as info:
        write(full_disk / name)
    assert str(info.value) == f"disk full while writing {full_disk / name}"
    assert _names(full_disk) == []


def test_writes_are_synced_before_the_rename_and_the_folder_after(tmp_path, monkeypatch):
    from engine import atomic

    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append("replace"), real_replace(a, b))[1])
    atomic.atomic_write_bytes(tmp_path / "a.bin", b"x" * 1000)
    assert "replace" in events and events.index("fsync") < events.index("replace")
    assert events[-1] == "fsync"  # the folder entry, after the rename
    assert (tmp_path / "a.bin").read_bytes() == b"x" * 1000


@pytest.mark.parametrize("full_disk", [0], indirect=True)
def test_prompt_cache_on_a_full_disk_does_not_fail_the_encoding(tiny_weights_dir, full_disk):
    from engine.models import load_text_encoder

    enc = load_text_encoder(tiny_weights_dir, device="cpu", cache_dir=full_disk / "cache")
    emb = enc.encode(["a camera moves left over a field of flowers"])
    assert emb.shape[0] == 1
    assert [n for n in _names(full_disk) if not n.startswith("cache")] == []
    assert not [n for n in _names(full_disk) if n.endswith(".safetensors")]  # nothing half-written


# ------------------------------------------------------------------------------------ weights folders

def test_weights_folder_on_a_full_disk_is_one_line_and_leaves_nothing(full_disk):
    from engine.models import make_tiny_weights

    with pytest.raises(InputError) as info:
        make_tiny_weights(full_disk / "w")
    assert str(info.value) == f"disk full while writing {full_disk / 'w'}"
    assert _names(full_disk) == []


def test_weights_folder_writer_leaves_a_neighbour_named_like_its_temporary_alone(tmp_path):
    from engine.models import make_tiny_weights

    keep = tmp_path / "w.tmp"
    keep.mkdir()
    (keep / "mine.txt").write_text("the user's")
    make_tiny_weights(tmp_path / "w")
    assert (keep / "mine.txt").read_text() == "the user's"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w", "w.tmp"]


def test_make_tiny_weights_overwrite_refuses_a_file(tmp_path, capsys):
    from engine.cli.make_tiny_weights import main

    target = tmp_path / "notes.txt"
    target.write_text("keep me")
    assert main([str(target), "--overwrite"]) == 2
    err = _one_line(capsys.readouterr().err)
    assert err.startswith("error:") and "notes.txt" in err and "file" in err
    assert target.read_text() == "keep me"


def test_make_tiny_weights_in_a_read_only_folder_is_one_line(tmp_path, capsys):
    from engine.cli.make_tiny_weights import main

    with read_only_folder(tmp_path / "ro") as ro:
        if ro is None:
            pytest.skip("no read-only folder can be made for this user here")
        assert main([str(ro / "w")]) == 2
        err = _one_line(capsys.readouterr().err)
        assert err.startswith("error:") and str(ro) in err
        assert leftovers(ro) == []


@pytest.fixture()
def no_checkpoint_reads(monkeypatch):
    import engine.convert

    def never(*args, **kwargs):
        raise AssertionError("a checkpoint was read before --out was checked")

    monkeypatch.setattr(engine.convert, "_torch_load", never)
    monkeypatch.setattr(engine.convert, "read_cosmos_tokenizer_dir", never)


@pytest.mark.parametrize("case", ["file", "under_file", "read_only"])
def test_convert_refuses_an_unusable_out_before_reading_checkpoints(tmp_path, capsys, no_checkpoint_reads, case):
    from engine.cli.convert import main

    (tmp_path / "model.pt").write_bytes(b"x")
    tok = tmp_path / "tok"
    tok.mkdir()
    for name in ("encoder.jit", "decoder.jit", "mean_std.pt"):
        (tok / name).write_bytes(b"x")
    with UnusableOut(tmp_path, case) as out:
        rc = main(["--gen3c", str(tmp_path / "model.pt"), "--tokenizer", str(tok), "--out", str(out), "--overwrite"])
        err = _one_line(capsys.readouterr().err)
    assert rc == 2 and err.startswith("error:") and "--out" in err


# ---------------------------------------------------------------------------------- CLI: refused up front

@pytest.fixture()
def nothing_loads(monkeypatch):
    """Any scene, image or weights loading fails the test: --out must be refused before."""
    from engine import images, samples
    from engine.models import weights
    from engine.pipeline import Gen3CPipeline

    def never(*args, **kwargs):
        raise AssertionError("input was read before --out was checked")

    monkeypatch.setattr(samples, "load_sample", never)
    monkeypatch.setattr(images, "load_image", never)
    monkeypatch.setattr(weights, "find_weights", never)
    monkeypatch.setattr(Gen3CPipeline, "from_pretrained", never)


def _preview(capsys, *args):
    from engine.cli.preview import main

    code = main(["--sample", "tabletop", "--preset", "left", "--frames", "5", "--height", "88", "--width", "160",
                 "--quiet", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("case", ["file", "under_file", "read_only"])
def test_preview_refuses_an_unusable_out_before_any_work(tmp_path, capsys, nothing_loads, case):
    with UnusableOut(tmp_path, case) as out:
        code, stdout, err = _preview(capsys, "--out", str(out))
        line = _one_line(err)
    assert code == 2 and line.startswith("error:") and "--out" in line and stdout == ""


@pytest.mark.parametrize("case", ["file_parent", "read_only", "latents_under_file", "folder"])
def test_generate_refuses_an_unusable_out_before_any_work(tmp_path, capsys, nothing_loads, case):
    from engine.cli.generate import main

    out, extra = tmp_path / "video.mp4", []
    ro = None
    if case == "file_parent":
        (tmp_path / "plain").write_text("x")
        out = tmp_path / "plain" / "video.mp4"
    elif case == "folder":
        out.mkdir()
    elif case == "latents_under_file":
        (tmp_path / "plain").write_text("x")
        extra = ["--save-latents", str(tmp_path / "plain" / "z.safetensors")]
    else:
        ro = read_only_folder(tmp_path / "ro")
        folder = ro.__enter__()
        if folder is None:
            ro.__exit__(None, None, None)
            pytest.skip("no read-only folder can be made for this user here")
        out = folder / "video.mp4"
    try:
        code = main(["--image", str(tmp_path / "image.png"), "--preset", "left", "--weights", str(tmp_path / "w"),
                     "--out", str(out), "--quiet", *extra])
        line = _one_line(capsys.readouterr().err)
    finally:
        if ro is not None:
            ro.__exit__(None, None, None)
    assert code == 2 and line.startswith("error:")
    assert ("--save-latents" if extra else "--out") in line


@pytest.fixture(scope="module")
def scene_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scene")
    h, w = 64, 128
    yy, xx = np.mgrid[0:h, 0:w]
    Image.fromarray(np.stack([xx * 2, yy * 4, (xx + yy) % 256], -1).astype(np.uint8)).save(folder / "image.png")
    np.save(folder / "depth.npy", (2.0 + xx / w + 0.3 * yy / h).astype(np.float32))
    return folder


def _generate(capsys, weights, scene_files, out, *extra):
    from engine.cli.generate import main

    code = main(["--image", str(scene_files / "image.png"), "--depth", str(scene_files / "depth.npy"),
                 "--fov", "50", "--preset", "left", "--weights", str(weights), "--out", str(out), "--steps", "1",
                 "--frames", "9", "--no-text-encoder", "--quiet", "--device", "cpu", *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_generate_on_a_failing_disk_exits_non_zero_in_one_line(tiny_weights_dir, scene_files, tmp_path,
                                                                 monkeypatch, capsys):
    monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", str(fake_ffmpeg(tmp_path, "disk_full")))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    code, stdout, err = _generate(capsys, tiny_weights_dir, scene_files, out_dir / "video.mp4")
    assert code != 0 and stdout == ""  # no success JSON
    assert _one_line(err) == f"error: disk full while writing {out_dir / 'video.mp4'}"
    assert leftovers(out_dir) == []


def test_generate_on_a_really_full_disk(tiny_weights_dir, scene_files, full_disk, capsys):
    code, stdout, err = _generate(capsys, tiny_weights_dir, scene_files, full_disk / "video.mp4")
    assert code != 0 and stdout == ""
    assert _one_line(err) == f"error: disk full while writing {full_disk / 'video.mp4'}"
    assert _names(full_disk) == []


def test_preview_disk_full_is_one_line_and_leaves_no_partial_files(tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    out.mkdir()
    enospc_after(monkeypatch, out, 100)
    code, stdout, err = _preview(capsys, "--out", str(out))
    line = _one_line(err)
    assert code == 2 and stdout == "" and line.startswith("error: disk full while writing ")
    assert line.split()[-1].startswith(str(out / "")) and ".preview-" not in line
    assert leftovers(out) == []


def test_preview_on_a_really_full_disk(full_disk, capsys):
    code, stdout, err = _preview(capsys, "--out", str(full_disk / "o"))
    line = _one_line(err)
    assert code == 2 and stdout == "" and line.startswith(f"error: disk full while writing {full_disk / 'o'}")
    assert _names(full_disk) in ([], ["o"])
    assert not (full_disk / "o").exists() or not any((full_disk / "o").iterdir())


# ------------------------------------------------------------------------------------ weights integrity

@pytest.fixture()
def weights(tiny_weights_dir, tmp_path):
    """A private copy of the tiny weights to corrupt."""
    return shutil.copytree(tiny_weights_dir, tmp_path / "w")


def _edit_config(folder, rel, **changes):
    p = folder / rel
    cfg = json.loads(p.read_text())
    cfg.update(changes)
    p.write_text(json.dumps(cfg))
    return p


def _truncate(file, keep=0.5):
    data = file.read_bytes()
    file.write_bytes(data[:int(len(data) * keep)])


def _garbage(file):
    file.write_bytes(bytes(range(256)) * 7)


def _loader(part):
    from engine.models import load_text_encoder, load_transformer, load_vae

    return {"transformer": lambda w: load_transformer(w, device="cpu"),
            "vae": lambda w: load_vae(w, device="cpu"),
            "text_encoder": lambda w: load_text_encoder(w, device="cpu", cache_dir=None),
            "text_tokenizer": lambda w: load_text_encoder(w, device="cpu", cache_dir=None)}[part]


def _assert_refused(part, weights, named):
    with pytest.raises(InputError) as info:
        _loader(part)(weights)
    message = str(info.value)
    assert "\n" not in message and str(weights / named) in message, message
    return message


@pytest.mark.parametrize("part, rel, changes, words", [
    ("transformer", "transformer/config.json", {"num_layers": 1}, "unexpected"),
    ("transformer", "transformer/config.json", {"num_layers": 3}, "missing"),
    ("transformer", "transformer/config.json", {"num_attention_heads": 4}, "shape"),
    ("vae", "vae/config.json", {"num_layers": 1}, "unexpected"),
    ("text_encoder", "text_encoder/config.json", {"num_layers": 1}, "unexpected"),
    ("text_encoder", "text_encoder/config.json", {"d_ff": 48}, "shape"),
])
def test_a_config_that_disagrees_with_its_tensors_is_refused(weights, part, rel, changes, words):
    _edit_config(weights, rel, **changes)
    message = _assert_refused(part, weights, rel)
    assert words in message


@pytest.mark.parametrize("part, rel, damage", [
    ("transformer", "transformer/diffusion_pytorch_model.safetensors", "truncate"),
    ("transformer", "transformer/diffusion_pytorch_model.safetensors", "tail"),
    ("transformer", "transformer/diffusion_pytorch_model.safetensors", "garbage"),
    ("transformer", "transformer/config.json", "garbage"),
    ("transformer", "transformer/config.json", "truncate"),
    ("vae", "vae/diffusion_pytorch_model.safetensors", "truncate"),
    ("vae", "vae/config.json", "garbage"),
    ("text_encoder", "text_encoder/model.safetensors", "truncate"),
    ("text_encoder", "text_encoder/model.safetensors", "garbage"),
    ("text_encoder", "text_encoder/config.json", "garbage"),
    ("text_tokenizer", "text_tokenizer/tokenizer.json", "garbage"),
    ("text_tokenizer", "text_tokenizer/tokenizer.json", "truncate"),
    ("text_tokenizer", "text_tokenizer/tokenizer_config.json", "garbage"),
])
def test_a_truncated_or_garbage_weights_file_is_refused_naming_it(weights, part, rel, damage):
    file = weights / rel
    if damage == "garbage":
        _garbage(file)
    else:
        _truncate(file, 0.5 if damage == "truncate" else 0.9995)
    _assert_refused(part, weights, rel)


def test_a_sharded_transformer_whose_index_disagrees_with_its_shards_is_refused(weights):
    from engine.models import load_transformer
    from engine.models.tiny import tiny_transformer

    folder = weights / "transformer"
    for f in folder.glob("*.safetensors*"):
        f.unlink()
    tiny_transformer(81, 32, seed=0).save_pretrained(str(folder), safe_serialization=True, max_shard_size="200KB")
    load_transformer(weights, device="cpu")  # the sharded folder itself loads
    shards = sorted(folder.glob("*-of-*.safetensors"))
    assert len(shards) > 1
    shards[-1].unlink()
    with pytest.raises(InputError) as info:
        load_transformer(weights, device="cpu")
    assert "\n" not in str(info.value) and shards[-1].name in str(info.value)


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_a_broken_moge_checkpoint_is_refused_naming_it(tmp_path, damage):
    from engine.depth import MoGeEstimator
    from engine.models.tiny import write_tiny_moge

    file = tmp_path / "moge" / "model.pt"
    write_tiny_moge(file, seed=0)
    _truncate(file) if damage == "truncate" else _garbage(file)
    with pytest.raises(InputError) as info:
        MoGeEstimator(str(file), device="cpu")
    assert "\n" not in str(info.value) and "model.pt" in str(info.value)


@pytest.mark.parametrize("rel, damage", [
    ("transformer/config.json", {"num_layers": 1}),
    ("transformer/diffusion_pytorch_model.safetensors", "truncate"),
    ("vae/config.json", {"num_layers": 3}),
    ("text_tokenizer/tokenizer.json", "garbage"),
    ("gen3c.json", {"text_dim": 48}),  # every part whole, but the DiT's text width is not the folder's
])
def test_generate_with_broken_weights_exits_in_one_line_before_any_work(weights, scene_files, tmp_path, capsys,
                                                                       monkeypatch, rel, damage):
    from engine.pipeline import Gen3CPipeline

    if isinstance(damage, dict):
        _edit_config(weights, rel, **damage)
    elif damage == "truncate":
        _truncate(weights / rel)
    else:
        _garbage(weights / rel)

    def never(*args, **kwargs):
        raise AssertionError("generation started with a broken weights folder")

    monkeypatch.setattr(Gen3CPipeline, "generate", never)
    out = tmp_path / "video.mp4"
    from engine.cli.generate import main

    code = main(["--image", str(scene_files / "image.png"), "--depth", str(scene_files / "depth.npy"), "--fov", "50",
                 "--preset", "left", "--weights", str(weights), "--out", str(out), "--steps", "1", "--frames", "9",
                 "--quiet", "--device", "cpu"])
    captured = capsys.readouterr()
    line = _one_line(captured.err)
    assert code == 2 and line.startswith("error:") and str(weights / rel) in line and captured.out == ""
    assert not out.exists()


def test_checking_a_folder_first_leaves_the_libraries_loading_real_tensors(tiny_weights_dir, repo_root):
    """The meta-device check runs before diffusers / transformers are imported in a fresh process (as in the
    CLI): the models loaded afterwards must hold no meta tensors (module-level tensors created under the meta
    device would stay meta for the whole process)."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from engine.models.integrity import check_weights\n"
        "w = sys.argv[1]\n"
        "check_weights(w, ['transformer', 'vae', 'text_encoder', 'text_tokenizer'])\n"
        "from engine.models import load_text_encoder, load_transformer, load_vae\n"
        "models = [load_transformer(w, device='cpu'), load_vae(w, device='cpu').vae,\n"
        "          load_text_encoder(w, device='cpu', cache_dir=None).model]\n"
        "meta = [n for m in models for n, t in [*m.named_parameters(), *m.named_buffers()] if t.is_meta]\n"
        "print('meta:', meta)\n"
        "sys.exit(1 if meta else 0)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(tiny_weights_dir)], cwd=repo_root, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]


# ------------------------------------------------------------------ hostile structure: lying array headers

def test_a_depth_file_whose_header_lies_about_its_size_allocates_nothing():
    from engine.depth import load_depth_file

    data = lying_npy((8192, 8192))  # 512 MiB claimed, 64 bytes held

    def load():
        with pytest.raises(InputError):
            load_depth_file(data, 12, 16)

    assert peak_bytes(load) < 32 * 1024 * 1024


def test_a_camera_npz_whose_header_lies_about_its_size_allocates_nothing(tmp_path):
    import zipfile

    from engine.paths import read_path_file

    file = tmp_path / "cams.npz"
    with zipfile.ZipFile(file, "w") as zf:
        zf.writestr("w2cs_all.npy", lying_npy((2_000_000, 4, 4)))  # 256 MB claimed
        zf.writestr("Ks_all.npy", lying_npy((2_000_000, 3, 3)))

    def load():
        with pytest.raises(InputError):
            read_path_file(file, 36)

    assert peak_bytes(load) < 32 * 1024 * 1024
