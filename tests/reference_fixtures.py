"""Loaders for the tensors produced by the official GEN3C code (tests/fixtures/gen3c_ref, see its README)."""
from __future__ import annotations

import json
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures" / "gen3c_ref"


def load_fixture(name: str) -> dict:
    """All tensors of fixtures/gen3c_ref/<name>.safetensors as a dict of torch tensors."""
    from safetensors.torch import load_file

    return load_file(str(FIXTURES / f"{name}.safetensors"))


def load_fixture_meta(name: str) -> dict:
    """The JSON sidecar of fixtures/gen3c_ref/<name>.safetensors."""
    return json.loads((FIXTURES / f"{name}.json").read_text())
