"""Pieces shared by the engine's commands: reading a camera path file, running a command with clean errors."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from engine.errors import Cancelled, InputError, WeightsMissingError


def cameras_from_path_file(file: str, num_frames: int, height: int, width: int):
    """(CameraPath or None, (w2cs, Ks)) for ``num_frames`` frames from any supported path file.

    An NPZ with exactly ``num_frames`` cameras is used as is (its K kept); otherwise the file becomes a
    CameraPath (project JSON, nerfstudio JSON or NPZ) sampled at ``num_frames``.
    """
    from engine import paths

    suffix = Path(file).suffix.lower()
    if suffix == ".npz":
        w2cs, Ks = paths.load_npz(file)
        if len(w2cs) == num_frames:
            return None, (w2cs, Ks)
        path = paths.CameraPath.from_cameras(w2cs, Ks, height)
        return path, path.sample(num_frames, height, width)
    if suffix != ".json":
        raise InputError(f"camera path {file}: unsupported extension {suffix!r} (use .json or .npz)")
    try:
        head = json.loads(Path(file).read_text()[: 20_000_000])
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"camera path {file}: not readable JSON ({exc.__class__.__name__})") from None
    if isinstance(head, dict) and head.get("format") == "gen3c-studio-path":
        path = paths.load_path_json(file)
    else:
        path = paths.load_nerfstudio(file)
    return path, path.sample(num_frames, height, width)


def run_command(run, args) -> int:
    """Call ``run(args)``; print its summary as JSON (exit 0), or a one-line error (exit 2; 130 if cancelled)."""
    try:
        summary = run(args)
    except (InputError, WeightsMissingError) as exc:
        print(f"error: {str(exc).strip()}", file=sys.stderr)
        return 2
    except Cancelled as exc:
        print(f"cancelled: {exc}", file=sys.stderr)
        return 130
    print(json.dumps(summary))
    return 0
