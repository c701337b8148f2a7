"""Shared fixtures of the qmv package tests (run: tests/python/run.py, or pytest -rs here)."""
import os
import shutil

import numpy as np
import pytest

try:
    import mlx.core as mx
except Exception as e:  # noqa: BLE001 - any import failure means no MLX comparisons
    mx = None
    MLX_MISSING = f"MLX cannot be imported ({type(e).__name__}: {e}); pip install 'mlx[cpu]==0.32.4'"
else:
    MLX_MISSING = None


@pytest.fixture
def mlx():
    """mlx.core, or a loud skip: the comparisons with MLX did NOT run."""
    if mx is None:
        pytest.skip(f"SKIPPED MLX comparison: {MLX_MISSING}")
    return mx


@pytest.fixture
def qmv_tool():
    """The built `qmv` command ($QMV_TOOL, set by ctest), or a loud skip."""
    tool = os.environ.get("QMV_TOOL") or shutil.which("qmv")
    if not tool or not os.access(tool, os.X_OK):
        pytest.skip("SKIPPED CLI comparison: set QMV_TOOL to the built qmv command")
    return tool


@pytest.fixture
def rng():
    return np.random.default_rng(20260101)
