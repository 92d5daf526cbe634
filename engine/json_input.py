"""Reading JSON we did not write: the one parser for path files, the studio's view payloads and configs.

Size and nesting depth are checked before ``json.loads`` sees the text, so deeply nested input never
reaches the parser's recursion (which raises ``RecursionError`` around a thousand levels). The depth scan
is cheap: string literals are blanked with one regular expression and the remaining brackets are counted
with a numpy cumulative sum. NaN and Infinity are refused (they are not JSON), and so are numbers no float
holds (``1e999``, an integer of 400 digits), which would otherwise overflow where they are used. Every problem is an
:class:`engine.errors.InputError` starting with the subject ("camera path p.json", "3D view camera", ...).
"""
from __future__ import annotations

import json
import math
import os
import re
import sys
from pathlib import Path

import numpy as np

from engine.errors import InputError

# Our deepest documents nest 5 levels (a path file: {keyframes: [{w2c: [[...]]}]}); configs 3.
MAX_JSON_DEPTH = 64
MAX_JSON_BYTES = 20 * 1024 * 1024
# Config files we read ourselves (gen3c.json, a VAE config.json, a sample's meta.json) are a few kB.
MAX_CONFIG_BYTES = 1024 * 1024

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)


def nesting_depth(data: bytes) -> int:
    """The deepest bracket nesting of JSON text (brackets inside strings do not count)."""
    code = np.frombuffer(_STRING.sub(b'""', data), np.uint8)
    step = ((code == ord("[")) | (code == ord("{"))).astype(np.int32)
    step -= (code == ord("]")) | (code == ord("}"))
    return int(np.cumsum(step, dtype=np.int64).max(initial=0))


def _reject_constant(name):
    raise ValueError(f"non-finite number {name}")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999: a number JSON can spell but no float holds
        raise ValueError(f"number {text[:20]} is out of range")
    return value


def _bounded_int(text: str) -> int:
    value = int(text)
    if abs(value) > sys.float_info.max:  # every number we read becomes a float somewhere
        raise ValueError(f"number {text[:20]}... is out of range")
    return value


def parse_json(data, subject: str, *, max_bytes: int = MAX_JSON_BYTES, max_depth: int = MAX_JSON_DEPTH):
    """JSON from UTF-8 bytes or a str (a leading byte-order mark is allowed), size and depth checked first."""
    if isinstance(data, str):
        data = data.encode("utf-8", errors="surrogatepass")
    elif not isinstance(data, (bytes, bytearray, memoryview)):
        raise InputError(f"{subject} must be JSON text, got {type(data).__name__}")
    data = bytes(data)
    if len(data) > max_bytes:
        raise InputError(f"{subject} is too large ({len(data):,} bytes > {max_bytes:,})")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"{subject} is not UTF-8 text, so not valid JSON") from None
    depth = nesting_depth(data)
    if depth > max_depth:
        raise InputError(f"{subject} is not valid JSON for us: nested {depth} levels deep (at most {max_depth})")
    try:
        return json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float, parse_int=_bounded_int)
    except (ValueError, RecursionError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{subject} is not valid JSON ({msg})") from None


def read_json_file(file, subject: str | None = None, *, max_bytes: int = MAX_JSON_BYTES,
                   max_depth: int = MAX_JSON_DEPTH):
    """Parse a JSON file with :func:`parse_json`; the size is checked before the file is read.

    ``subject`` starts every message (default: the file's path).
    """
    try:
        path = Path(os.fspath(file))
    except TypeError:
        raise InputError(f"{subject or 'JSON file'} must be a file path, got {type(file).__name__}") from None
    subject = subject or str(path)
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise InputError(f"{subject} is not a file")
        if size > max_bytes:
            raise InputError(f"{subject} is too large ({size:,} bytes > {max_bytes:,})")
        with open(path, "rb") as fh:
            data = fh.read(max_bytes + 1)
    except OSError as exc:
        raise InputError(f"{subject} cannot be read: {exc.strerror or exc}") from None
    return parse_json(data, subject, max_bytes=max_bytes, max_depth=max_depth)
