"""Property-based fuzzing of every importer: whatever the bytes, the only exception is the project's own one-line
``engine.errors.InputError``.

Importers: camera path files of every format (``read_path_file`` and the CLI's ``cameras_from_path_file``, which
also samples the path; ``load_path_json``, ``load_nerfstudio``, ``load_npz``, ``path_from_dict``), depth files
(``load_depth_file``) and the studio's 3D-view payload (``studio.viewcam.parse_view_payload`` and the pose it
becomes, as ``add_keyframe_from_view`` does). Inputs: binary garbage, truncated and byte-flipped valid files,
valid-looking documents with wrong types, huge, tiny, NaN and infinite numbers, deep nesting, NPZ/NPY headers that
lie about their shape, odd dtypes and pickled arrays.

Deterministic (``derandomize=True``, no example database), bounded (``max_examples``) and with no deadline, so a
loaded machine cannot make it flaky; the whole module runs in well under a minute.
"""
from __future__ import annotations

import copy
import io
import json
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from engine.errors import InputError

H, W = 36, 64


def fuzz(n):
    return settings(max_examples=n, derandomize=True, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])


def only_input_errors(fn, *args, **kwargs):
    """Run an importer: it returns, or raises InputError with a one-line message; anything else fails the test.

    The outcome is a hypothesis event (``--hypothesis-show-statistics`` shows how many inputs got through)."""
    try:
        result = fn(*args, **kwargs)
    except InputError as exc:
        assert "\n" not in str(exc).strip(), str(exc)
        event(f"{fn.__name__}: refused")
        return None
    event(f"{fn.__name__}: accepted")
    return result


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


# ------------------------------------------------------------------------------------------- strategies

NUMBERS = st.one_of(
    st.integers(-3, 3), st.integers(), st.integers(-10 ** 400, 10 ** 400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1e-320, 1e308, -1e308, 1e-9, 0.5, 1.0, 179.9, 2 ** 31, 2 ** 64]),
)
FLOATS = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([0.0, -0.0, 1e-320, 1e308, 1e-9])
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, st.text(max_size=12))
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=6), st.dictionaries(st.text(max_size=8), inner, max_size=5)),
    max_leaves=24,
)


def _base_documents():
    from engine import paths

    kfs = (paths.Keyframe.from_look_at((0, 0, 0), (0, 0, 3), 60.0),
           paths.Keyframe.from_look_at((0.2, -0.1, 0.1), (0, 0, 3), 55.0, time=0.4).with_hold(2).with_ease("ease_in"),
           paths.Keyframe.from_look_at((0.4, 0.0, 0.3), (0, 0, 3), 50.0))
    path = paths.CameraPath(kfs, "smooth")
    preset = paths.CameraPath.from_preset("left", "center_facing", 0.3, num_frames=25, fov_y_deg=60.0, height=H)
    return [paths.path_to_dict(path), paths.path_to_dict(preset), paths.to_nerfstudio(path, 9, H, W),
            {k: v for k, v in paths.to_nerfstudio(path, 9, H, W).items() if k not in ("keyframes", "gen3c_studio")}]


BASES = _base_documents()


def _positions(doc, prefix=()):
    """Every (path of keys/indices) inside a JSON document, the root included."""
    yield prefix
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _positions(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc[:20]):  # long per-frame lists: their first entries are enough
            yield from _positions(v, prefix + (i,))


def _replace(doc, where, value):
    if not where:
        return value
    parent = doc
    for k in where[:-1]:
        parent = parent[k]
    parent[where[-1]] = value
    return doc


def _delete(doc, where):
    parent = doc
    for k in where[:-1]:
        parent = parent[k]
    del parent[where[-1]]
    return doc


def _number_positions(doc):
    out = []
    for where in _positions(doc):
        target = doc
        for k in where:
            target = target[k]
        if isinstance(target, (int, float)) and not isinstance(target, bool):
            out.append((where, target))
    return out


@st.composite
def nudged(draw, value, wild=NUMBERS):
    """A number near ``value`` (most stay valid, some cross a limit) or, now and then, one of ``wild``."""
    how = draw(st.sampled_from(["tiny", "small", "scale", "any"]))
    if how == "any":
        return draw(wild)
    if isinstance(value, int):
        return value + draw(st.integers(-3, 3))
    eps = {"tiny": 1e-7, "small": 1e-2, "scale": 1.0}[how]
    return float(value) * (1 + draw(st.floats(-eps, eps))) + draw(st.floats(-eps, eps))


@st.composite
def mutated_documents(draw):
    """A valid project or nerfstudio document with a few numbers nudged, or fields replaced, deleted, wrapped or
    duplicated (nudges keep many documents valid, so the checks past the first ones run too)."""
    doc = copy.deepcopy(draw(st.sampled_from(BASES)))
    for _ in range(draw(st.integers(0, 3))):
        action = draw(st.sampled_from(["nudge", "nudge", "nudge", "replace", "number", "delete", "wrap", "grow"]))
        numbers = _number_positions(doc)
        if action == "nudge" and numbers:
            where, value = draw(st.sampled_from(numbers))
            doc = _replace(doc, where, draw(nudged(value)))
            continue
        where = draw(st.sampled_from(list(_positions(doc))))
        target = doc
        for k in where:
            target = target[k]
        if action == "delete" and where:
            doc = _delete(doc, where)
        elif action == "number":
            doc = _replace(doc, where, draw(NUMBERS))
        elif action == "wrap":
            doc = _replace(doc, where, [target] if draw(st.booleans()) else {"value": target})
        elif action == "grow" and isinstance(target, list) and target:
            doc = _replace(doc, where, target * draw(st.sampled_from([2, 3, 50])))
        else:
            doc = _replace(doc, where, draw(JSON_VALUES))
    return doc


def _dumps(doc) -> bytes:
    return json.dumps(doc, allow_nan=True).encode()


@st.composite
def damaged(draw, data: bytes) -> bytes:
    """Valid bytes cut short or with a few bytes changed."""
    data = bytearray(data)
    if draw(st.booleans()):
        return bytes(data[:draw(st.integers(0, max(0, len(data) - 1)))])
    for _ in range(draw(st.integers(1, 4))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data)


DEEP = st.integers(60, 3000).map(lambda n: ("[" * n + "]" * n).encode()) | \
    st.integers(60, 3000).map(lambda n: ('{"keyframes":' + "[" * n + "]" * n + "}").encode())

JSON_BYTES = st.one_of(
    mutated_documents().map(_dumps),
    mutated_documents().map(_dumps),
    mutated_documents().map(_dumps),
    JSON_VALUES.map(_dumps),
    DEEP,
    st.sampled_from(BASES).map(_dumps).flatmap(damaged),
    st.binary(max_size=300),
    st.text(max_size=200).map(lambda s: s.encode("utf-8", "surrogatepass")),
)

DTYPES = ["<f4", "<f8", ">f8", "<f2", "<i8", "|u1", "|b1", "<c8", "<U3", "|V4", "<M8[s]"]


@st.composite
def arrays(draw, shapes=((4, 4), (3, 3), (5, 4, 4), (5, 3, 3), (1, 5, 4, 4), (0, 4, 4), (4,), (), (2, 3, 3, 3))):
    shape = draw(st.sampled_from(list(shapes) + [tuple(draw(st.lists(st.integers(0, 6), max_size=4)))]))
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    n = int(np.prod(shape))
    if dtype.kind in "fc":
        values = draw(st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32) | st.sampled_from([0.0, 1.0]),
                               min_size=n, max_size=n))
        return np.asarray(values, np.float64).astype(dtype).reshape(shape)
    return np.zeros(shape, dtype)


def _npy(array, lie_shape=None) -> bytes:
    """An .npy file, optionally with a header that claims another shape than the data it holds."""
    buf = io.BytesIO()
    header = np.lib.format.header_data_from_array_1_0(array)
    if lie_shape is not None:
        header["shape"] = lie_shape
    np.lib.format.write_array_header_1_0(buf, header)
    buf.write(array.tobytes())
    return buf.getvalue()


LIES = st.sampled_from([None, None, (10 ** 6, 10 ** 6), (2 ** 40, 4, 4), (100000, 4, 4), (4, 4), (0,), (-1, 4)])


@st.composite
def npz_bytes(draw, keys=("w2cs_all", "Ks_all")):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for key in draw(st.lists(st.sampled_from(list(keys) + ["other"]), max_size=4, unique=True)):
            if draw(st.integers(0, 9)) == 0:
                payload = _npy_pickled()
            else:
                payload = _npy(draw(arrays()), draw(LIES))
            zf.writestr(f"{key}.npy", payload)
    data = buf.getvalue()
    return draw(damaged(data)) if data and draw(st.integers(0, 3)) == 0 else data


def _npy_pickled() -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    return buf.getvalue()


def _valid_npz() -> bytes:
    w2cs, Ks = _base_path().sample(6, H, W)
    buf = io.BytesIO()
    np.savez(buf, w2cs_all=w2cs.numpy(), Ks_all=Ks.numpy())
    return buf.getvalue()


def _base_path():
    from engine import paths

    return paths.path_from_dict(BASES[0])


@st.composite
def plausible_camera_npz(draw):
    """The cameras of a real path, a few entries nudged, in float32 or float64, maybe with a batch dimension."""
    count = draw(st.integers(1, 9))
    w2cs, Ks = (x.numpy().astype(np.float64)[:count] for x in _base_path().sample(9, H, W))
    for _ in range(draw(st.integers(0, 3))):
        a = draw(st.sampled_from([w2cs, Ks]))
        index = tuple(draw(st.integers(0, n - 1)) for n in a.shape)
        a[index] = draw(nudged(float(a[index]), FLOATS))
    if draw(st.integers(0, 5)) == 0:
        Ks = Ks[:-1]
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    w2cs, Ks = w2cs.astype(dtype), Ks.astype(dtype)
    if draw(st.booleans()):
        w2cs, Ks = w2cs[None], Ks[None]
    buf = io.BytesIO()
    np.savez(buf, w2cs_all=w2cs, Ks_all=Ks)
    return buf.getvalue()


PATH_FILE_BYTES = st.one_of(JSON_BYTES, npz_bytes(), plausible_camera_npz(), plausible_camera_npz(),
                            st.just(_valid_npz()).flatmap(damaged))


# ------------------------------------------------------------------------------------------- path files

def _lying_npz() -> bytes:
    """An NPZ whose w2cs_all header claims 10^12 cameras (7 TiB) for 4 KiB of data."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("w2cs_all.npy", _npy(np.zeros((32, 4, 4)), (10 ** 12, 4, 4)))
        zf.writestr("Ks_all.npy", _npy(np.zeros((32, 3, 3))))
    return buf.getvalue()


def _huge_int_in_w2c() -> bytes:
    doc = copy.deepcopy(BASES[0])
    doc["keyframes"][1]["w2c"][4] = 10 ** 320  # JSON can spell it; no float holds it
    return _dumps(doc)


# the gaps these fuzzers found, kept as fixed examples: a header that lies about its shape made numpy try to
# allocate terabytes (MemoryError); an integer beyond float range in a w2c overflowed (OverflowError)
@fuzz(500)
@example(data=_lying_npz())
@example(data=_huge_int_in_w2c())
@given(data=PATH_FILE_BYTES)
def test_read_path_file_and_the_cli_reader_raise_only_input_errors(scratch, data):
    from engine import validate
    from engine.cli.common import cameras_from_path_file
    from engine.paths import read_path_file

    file = scratch / "path_input"
    file.write_bytes(data)
    found = only_input_errors(read_path_file, file, H)
    if found is not None:
        assert found.format in ("project", "nerfstudio", "npz")
    got = only_input_errors(cameras_from_path_file, str(file), 9, H, W)
    if got is not None:  # what an importer lets through are valid cameras (rigid, pinhole, near the seed)
        validate.camera_batch(*got[1])


@fuzz(150)
@given(data=PATH_FILE_BYTES)
def test_each_path_loader_raises_only_input_errors(scratch, data):
    from engine import paths

    file = scratch / "path_input"
    file.write_bytes(data)
    for load in (paths.load_path_json, paths.load_nerfstudio, paths.load_npz):
        only_input_errors(load, file)


@fuzz(300)
@example(doc=json.loads(_huge_int_in_w2c()))
@given(doc=st.one_of(mutated_documents(), mutated_documents(), JSON_VALUES))
def test_path_from_dict_raises_only_input_errors(doc):
    from engine.paths import path_from_dict

    only_input_errors(path_from_dict, doc)


# ------------------------------------------------------------------------------------------- depth files

def _png16(draw) -> bytes:
    from PIL import Image

    h, w = draw(st.sampled_from([(12, 16), (6, 8), (24, 32)]) | st.tuples(st.integers(1, 24), st.integers(1, 24)))
    values = np.asarray(draw(st.lists(st.integers(0, 65535), min_size=h * w, max_size=h * w)), np.uint16)
    mode = draw(st.sampled_from(["I;16", "L", "RGB"]))
    img = Image.fromarray(values.reshape(h, w)) if mode == "I;16" else \
        Image.fromarray((values.reshape(h, w) // 257).astype(np.uint8)).convert(mode)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


DEPTH_VALUES = st.floats(0.05, 200.0) | st.sampled_from([0.0, 0.0, float("nan"), float("inf"), -1.0, 1e30, 5e-324])


@st.composite
def plausible_depth(draw):
    """A depth map of the image's size or aspect (mostly), its values mostly positive."""
    h, w = draw(st.sampled_from([(12, 16), (24, 32), (6, 8), (13, 16), (12, 12)]))
    base = draw(st.floats(0.1, 50))
    depth = np.full((h, w), base) * (1 + np.linspace(0, 1, h * w).reshape(h, w))
    for _ in range(draw(st.integers(0, 4))):
        depth[draw(st.integers(0, h - 1)), draw(st.integers(0, w - 1))] = draw(DEPTH_VALUES)
    return depth.astype(draw(st.sampled_from(["<f4", "<f8", "<f2", "<u2"])))


@st.composite
def plausible_K(draw):
    f = draw(st.floats(-5, 200) | st.sampled_from([0.0, float("nan")]))
    K = np.array([[f, 0, draw(st.floats(-10, 40))], [0, draw(nudged(f, FLOATS)) if draw(st.booleans()) else f,
                  draw(st.floats(-10, 40))], [0, 0, 1]], np.float64)
    if draw(st.integers(0, 5)) == 0:
        K[2] = [draw(FLOATS), 0, 1]
    return K[:draw(st.sampled_from([3, 3, 3, 2]))]


@st.composite
def plausible_npz(draw):
    depth = draw(plausible_depth())
    arrays_ = {"depth": depth}
    if draw(st.booleans()):
        arrays_[draw(st.sampled_from(["K", "intrinsics"]))] = draw(plausible_K())
    if draw(st.booleans()):
        shape = depth.shape if draw(st.integers(0, 4)) else (3, 3)
        arrays_["mask"] = np.asarray(draw(st.lists(st.booleans(), min_size=int(np.prod(shape)),
                                                   max_size=int(np.prod(shape))))).reshape(shape)
    buf = io.BytesIO()
    np.savez(buf, **arrays_)
    return buf.getvalue()


@st.composite
def depth_bytes(draw):
    kind = draw(st.sampled_from(["plausible_npy", "plausible_npz", "plausible_npz", "npy", "npz", "png", "png",
                                 "garbage", "exr"]))
    depth_shapes = ((12, 16), (24, 32), (12, 17), (1, 12, 16), (12, 16, 1), (3, 4), (0, 16), (12, 16, 3))
    if kind == "plausible_npy":
        data = _npy(draw(plausible_depth()))
    elif kind == "plausible_npz":
        data = draw(plausible_npz())
    elif kind == "npy":
        data = _npy(draw(arrays(depth_shapes)), draw(LIES))
    elif kind == "npz":
        data = draw(npz_bytes(keys=("depth", "K", "intrinsics", "mask")))
    elif kind == "png":
        data = _png16(draw)
    elif kind == "exr":
        data = b"\x76\x2f\x31\x01" + draw(st.binary(max_size=200))
    else:
        data = draw(st.binary(max_size=300))
    return draw(damaged(data)) if data and draw(st.integers(0, 4)) == 0 else data


def mostly(value, others):
    """``value`` three times in four, else one of ``others``."""
    return st.integers(0, 3).flatmap(lambda i: others if i == 0 else st.just(value))


def _png_depth() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.full((12, 16), 1000, np.uint16)).save(buf, format="PNG")
    return buf.getvalue()


# found by this fuzzer: a scale beyond float range overflowed (OverflowError) reading a 16-bit PNG
@fuzz(400)
@example(data=_png_depth(), fov=None, scale=10 ** 320)
@given(data=depth_bytes(), fov=mostly(None, NUMBERS), scale=mostly(None, NUMBERS))
def test_load_depth_file_raises_only_input_errors(data, fov, scale):
    from engine import validate
    from engine.depth import load_depth_file

    result = only_input_errors(load_depth_file, data, 12, 16, fov_y_deg=fov, scale=scale)
    if result is not None:
        assert result.depth.shape == (12, 16) and np.isfinite(result.depth).all() and (result.depth >= 0).all()
        validate.intrinsics(result.K, batch=False)


# ------------------------------------------------------------------------------------ the 3D view payload

VIEW = {"camera": {"eye": {"x": 1.2, "y": -0.4, "z": 0.3}, "center": {"x": 0.0, "y": 0.0, "z": 0.0},
                   "up": {"x": 0.0, "y": 0.0, "z": 1.0}},
        "ranges": {"x": [-1.0, 1.0], "y": [0.0, 3.0], "z": [-1.0, 1.0]}, "aspect": {"x": 0.7, "y": 1.0, "z": 0.7}}


@st.composite
def view_payloads(draw):
    kind = draw(st.sampled_from(["nudged", "nudged", "mutated", "mutated", "value", "deep", "text"]))
    if kind in ("nudged", "mutated"):
        doc = copy.deepcopy(VIEW)
        for _ in range(draw(st.integers(1, 3))):
            if kind == "nudged":
                where, value = draw(st.sampled_from(_number_positions(doc)))
                doc = _replace(doc, where, draw(nudged(value)))
                continue
            where = draw(st.sampled_from(list(_positions(doc))))
            doc = _replace(doc, where, draw(NUMBERS if draw(st.booleans()) else JSON_VALUES))
        return json.dumps(doc, allow_nan=True)
    if kind == "value":
        return json.dumps(draw(JSON_VALUES), allow_nan=True)
    if kind == "deep":
        return draw(DEEP).decode()
    return draw(st.text(max_size=200))


# an integer beyond float range in the axis ranges overflowed (OverflowError) in the payload parser
@fuzz(400)
@example(text=json.dumps(dict(VIEW, ranges=dict(VIEW["ranges"], x=[-1, 10 ** 320]))))
@given(text=view_payloads())
def test_view_payload_to_keyframe_raises_only_input_errors(text):
    from engine.paths import Keyframe
    from studio.viewcam import SceneBox, parse_view_payload, pose_from_plotly_camera

    parsed = only_input_errors(parse_view_payload, text)
    if parsed is None:
        return
    camera, box = parsed
    w2c = only_input_errors(pose_from_plotly_camera, camera, box or SceneBox.around(np.zeros((1, 3))))
    if w2c is not None:
        only_input_errors(Keyframe, w2c, 60.0)
