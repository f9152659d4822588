"""The primitive families: each module defines its primitives with all of their rules.

Importing this package registers every primitive in `fnbrrr.core.primitives`.
"""

from fnbrrr._prims import (  # noqa: F401
    bits,
    control_flow,
    convolution,
    elementwise,
    indexing,
    linalg,
    linalg_decomp,
    reductions,
    shape,
    sorting,
)
