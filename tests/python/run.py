#!/usr/bin/env python3
"""Runs the qmv package's pytest suite (tests/python) for ctest, label python.

The interpreter must have the package installed (`pip install .` from this source tree, as
.ci/run does in a fresh virtual environment) and pytest. Without them it says so and exits 77,
which ctest reports as skipped, never passed. An installed package whose Python files differ
from this source tree's is stale: that fails, asking for a reinstall.
"""
import filecmp
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
source = os.path.join(here, "..", "..", "python", "qmv")


def skip(why):
    print(f"python: SKIPPED: {why} (the Python package tests did NOT run; "
          f"python3 -m venv V && V/bin/pip install . numpy pytest, then configure with "
          f"-DQMV_PYTHON=V/bin/python)")
    sys.exit(77)


try:
    import pytest
except ImportError as e:
    skip(f"{sys.executable} has no pytest ({e})")
try:
    import qmv
    qmv.version()
except (ImportError, OSError) as e:
    skip(f"{sys.executable} has no usable installed qmv package ({e})")

installed = os.path.dirname(os.path.abspath(qmv.__file__))
if os.path.samefile(installed, source):
    skip("qmv was imported from the source tree, not an installed package")
names = sorted(n for n in os.listdir(source) if n.endswith(".py"))
_, differ, missing = filecmp.cmpfiles(source, installed, names, shallow=False)
if differ or missing:
    print(f"python: FAILED: the qmv package in {installed} is stale ({', '.join(differ + missing)} "
          "differ from python/qmv): reinstall it with pip install .")
    sys.exit(1)

print(f"python: qmv {qmv.version()} from {installed}, {sys.executable}")
sys.exit(pytest.main(["-q", "-rs", "-p", "no:cacheprovider", here]))
