"""fnbrrr: deep learning that goes brrr — a functional, JAX-style array library from scratch."""

from fnbrrr import _prims  # noqa: F401  (registers every primitive)
from fnbrrr import lax
from fnbrrr.config import config
from fnbrrr.core import Array

__all__ = ["Array", "config", "lax"]
