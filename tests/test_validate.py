"""engine.validate: the one set of input rules (cameras, images, numbers, sampling options, frame counts)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from engine import validate
from engine.errors import InputError

K_REF = np.array([[1000.0, 0, 640], [0, 1000, 352], [0, 0, 1]])


def _rot(axis, deg):
    a = math.radians(deg)
    c, s = math.cos(a), math.sin(a)
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    R = np.eye(3)
    R[i, i], R[i, j], R[j, i], R[j, j] = c, -s, s, c
    return R


def _pose(R, t):
    M = np.eye(4)
    M[:3, :3], M[:3, 3] = R, t
    return M


# ---------------------------------------------------------------------------- cameras (moved from test_cameras)


def test_validate_intrinsics_errors():
    with pytest.raises(InputError, match="shape"):
        validate.intrinsics(np.eye(4))
    with pytest.raises(InputError, match="NaN"):
        validate.intrinsics(np.full((3, 3), np.inf))
    with pytest.raises(InputError, match="focal"):
        validate.intrinsics([[-5.0, 0, 1], [0, 5, 1], [0, 0, 1]])
    with pytest.raises(InputError, match="numeric"):
        validate.intrinsics([["a", 0, 1], [0, 5, 1], [0, 0, 1]])
    assert validate.intrinsics(K_REF).dtype == np.float64


def test_validate_w2c_errors():
    M = _pose(_rot(0, 30), [1, 2, 3])
    assert np.array_equal(validate.w2c(M), M)
    bad = M.copy()
    bad[3] = [0, 0, 1, 1]
    with pytest.raises(InputError, match="last row"):
        validate.w2c(bad)
    shear = M.copy()
    shear[0, 1] += 0.01
    with pytest.raises(InputError, match="rigid"):
        validate.w2c(shear)
