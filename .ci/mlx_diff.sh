#!/usr/bin/env bash
# Differential test against MLX itself (issue 7): bash .ci/mlx_diff.sh [mlx_diff.py options]
# from anywhere in the repository. Installs MLX's CPU build and numpy when they are missing and
# the package index is reachable, then runs tests/mlx/mlx_diff.py (which builds a shared libqmv
# into build/mlx-diff-lib). If MLX cannot be installed the test prints why and exits 77
# (skipped): it never passes silently. Exit 0 pass, 1 mismatch, 2 harness error, 77 skipped.
# PYTHON=/path/to/python3 picks the interpreter.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
py=${PYTHON:-python3}
if ! command -v "$py" >/dev/null 2>&1; then
  echo "mlx_diff: SKIPPED: $py not found (the differential test against MLX did NOT run)"
  exit 77
fi

have_mlx() { "$1" -c 'import numpy, mlx.core' >/dev/null 2>&1; }

venv=build/mlx-venv
if ! have_mlx "$py" && [ -x "$venv/bin/python" ] && have_mlx "$venv/bin/python"; then
  py=$venv/bin/python # installed there by an earlier run
fi
if ! have_mlx "$py"; then
  echo "ci: MLX or numpy missing for $py; installing mlx[cpu] and numpy"
  if ! "$py" -m pip install --quiet 'mlx[cpu]' numpy </dev/null; then
    # An externally managed system Python (PEP 668, Debian) refuses pip: use a venv in build/.
    echo "ci: pip install failed; trying a virtual environment in $venv"
    if { [ -x "$venv/bin/python" ] || "$py" -m venv "$venv" </dev/null; } &&
      "$venv/bin/python" -m pip install --quiet 'mlx[cpu]' numpy </dev/null; then
      py=$venv/bin/python
    else
      echo "ci: WARNING: could not install MLX (no network, no pip or no venv); the test will skip"
    fi
  fi
fi

exec "$py" tests/mlx/mlx_diff.py --build-dir build/mlx-diff-lib "$@"
