"""Global switches, named as JAX names them: `fnbrrr.config.update("jax_enable_x64", True)`."""

from __future__ import annotations

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
