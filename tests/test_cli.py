"""The `python -m engine` dispatcher: help, unknown commands, and the fast paths of each command."""
from __future__ import annotations

import subprocess
import sys

from engine.__main__ import COMMANDS, main


def test_help_lists_every_command(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert name in out


def test_unknown_command_is_an_error(capsys):
    assert main(["frobnicate"]) == 2
    assert "unknown command 'frobnicate'" in capsys.readouterr().err


def test_bench_without_target_is_an_error(capsys):
    assert main(["bench"]) == 2
    assert main(["bench", "nonsense"]) == 2


def test_module_entry_point_runs():
    proc = subprocess.run([sys.executable, "-m", "engine", "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "preview" in proc.stdout
