"""`fnbrrr.tree`: short aliases of `fnbrrr.tree_util` (as `jax.tree`)."""

from fnbrrr.tree_util import tree_all as all
from fnbrrr.tree_util import tree_flatten as flatten
from fnbrrr.tree_util import tree_flatten_with_path as flatten_with_path
from fnbrrr.tree_util import tree_leaves as leaves
from fnbrrr.tree_util import tree_leaves_with_path as leaves_with_path
from fnbrrr.tree_util import tree_map as map
from fnbrrr.tree_util import tree_map_with_path as map_with_path
from fnbrrr.tree_util import tree_reduce as reduce
from fnbrrr.tree_util import tree_structure as structure
from fnbrrr.tree_util import tree_transpose as transpose
from fnbrrr.tree_util import tree_unflatten as unflatten

__all__ = ["all", "flatten", "flatten_with_path", "leaves", "leaves_with_path", "map",
           "map_with_path", "reduce", "structure", "transpose", "unflatten"]
