#!/usr/bin/env python3
"""Prints a code block of README.md: the first ``` block after the marker
"<!-- python-quickstart: NAME -->". .ci/run runs the "install" block; test_readme.py runs the
"example" block, so the README's Python quick start is what CI tests.

    python3 tests/python/readme.py install|example
"""
import os
import sys

README = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "README.md")


def block(name):
    text = open(README, encoding="utf-8").read()
    marker = f"<!-- python-quickstart: {name} -->"
    at = text.find(marker)
    if at < 0:
        raise SystemExit(f"README.md has no '{marker}' marker")
    start = text.index("```", at)
    start = text.index("\n", start) + 1
    end = text.index("\n```", start)
    return text[start:end + 1]


if __name__ == "__main__":
    sys.stdout.write(block(sys.argv[1]))
