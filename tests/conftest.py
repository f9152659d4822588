"""Fixtures shared by the test modules; plain helpers are in `helpers.py`."""

from __future__ import annotations

import pytest

import fnbrrr


@pytest.fixture
def x64():
    """Run a test with 64-bit types on, restoring the previous setting afterwards."""
    previous = fnbrrr.config.jax_enable_x64
    fnbrrr.config.update("jax_enable_x64", True)
    try:
        yield
    finally:
        fnbrrr.config.update("jax_enable_x64", previous)
