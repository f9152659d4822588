"""Global switches, named as JAX names them: `fnbrrr.config.update("jax_enable_x64", True)`."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

_DEFAULTS = {
    "jax_enable_x64": False,
    "jax_disable_jit": False,
    "jax_debug_nans": False,
}


class Config:
    """Holds the library's flags; read them as attributes (`config.jax_enable_x64`).

    Example:
        >>> from fnbrrr import config
        >>> config.update("jax_enable_x64", False)
        >>> config.jax_enable_x64
        False
    """

    def __init__(self) -> None:
        self._values = dict(_DEFAULTS)
        self._listeners: list = []
        # Flags are plain attributes: they are read on every jitted call.
        self.__dict__.update(self._values)

    def update(self, name: str, value: Any) -> None:
        """Set flag `name` to `value`; unknown names raise `AttributeError` listing known ones."""
        if name not in self._values:
            known = ", ".join(sorted(self._values))
            raise AttributeError(f"config.update: unknown flag {name!r}; known flags: {known}")
        self._values[name] = value
        self.__dict__[name] = value
        for listener in self._listeners:
            listener(name, value)

    def on_change(self, listener) -> None:
        """Call `listener(name, value)` after every `update` (caches use this to reset)."""
        self._listeners.append(listener)

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(f"config has no flag {name!r}; known flags: {sorted(_DEFAULTS)}")


config = Config()


@contextlib.contextmanager
def _flag_set_to(name: str, value: Any) -> Iterator[None]:
    previous = getattr(config, name)
    config.update(name, value)
    try:
        yield
    finally:
        config.update(name, previous)


def disable_jit(disable: bool = True) -> contextlib.AbstractContextManager:
    """A context manager under which jitted functions run eagerly (as `jax.disable_jit`).

    Example:
        >>> import fnbrrr
        >>> with fnbrrr.disable_jit():
        ...     fnbrrr.config.jax_disable_jit
        True
    """
    return _flag_set_to("jax_disable_jit", disable)


def enable_x64(new_val: bool = True) -> contextlib.AbstractContextManager:
    """A context manager with 64-bit types on (or off) inside (as `jax.enable_x64`).

    Example:
        >>> import fnbrrr, fnbrrr.numpy as jnp
        >>> with fnbrrr.enable_x64():
        ...     jnp.ones(2).dtype
        dtype('float64')
    """
    return _flag_set_to("jax_enable_x64", new_val)


def debug_nans(new_val: bool = True) -> contextlib.AbstractContextManager:
    """A context manager raising at the first NaN a primitive produces (as `jax.debug_nans`).

    Example:
        >>> import fnbrrr
        >>> with fnbrrr.debug_nans():
        ...     fnbrrr.config.jax_debug_nans
        True
    """
    return _flag_set_to("jax_debug_nans", new_val)
