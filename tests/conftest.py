"""Tests run in float64 on the CPU (what CI has)."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import pytest  # noqa: E402


@pytest.fixture
def results_dir(tmp_path):
    """A fresh results directory per test."""
    d = tmp_path / "results"
    d.mkdir()
    return d
