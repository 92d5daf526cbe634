"""Shared test fixtures: reference tensors from the official GEN3C code, temp dirs, thread settings."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import torch  # noqa: E402

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

# diffusers' log handler keeps the sys.stderr it sees at its first import; imported inside a test that captures
# output (capsys), that stream is closed after the test and every later diffusers warning prints a logging error
import diffusers  # noqa: E402, F401

from reference_fixtures import FIXTURES  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def tiny_weights_dir(tmp_path_factory) -> Path:
    """A tiny random model set in the real weights layout (written once per test session)."""
    from engine.models import make_tiny_weights

    root = tmp_path_factory.mktemp("tiny_weights_shared")
    make_tiny_weights(root)
    return root
