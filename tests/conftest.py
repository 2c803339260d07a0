"""Shared fixtures: a seeded generator, hypothesis settings, optional PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

# Deterministic property tests: the same examples every run, so CI never flakes.
settings.register_profile(
    "deltaprop",
    derandomize=True,
    deadline=None,
    max_examples=40,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("deltaprop")


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded random generator (seed 0)."""
    return np.random.default_rng(0)


@pytest.fixture
def torch():
    """PyTorch, or skip the test (oracle tests; ``pip install torch==2.13.0``)."""
    torch = pytest.importorskip("torch")
    torch.set_default_dtype(torch.float64)
    return torch
