"""The README's Python quick start, run as written (tests/python/readme.py extracts it)."""
import os
import runpy
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import readme  # noqa: E402


def test_readme_python_example(mlx, tmp_path):
    path = tmp_path / "quickstart.py"
    path.write_text(readme.block("example"))
    runpy.run_path(str(path), run_name="__main__")

