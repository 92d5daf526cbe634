"""Pieces shared by the engine's commands: the preset flags, reading a camera path file, running a command with
clean errors."""
from __future__ import annotations

import json
import sys

from engine.errors import Cancelled, InputError, WeightsMissingError


def add_camera_args(parser) -> None:
    """The camera flags of preview and generate: --preset or --path, and the preset's --rotation, --distance."""
    cam = parser.add_mutually_exclusive_group(required=True)
    cam.add_argument("--preset", help="official trajectory: left/right/up/down/zoom_in/zoom_out/clockwise/counterclockwise")
    cam.add_argument("--path", help="camera path file: project JSON, nerfstudio camera_path.json or GEN3C NPZ")
    parser.add_argument("--rotation", default="center_facing", help="preset rotation mode (default center_facing)")
    parser.add_argument("--distance", type=float, default=0.3, help="preset movement distance (default 0.3)")


def check_preset_args(args) -> None:
    """--preset, --rotation and --distance by engine.validate's rules (cheap: before any file is read)."""
    from engine import validate
    from engine.cameras import PRESETS, ROTATION_MODES

    validate.one_of(args.preset, PRESETS, "--preset")
    validate.one_of(args.rotation, ROTATION_MODES, "--rotation")
    validate.movement_distance(args.distance, "--distance")


def cameras_from_path_file(file: str, num_frames: int, height: int, width: int):
    """(CameraPath or None, (w2cs, Ks)) for ``num_frames`` frames from any supported path file.

    The file is read by ``engine.paths.read_path_file`` (as the studio's import does). An NPZ with
    exactly ``num_frames`` cameras is used as is (its K kept, no path returned); otherwise the file's
    CameraPath is sampled at ``num_frames``.
    """
    from engine.paths import read_path_file

    found = read_path_file(file, height)
    if found.cameras is not None and len(found.cameras[0]) == num_frames:
        return None, found.cameras
    return found.path, found.path.sample(num_frames, height, width)


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
