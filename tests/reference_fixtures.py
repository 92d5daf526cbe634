"""Loaders for the tensors produced by the official GEN3C code.

The files are not kept in this repository (two are over 10 MB): they live in the project's shared folder
beside the checkout, `../shared/fixtures/gen3c_ref/` (its README explains every key), where CI also has them.
`$GEN3C_REF_FIXTURES` points elsewhere.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

_REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(os.environ.get("GEN3C_REF_FIXTURES") or _REPO.parent / "shared" / "fixtures" / "gen3c_ref")


def _file(name: str) -> Path:
    path = FIXTURES / name
    if not path.is_file():
        raise FileNotFoundError(
            f"reference fixture {path} not found: the official GEN3C tensors are expected in "
            f"../shared/fixtures/gen3c_ref beside the checkout (or set GEN3C_REF_FIXTURES)")
    return path


def load_fixture(name: str) -> dict:
    """All tensors of <FIXTURES>/<name>.safetensors as a dict of torch tensors."""
    from safetensors.torch import load_file

    return load_file(str(_file(f"{name}.safetensors")))


def load_fixture_meta(name: str) -> dict:
    """The JSON sidecar of <FIXTURES>/<name>.safetensors."""
    return json.loads(_file(f"{name}.json").read_text())
