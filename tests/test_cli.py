"""The `python -m engine` dispatcher: help, unknown commands, and the fast paths of each command."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from engine.cli import COMMANDS, main
from engine.cli.bench import BENCHES


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


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_answers_help(command, capsys):
    """Each command of the table imports and prints its usage for --help with exit status 0."""
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert "usage:" in out and command in out


@pytest.mark.parametrize("bench", sorted(BENCHES))
def test_every_bench_answers_help(bench, capsys):
    assert main(["bench", bench, "--help"]) == 0
    assert "usage:" in capsys.readouterr().out


def test_help_does_not_load_heavy_libraries():
    """`--help` of the dispatcher and of every non-benchmark command stays fast: no torch/numpy import."""
    commands = [c for c in COMMANDS if c != "bench"]
    code = (
        "import sys\n"
        "from engine.cli import main\n"
        "assert main(['--help']) == 0\n"
        f"for c in {commands!r}:\n"
        "    assert main([c, '--help']) == 0\n"
        "print('HEAVY', sorted(m for m in ('torch', 'numpy', 'diffusers') if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY []" in proc.stdout


def _imports_argparse(path: Path) -> bool:
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "argparse" for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "argparse":
            return True
    return False


def test_library_modules_hold_no_argparse(tmp_path):
    """Command-line parsing lives in engine/cli/ and engine/bench/ only; the library modules stay free of it."""
    engine = Path(__file__).resolve().parents[1] / "engine"
    allowed = {engine / "cli", engine / "bench"}
    offenders = [str(p.relative_to(engine)) for p in sorted(engine.rglob("*.py"))
                 if not any(folder in p.parents for folder in allowed) and _imports_argparse(p)]
    assert offenders == []
    # the check sees imports at any depth, e.g. inside a function as `main` once had in engine/convert.py
    local = tmp_path / "local.py"
    local.write_text("def main():\n    from argparse import ArgumentParser\n    return ArgumentParser\n")
    assert _imports_argparse(local)
    local.write_text("def main():\n    return 'argparse'\n")
    assert not _imports_argparse(local)
