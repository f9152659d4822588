"""Utilities for writing generated source: indented lines, affine index expressions."""

from __future__ import annotations

from contextlib import contextmanager

INDENT = "    "


class Code:
    """Generated source lines with an indentation level; calling it appends a line."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.depth = 0

    def __call__(self, line: str) -> None:
        self.lines.append(INDENT * self.depth + line)

    @contextmanager
    def block(self, header: str | None):
        """An indented block under `header` (None: no block, same level)."""
        if header is None:
            yield
            return
        self(header)
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1


def contiguous_strides(shape) -> list[int]:
    """Element strides of a C-contiguous array: `contiguous_strides((2, 3, 4)) == [12, 4, 1]`."""
    strides, step = [], 1
    for size in reversed(shape):
        strides.append(step)
        step *= size
    return strides[::-1]


def same_strides(strides, expected, sizes) -> bool:
    """Equal strides, ignoring axes of size 1 (their stride never matters)."""
    return all(s == e or n == 1 for s, e, n in zip(strides, expected, sizes))


def affine(*terms) -> str:
    """`a + (b + c) * 2 + ...` from (expr, coefficient) terms, dropping zeros and unit factors."""
    parts = []
    for expr, coef in terms:
        if coef == 0 or expr == "0":
            continue
        if expr == "1":
            parts.append(str(coef))
        elif coef == 1:
            parts.append(expr)
        else:
            simple = expr.isidentifier() or expr.isdigit()
            parts.append(f"{expr if simple else f'({expr})'} * {coef}")
    return " + ".join(parts) if parts else "0"


def pointer(base: str, offset: str, itemsize: int) -> str:
    """The address expression `base + offset * itemsize` (just `base` for offset "0")."""
    return base if offset == "0" else f"{base} + ({offset}) * {itemsize}"


def dilated(size: int, dilation: int) -> int:
    """The size of an axis of `size` elements with `dilation - 1` holes between them."""
    return 0 if size == 0 else (size - 1) * dilation + 1
