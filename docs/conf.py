"""Sphinx configuration for the fnbrrr documentation.

Builds offline: Markdown through myst-parser, the furo theme (installed locally, no remote
assets), and the API reference from the docstrings through autodoc and napoleon (Google-style
`Args:` / `Returns:` / `Example:` sections). No intersphinx: nothing is fetched.

    make docs        # or: .venv/bin/sphinx-build -W -b html docs docs/_build/html
"""

from __future__ import annotations

import os
import re
import sys

# The package is importable from a source checkout without installing it.
sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

project = "fnbrrr"
author = "the fnbrrr authors"
copyright = "the fnbrrr authors"  # noqa: A001  (Sphinx's name)

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
]

source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

# Markdown: ```{directive} fences, definition lists, header anchors for cross-links. No math
# extension: MathJax would load from a CDN when a page is viewed, and the docs are offline.
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# Docstrings are Google style; `single backticks` in them mean code, as they do in Markdown.
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
napoleon_custom_sections = [("Args of the constructor", "params_style")]
default_role = "code"

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_format = "short"
autodoc_default_options = {"members": True}

html_theme = "furo"
html_title = "fnbrrr"
pygments_style = "friendly"
pygments_dark_style = "monokai"


# --------------------------------------------------------------------------------------------
# Docstrings: fnbrrr writes them in Markdown habits (`code`, |x|, `Lambda`s, trailing `_`
# names, an indented example after a colon). Three of those mean something else in
# reStructuredText, so they are translated before Sphinx parses the docstring. The library's
# source stays as it is; nothing here changes what a docstring says.
# --------------------------------------------------------------------------------------------

_CODE_SPAN = re.compile(r"(``.*?``|`[^`]*`)")


def _outside_code(line: str, fix) -> str:
    """Apply `fix` to the parts of `line` that are not inline code."""
    parts = _CODE_SPAN.split(line)
    return "".join(p if i % 2 else fix(p) for i, p in enumerate(parts))


def _escape_prose(text: str) -> str:
    # |x| is an absolute value, never an RST substitution; `word_ ` is a name, never a link.
    text = text.replace("|", r"\|")
    return re.sub(r"(?<=\w)_(?=[\s.,;:)]|$)", r"\_", text)


def _plural_after_code(line: str) -> str:
    # `Lambda`s: RST needs a separator after inline markup; an escaped space is invisible.
    return _CODE_SPAN.sub(
        lambda m: m.group(0) + "\\ " if line[m.end() : m.end() + 1].isalnum() else m.group(0), line
    )


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _literal_blocks(lines: list[str]) -> list[str]:
    """`Semantics:` + blank line + an indented block: the block is code (`::` in RST)."""
    out = list(lines)
    for i in range(len(out) - 2):
        line = out[i].rstrip()
        if (
            line.endswith(":")
            and not line.endswith("::")
            and not line.lstrip().startswith((":", ".."))
            and not out[i + 1].strip()
            and out[i + 2].strip()
            and _indent(out[i + 2]) > _indent(out[i])
        ):
            out[i] = line + ":"
    return out


def _translate_docstring(app, what, name, obj, options, lines: list[str]) -> None:
    if not name.startswith("fnbrrr"):
        return
    in_literal = False
    literal_indent = 0
    translated = []
    for line in _literal_blocks(lines):
        stripped = line.strip()
        if in_literal and stripped and _indent(line) <= literal_indent:
            in_literal = False
        if not in_literal and not stripped.startswith(">>>") and not stripped.startswith("..."):
            line = _plural_after_code(_outside_code(line, _escape_prose))
        if stripped.endswith("::") and not in_literal:
            in_literal, literal_indent = True, _indent(line)
        translated.append(line)
    lines[:] = translated


def _skip_foreign(app, what, name, obj, skip, options):
    """The API reference documents fnbrrr: NumPy types re-exported by fnbrrr.numpy are not."""
    module = getattr(obj, "__module__", None)
    if what == "module" and isinstance(module, str) and not module.startswith("fnbrrr"):
        return True
    return None


def setup(app):
    # After napoleon (priority 500) has turned Google sections into field lists.
    app.connect("autodoc-process-docstring", _translate_docstring, priority=600)
    app.connect("autodoc-skip-member", _skip_foreign)
