"""Every Python example in README.md runs as written (doctest)."""

from __future__ import annotations

import doctest
from pathlib import Path

import pytest
from threadpoolctl import threadpool_limits

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_examples_run():
    with threadpool_limits(1):
        result = doctest.testfile(
            str(README),
            module_relative=False,
            optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
        )
    assert result.attempted > 20
    if result.failed:
        pytest.fail(f"{result.failed} of {result.attempted} README examples failed (see output)")
