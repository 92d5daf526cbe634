"""engine.json_input: the one reader for JSON we did not write (size and nesting checked before parsing)."""
from __future__ import annotations

import json
import random

import pytest

from engine.errors import InputError
from engine.json_input import MAX_JSON_DEPTH, nesting_depth, parse_json, read_json_file


def _random_doc(rng, depth):
    """A random JSON value of exactly ``depth`` nesting levels, with brackets and quotes inside its strings."""
    if depth == 0:
        return rng.choice([1, -2.5, True, None, 'a "quoted" [string] {x}', "back\\slash ]}", "\u00e9[{"])
    inner = [_random_doc(rng, rng.randrange(depth)) for _ in range(rng.randrange(3))]
    inner.insert(rng.randrange(len(inner) + 1), _random_doc(rng, depth - 1))
    if rng.random() < 0.5:
        return inner
    return {f"k{i}[": v for i, v in enumerate(inner)}


@pytest.mark.parametrize("seed", range(12))
def test_nesting_depth_matches_the_structure(seed):
    rng = random.Random(seed)
    depth = rng.randrange(0, 12)
    doc = _random_doc(rng, depth)
    for text in (json.dumps(doc), json.dumps(doc, indent=2, ensure_ascii=False)):
        assert nesting_depth(text.encode("utf-8")) == depth


def test_deep_input_is_refused_before_json_loads(monkeypatch):
    def no_parse(*args, **kwargs):
        raise AssertionError("json.loads reached")

    monkeypatch.setattr(json, "loads", no_parse)
    for text in ("[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1), "{" * 10**6, '{"a": ' + "[" * 5000):
        with pytest.raises(InputError, match="payload is not valid JSON for us: nested"):
            parse_json(text, "payload")


def test_limits_and_forms():
    assert parse_json("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH, "doc") is not None
    assert parse_json(b'\xef\xbb\xbf{"a": 1}', "doc") == {"a": 1}  # a byte-order mark is allowed
    with pytest.raises(InputError, match="doc is too large"):
        parse_json(b"[" + b" " * 100 + b"]", "doc", max_bytes=50)
    with pytest.raises(InputError, match=r"doc is not valid JSON \(non-finite number NaN\)"):
        parse_json('{"a": NaN}', "doc")
    with pytest.raises(InputError, match="doc is not UTF-8 text"):
        parse_json(b'{"a": "\xff"}', "doc")
    with pytest.raises(InputError, match="must be JSON text"):
        parse_json(12, "doc")


def test_files(tmp_path):
    f = tmp_path / "c.json"
    f.write_text('{"x": [1, 2]}')
    assert read_json_file(f) == {"x": [1, 2]}
    with pytest.raises(InputError, match="too large"):
        read_json_file(f, "config", max_bytes=4)
    with pytest.raises(InputError, match="config cannot be read"):
        read_json_file(tmp_path / "missing.json", "config")
    with pytest.raises(InputError, match="is not a file"):
        read_json_file(tmp_path, "config")
