"""Pytree utilities: flatten nested containers into leaves plus a structure, and rebuild them.

A *pytree* is a nested structure of containers (``tuple``, ``list``, ``dict``, namedtuples,
``collections.OrderedDict``, ``collections.defaultdict``, ``None`` and user-registered classes)
whose non-container contents are *leaves* (arrays, scalars, strings, ...). The semantics follow
``jax.tree_util``:

* Flattening is depth-first, left to right; ``dict`` children are ordered by sorted key,
  ``OrderedDict`` children by insertion order.
* ``None`` is a node with no children, not a leaf.
* Registration is by exact type: subclasses of registered types are leaves unless registered
  themselves (namedtuples are detected structurally).

Implementation notes
--------------------
A :class:`PyTreeDef` wraps a *node*, a compact nested tuple:

* ``_LEAF`` (``None``) is a leaf;
* ``(kind, data, n)`` with an ``int`` ``n`` is a container whose ``n`` children are all leaves;
* ``(kind, data, child_node, ...)`` is any other container (at least one child is not a leaf).

The encoding is canonical (one structure has exactly one node), so equality and hashing are
plain tuple equality and hashing, done in C.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
from collections.abc import Callable, Hashable, Iterable
from itertools import islice
from typing import Any

__all__ = [
    "DictKey",
    "FlattenedIndexKey",
    "GetAttrKey",
    "Partial",
    "PyTreeDef",
    "SequenceKey",
    "keystr",
    "register_pytree_with_keys",
    "register_pytree_with_keys_class",
    "tree_flatten_with_path",
    "tree_leaves_with_path",
    "tree_map_with_path",
    "all_leaves",
    "broadcast_prefix",
    "register_pytree_node",
    "register_pytree_node_class",
    "tree_all",
    "tree_flatten",
    "tree_leaves",
    "tree_map",
    "tree_reduce",
    "tree_structure",
    "tree_transpose",
    "tree_unflatten",
    "treedef_is_leaf",
]

PyTree = Any
IsLeaf = Callable[[Any], bool] | None

# --------------------------------------------------------------------------------------------
# Node kinds and the type -> kind table
# --------------------------------------------------------------------------------------------

_K_LEAF = 0
_K_TUPLE = 1
_K_LIST = 2
_K_DICT = 3
_K_NONE = 4
_K_NAMEDTUPLE = 5
_K_ODICT = 6
_K_DDICT = 7
_K_CUSTOM = 8

_LEAF = None  # node of a leaf; a plain singleton so that identity checks and hashing are cheap
_NONE_NODE = (_K_NONE, None, 0)

# Exact type -> kind. Doubles as a cache: unknown types are classified once (leaf, namedtuple
# or custom) and stored here. ``register_pytree_node`` overwrites the entry for its type.
_kinds: dict[type, int] = {
    tuple: _K_TUPLE,
    list: _K_LIST,
    dict: _K_DICT,
    type(None): _K_NONE,
    collections.OrderedDict: _K_ODICT,
    collections.defaultdict: _K_DDICT,
    int: _K_LEAF,
    float: _K_LEAF,
    bool: _K_LEAF,
    complex: _K_LEAF,
    str: _K_LEAF,
    bytes: _K_LEAF,
}
_BUILTIN_NODE_TYPES = frozenset(t for t, k in _kinds.items() if k != _K_LEAF)

# Registered custom types -> (flatten_func, unflatten_func).
_registry: dict[type, tuple[Callable[[Any], tuple[Iterable[Any], Any]], Callable[..., Any]]] = {}


def _classify(t: type) -> int:
    """Kind of a type missing from ``_kinds``; caches the answer."""
    if t in _registry:
        kind = _K_CUSTOM
    elif issubclass(t, tuple) and hasattr(t, "_fields"):
        kind = _K_NAMEDTUPLE
    else:
        kind = _K_LEAF
    _kinds[t] = kind
    return kind


def _kind_of(x: Any) -> int:
    kind = _kinds.get(type(x))
    return _classify(type(x)) if kind is None else kind


def _sorted_keys(d: dict) -> tuple:
    try:
        return tuple(sorted(d))
    except TypeError:  # keys of mutually unorderable types: fall back to a deterministic order
        return tuple(sorted(d, key=lambda k: (type(k).__module__, type(k).__qualname__, repr(k))))


def _node_parts(x: Any, kind: int) -> tuple[Any, Any]:
    """``(data, children)`` of a non-leaf, non-None node ``x`` of the given kind."""
    if kind == _K_TUPLE or kind == _K_LIST:
        return None, x
    if kind == _K_DICT:
        keys = _sorted_keys(x)
        return keys, [x[k] for k in keys]
    if kind == _K_NAMEDTUPLE:
        return type(x), x
    if kind == _K_ODICT:
        return tuple(x), list(x.values())
    if kind == _K_DDICT:
        keys = _sorted_keys(x)
        return (x.default_factory, keys), [x[k] for k in keys]
    t = type(x)
    children, aux = _registry[t][0](x)
    if type(children) is not list and type(children) is not tuple:
        children = tuple(children)
    return (t, aux), children


# --------------------------------------------------------------------------------------------
# Flattening
# --------------------------------------------------------------------------------------------


def _flatten(x: Any, leaves: list, _get=_kinds.get) -> Any:
    """Append the leaves of ``x`` to ``leaves`` and return its node (no ``is_leaf``)."""
    t = type(x)
    kind = _get(t)
    if kind is None:
        kind = _classify(t)
    if kind == _K_LEAF:
        leaves.append(x)
        return _LEAF
    if kind == _K_TUPLE or kind == _K_LIST:
        data = None
        children = x
    elif kind == _K_DICT:
        try:
            data = tuple(sorted(x))
        except TypeError:
            data = _sorted_keys(x)
        children = [x[k] for k in data]
    elif kind == _K_NONE:
        return _NONE_NODE
    else:
        data, children = _node_parts(x, kind)
    # Fast path: every child is a leaf (checked per distinct child type).
    for ct in set(map(type, children)):
        k = _get(ct)
        if k is None:
            k = _classify(ct)
        if k != _K_LEAF:
            break
    else:
        n = len(leaves)
        leaves.extend(children)
        return (kind, data, len(leaves) - n)
    node = [kind, data]
    append = node.append
    for c in children:
        if _get(type(c)) == _K_LEAF:
            leaves.append(c)
            append(_LEAF)
        else:
            append(_flatten(c, leaves))
    return tuple(node)


def _flatten_is_leaf(x: Any, leaves: list, is_leaf: Callable[[Any], bool]) -> Any:
    """Like :func:`_flatten` but asks ``is_leaf`` first at every node."""
    if is_leaf(x):
        leaves.append(x)
        return _LEAF
    kind = _kind_of(x)
    if kind == _K_LEAF:
        leaves.append(x)
        return _LEAF
    if kind == _K_NONE:
        return _NONE_NODE
    data, children = _node_parts(x, kind)
    nodes = [_flatten_is_leaf(c, leaves, is_leaf) for c in children]
    return _make_node(kind, data, nodes)


def _make_node(kind: int, data: Any, child_nodes: list) -> Any:
    """Canonical node from child nodes (compact form when all children are leaves)."""
    if child_nodes.count(_LEAF) == len(child_nodes):
        return (kind, data, len(child_nodes))
    return (kind, data, *child_nodes)


def _child_nodes(node: Any) -> tuple:
    if node is _LEAF:
        return ()
    if len(node) == 3 and type(node[2]) is int:
        return (_LEAF,) * node[2]
    return node[2:]


def _count_leaves(node: Any) -> int:
    if node is _LEAF:
        return 1
    if len(node) == 3 and type(node[2]) is int:
        return node[2]
    return sum(_count_leaves(c) for c in node[2:])


def _count_nodes(node: Any) -> int:
    if node is _LEAF:
        return 1
    if len(node) == 3 and type(node[2]) is int:
        return 1 + node[2]
    return 1 + sum(_count_nodes(c) for c in node[2:])


# --------------------------------------------------------------------------------------------
# Unflattening
# --------------------------------------------------------------------------------------------


def _construct(kind: int, data: Any, children: Any) -> Any:
    if kind == _K_TUPLE:
        return tuple(children)
    if kind == _K_LIST:
        return list(children)
    if kind == _K_DICT:
        return dict(zip(data, children))
    if kind == _K_NONE:
        return None
    if kind == _K_NAMEDTUPLE:
        return data(*children)
    if kind == _K_ODICT:
        return collections.OrderedDict(zip(data, children))
    if kind == _K_DDICT:
        return collections.defaultdict(data[0], zip(data[1], children))
    cls, aux = data
    return _registry[cls][1](aux, tuple(children))


def _build(node: Any, it: Any) -> Any:
    """Rebuild the subtree ``node`` taking leaves from the iterator ``it``."""
    kind = node[0]
    if len(node) == 3 and type(node[2]) is int:
        children = islice(it, node[2])
        if kind == _K_TUPLE:
            return tuple(children)
        if kind == _K_LIST:
            return list(children)
    else:
        children = [next(it) if c is _LEAF else _build(c, it) for c in node[2:]]
    return _construct(kind, node[1], children)


# --------------------------------------------------------------------------------------------
# Flatten-up-to (matching a tree against a structure)
# --------------------------------------------------------------------------------------------


class _Mismatch(Exception):
    """Internal: a tree does not match a treedef; ``path`` is filled in while unwinding."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self.path: list[str] = []


_KIND_NAMES = {
    _K_TUPLE: "tuple",
    _K_LIST: "list",
    _K_DICT: "dict",
    _K_NONE: "None",
    _K_NAMEDTUPLE: "namedtuple",
    _K_ODICT: "OrderedDict",
    _K_DDICT: "defaultdict",
}


def _node_type_name(node: Any) -> str:
    kind = node[0]
    if kind == _K_NAMEDTUPLE:
        return node[1].__qualname__
    if kind == _K_CUSTOM:
        return node[1][0].__qualname__
    return _KIND_NAMES[kind]


def _up_to(node: Any, x: Any, out: list) -> None:
    """Append to ``out`` the subtrees of ``x`` sitting at the leaves of ``node``."""
    kind = node[0]
    xkind = _kind_of(x)
    if xkind != kind:
        raise _Mismatch(f"expected {_node_type_name(node)}, got {type(x).__qualname__} {x!r:.60}")
    data = node[1]
    if kind == _K_NONE:
        return
    if kind == _K_TUPLE or kind == _K_LIST:
        children = x
        labels = None
    elif kind == _K_NAMEDTUPLE:
        if type(x) is not data:
            raise _Mismatch(f"expected namedtuple {data.__qualname__}, got {type(x).__qualname__}")
        children = x
        labels = data._fields
    elif kind == _K_DICT or kind == _K_DDICT:
        keys = data if kind == _K_DICT else data[1]
        xkeys = _sorted_keys(x)
        if xkeys != keys:
            raise _Mismatch(f"dict keys differ: expected {list(keys)}, got {list(xkeys)}")
        children = [x[k] for k in keys]
        labels = keys
    elif kind == _K_ODICT:
        xkeys = tuple(x)
        if xkeys != data:
            raise _Mismatch(f"OrderedDict keys differ: expected {list(data)}, got {list(xkeys)}")
        children = list(x.values())
        labels = data
    else:
        cls, aux = data
        if type(x) is not cls:
            raise _Mismatch(f"expected {cls.__qualname__}, got {type(x).__qualname__}")
        (xaux, children) = _node_parts(x, kind)
        if xaux[1] != aux:
            raise _Mismatch(
                f"{cls.__qualname__} auxiliary data differs: expected {aux!r}, got {xaux[1]!r}"
            )
        labels = None
    child_nodes = _child_nodes(node)
    if len(children) != len(child_nodes):
        raise _Mismatch(
            f"{_node_type_name(node)} arity differs: expected {len(child_nodes)} children, "
            f"got {len(children)}"
        )
    if len(node) == 3 and type(node[2]) is int:
        out.extend(children)
        return
    for i, (cn, c) in enumerate(zip(child_nodes, children)):
        if cn is _LEAF:
            out.append(c)
            continue
        try:
            _up_to(cn, c, out)
        except _Mismatch as e:
            if labels is None:
                e.path.append(f"[{i}]")
            elif kind == _K_NAMEDTUPLE:
                e.path.append(f".{labels[i]}")
            else:
                e.path.append(f"[{labels[i]!r}]")
            raise


# --------------------------------------------------------------------------------------------
# Repr
# --------------------------------------------------------------------------------------------


def _repr_node(node: Any) -> str:
    if node is _LEAF:
        return "*"
    kind, data = node[0], node[1]
    if kind == _K_NONE:
        return "None"
    ch = [_repr_node(c) for c in _child_nodes(node)]
    if kind == _K_TUPLE:
        return "(" + ", ".join(ch) + ("," if len(ch) == 1 else "") + ")"
    if kind == _K_LIST:
        return "[" + ", ".join(ch) + "]"
    if kind == _K_DICT:
        return "{" + ", ".join(f"{k!r}: {c}" for k, c in zip(data, ch)) + "}"
    if kind == _K_ODICT:
        return "OrderedDict({" + ", ".join(f"{k!r}: {c}" for k, c in zip(data, ch)) + "})"
    if kind == _K_DDICT:
        items = ", ".join(f"{k!r}: {c}" for k, c in zip(data[1], ch))
        factory = getattr(data[0], "__qualname__", repr(data[0]))
        return f"defaultdict({factory}, {{{items}}})"
    if kind == _K_NAMEDTUPLE:
        return f"CustomNode(namedtuple[{data.__qualname__}], [{', '.join(ch)}])"
    cls, aux = data
    return f"CustomNode({cls.__qualname__}[{aux!r}], [{', '.join(ch)}])"


# --------------------------------------------------------------------------------------------
# PyTreeDef
# --------------------------------------------------------------------------------------------


class PyTreeDef:
    """The structure of a pytree: containers, their types and aux data, and leaf positions.

    Instances are immutable and hashable, so they can be used as cache keys. Two treedefs are
    equal when they describe the same container types (``list`` vs ``tuple`` vs each namedtuple
    class), the same dict keys, the same arities and equal custom aux data. Build them with
    :func:`tree_structure` or :func:`tree_flatten`, not directly.

    >>> td = tree_structure((1, {"a": 2, "b": None}))
    >>> td
    PyTreeDef((*, {'a': *, 'b': None}))
    >>> td.num_leaves
    2
    >>> td.unflatten([10, 20])
    (10, {'a': 20, 'b': None})
    """

    __slots__ = ("_node", "_num_leaves", "_hash")

    _node: Any
    _num_leaves: int
    _hash: int | None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("PyTreeDef cannot be constructed directly; use tree_structure()")

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("PyTreeDef is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("PyTreeDef is immutable")

    @property
    def num_leaves(self) -> int:
        """Number of leaves in the structure.

        >>> tree_structure([1, (2, None)]).num_leaves
        2
        """
        return self._num_leaves

    @property
    def num_nodes(self) -> int:
        """Number of nodes, counting leaves, ``None`` and containers.

        >>> tree_structure([1, (2, None)]).num_nodes
        5
        """
        return _count_nodes(self._node)

    def children(self) -> list[PyTreeDef]:
        """Treedefs of the immediate children of the root (empty for a leaf or ``None``).

        >>> tree_structure((1, [2, 3])).children()
        [PyTreeDef(*), PyTreeDef([*, *])]
        """
        return [_new_treedef(c, _count_leaves(c)) for c in _child_nodes(self._node)]

    def unflatten(self, leaves: Iterable[Any]) -> PyTree:
        """Build a pytree of this structure from ``leaves``; same as :func:`tree_unflatten`.

        >>> tree_structure([1, 2]).unflatten("ab")
        ['a', 'b']
        """
        return tree_unflatten(self, leaves)

    def flatten_up_to(self, tree: PyTree) -> list[Any]:
        """Flatten ``tree`` down to this structure's leaves and return those subtrees.

        ``tree`` must contain this structure as a prefix: the same containers down to this
        treedef's leaves, each of which may match an arbitrary subtree.

        Args:
          tree: the pytree to split.

        Returns:
          A list of ``num_leaves`` subtrees of ``tree``, in leaf order.

        Raises:
          ValueError: if ``tree`` does not match; the message names both structures.

        >>> tree_structure((1, 2)).flatten_up_to(([1, 2], {"a": 3}))
        [[1, 2], {'a': 3}]
        """
        return self._flatten_up_to(tree, "flatten_up_to")

    def _flatten_up_to(self, tree: PyTree, context: str) -> list[Any]:
        node = self._node
        if node is _LEAF:
            return [tree]
        out: list[Any] = []
        try:
            _up_to(node, tree, out)
        except _Mismatch as e:
            where = "tree" + "".join(reversed(e.path))
            raise ValueError(
                f"{context}: tree structure mismatch at {where}: {e.detail}.\n"
                f"  expected structure: {self!r}\n"
                f"  got structure:      {tree_structure(tree)!r}"
            ) from None
        return out

    def compose(self, inner: PyTreeDef) -> PyTreeDef:
        """Treedef obtained by replacing every leaf of ``self`` with ``inner``.

        >>> tree_structure((1, 2)).compose(tree_structure([1, 2]))
        PyTreeDef(([*, *], [*, *]))
        """
        return _new_treedef(
            _compose(self._node, inner._node), self._num_leaves * inner._num_leaves
        )

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if not isinstance(other, PyTreeDef):
            return NotImplemented
        return self._num_leaves == other._num_leaves and self._node == other._node

    def __ne__(self, other: object) -> bool:
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    def __hash__(self) -> int:
        h = self._hash
        if h is None:
            try:
                h = hash(self._node)
            except TypeError:  # unhashable custom aux data: hash the shape only
                h = hash((self._num_leaves, _shape_only(self._node)))
            _set_hash(self, h)
        return h

    def __repr__(self) -> str:
        return f"PyTreeDef({_repr_node(self._node)})"

    def __reduce__(self) -> tuple:
        return (_new_treedef, (self._node, self._num_leaves))


_set_node = PyTreeDef._node.__set__  # type: ignore[attr-defined]
_set_num_leaves = PyTreeDef._num_leaves.__set__  # type: ignore[attr-defined]
_set_hash = PyTreeDef._hash.__set__  # type: ignore[attr-defined]
_object_new = object.__new__


def _new_treedef(node: Any, num_leaves: int) -> PyTreeDef:
    td = _object_new(PyTreeDef)
    _set_node(td, node)
    _set_num_leaves(td, num_leaves)
    _set_hash(td, None)
    return td


_LEAF_TREEDEF = _new_treedef(_LEAF, 1)


def _shape_only(node: Any) -> Any:
    if node is _LEAF:
        return None
    return (node[0], tuple(_shape_only(c) for c in _child_nodes(node)))


def _compose(node: Any, inner: Any) -> Any:
    if node is _LEAF:
        return inner
    if node[0] == _K_NONE:
        return node
    return _make_node(node[0], node[1], [_compose(c, inner) for c in _child_nodes(node)])


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def tree_flatten(tree: PyTree, is_leaf: IsLeaf = None) -> tuple[list[Any], PyTreeDef]:
    """Flatten a pytree into its leaves and its structure.

    Args:
      tree: the pytree to flatten.
      is_leaf: optional predicate; a subtree for which it returns true is kept whole as a leaf
        (it is called on every node, ``None`` included).

    Returns:
      ``(leaves, treedef)``: the leaves in depth-first, left-to-right order (dicts by sorted
      key) and a :class:`PyTreeDef` that :func:`tree_unflatten` can rebuild the tree from.

    >>> tree_flatten({"b": (1, 2), "a": [3, None]})
    ([3, 1, 2], PyTreeDef({'a': [*, None], 'b': (*, *)}))
    """
    leaves: list[Any] = []
    if is_leaf is None:
        node = _flatten(tree, leaves)
    else:
        node = _flatten_is_leaf(tree, leaves, is_leaf)
    if node is _LEAF:
        return leaves, _LEAF_TREEDEF
    td = _object_new(PyTreeDef)
    _set_node(td, node)
    _set_num_leaves(td, len(leaves))
    _set_hash(td, None)
    return leaves, td


def tree_unflatten(treedef: PyTreeDef, leaves: Iterable[Any]) -> PyTree:
    """Rebuild a pytree with structure ``treedef`` from ``leaves``.

    Args:
      treedef: the structure, e.g. from :func:`tree_flatten`.
      leaves: exactly ``treedef.num_leaves`` leaves, in flattening order.

    Returns:
      The rebuilt pytree.

    Raises:
      ValueError: if the number of leaves does not match ``treedef.num_leaves``.

    >>> leaves, td = tree_flatten([1, (2, 3)])
    >>> tree_unflatten(td, [x * 10 for x in leaves])
    [10, (20, 30)]
    """
    if type(leaves) is not list and type(leaves) is not tuple:
        leaves = list(leaves)
    if len(leaves) != treedef._num_leaves:
        raise ValueError(
            f"tree_unflatten: too {'many' if len(leaves) > treedef._num_leaves else 'few'} "
            f"leaves for {treedef!r}: expected {treedef._num_leaves}, got {len(leaves)}"
        )
    node = treedef._node
    if node is _LEAF:
        return leaves[0]
    return _build(node, iter(leaves))


def tree_leaves(tree: PyTree, is_leaf: IsLeaf = None) -> list[Any]:
    """The leaves of a pytree, in flattening order.

    Args:
      tree: the pytree.
      is_leaf: optional predicate marking subtrees to treat as leaves.

    Returns:
      A list of leaves (``None`` nodes contribute nothing).

    >>> tree_leaves([1, {"x": 2, "y": None}, (3,)])
    [1, 2, 3]
    """
    leaves: list[Any] = []
    if is_leaf is None:
        _flatten(tree, leaves)
    else:
        _flatten_is_leaf(tree, leaves, is_leaf)
    return leaves


def tree_structure(tree: PyTree, is_leaf: IsLeaf = None) -> PyTreeDef:
    """The :class:`PyTreeDef` of a pytree.

    Args:
      tree: the pytree.
      is_leaf: optional predicate marking subtrees to treat as leaves.

    Returns:
      The tree's structure.

    >>> tree_structure((1, [2, None]))
    PyTreeDef((*, [*, None]))
    """
    return tree_flatten(tree, is_leaf)[1]


def tree_map(f: Callable[..., Any], tree: PyTree, *rest: PyTree, is_leaf: IsLeaf = None) -> PyTree:
    """Apply ``f`` leafwise, returning a pytree of the same structure as ``tree``.

    Args:
      f: function of ``1 + len(rest)`` arguments.
      tree: the pytree whose structure the result takes; ``None`` nodes stay ``None``.
      *rest: further pytrees, each with ``tree``'s structure up to ``tree``'s leaves (a leaf
        of ``tree`` may correspond to a whole subtree, which is then passed to ``f`` as is).
      is_leaf: optional predicate marking subtrees of ``tree`` to treat as leaves.

    Returns:
      The pytree ``f(x, *xs)`` for each leaf ``x`` of ``tree`` and matching ``xs`` of ``rest``.

    Raises:
      ValueError: if a tree in ``rest`` does not match; the message names both structures.

    >>> tree_map(lambda x, y: x + y, {"a": 1, "b": (2, None)}, {"a": 10, "b": (20, None)})
    {'a': 11, 'b': (22, None)}
    """
    leaves, treedef = tree_flatten(tree, is_leaf)
    if not rest:
        return treedef.unflatten([f(x) for x in leaves])
    all_leaves = [leaves]
    for r in rest:
        all_leaves.append(treedef._flatten_up_to(r, "tree_map"))
    return treedef.unflatten([f(*xs) for xs in zip(*all_leaves)])


class _NoInitializer:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<no initializer>"


_NO_INITIALIZER: Any = _NoInitializer()


def tree_reduce(
    function: Callable[[Any, Any], Any],
    tree: PyTree,
    initializer: Any = _NO_INITIALIZER,
    is_leaf: IsLeaf = None,
) -> Any:
    """Fold ``function`` over the leaves of ``tree`` (``functools.reduce`` on the leaves).

    Args:
      function: binary function ``(accumulated, leaf) -> accumulated``.
      tree: the pytree.
      initializer: optional starting value; without it the first leaf is used and an empty
        tree raises ``TypeError``.
      is_leaf: optional predicate marking subtrees to treat as leaves.

    Returns:
      The reduced value.

    >>> tree_reduce(lambda a, b: a + b, [1, (2, 3)])
    6
    >>> tree_reduce(lambda a, b: a + b, [], 100)
    100
    """
    leaves = tree_leaves(tree, is_leaf)
    if initializer is _NO_INITIALIZER:
        return functools.reduce(function, leaves)
    return functools.reduce(function, leaves, initializer)


def tree_all(tree: PyTree, *, is_leaf: IsLeaf = None) -> bool:
    """Whether every leaf of ``tree`` is truthy (``True`` for a tree without leaves).

    >>> tree_all([True, (1, None)])
    True
    >>> tree_all({"a": 0})
    False
    """
    return all(tree_leaves(tree, is_leaf))


def tree_transpose(
    outer_treedef: PyTreeDef, inner_treedef: PyTreeDef, pytree_to_transpose: PyTree
) -> PyTree:
    """Turn a tree of structure ``outer`` of trees ``inner`` into an ``inner`` of ``outer``s.

    Args:
      outer_treedef: structure of the outer tree.
      inner_treedef: structure shared by every tree at the leaves of the outer tree.
      pytree_to_transpose: a pytree of structure ``outer_treedef.compose(inner_treedef)``.

    Returns:
      The transposed pytree, of structure ``inner_treedef.compose(outer_treedef)``.

    Raises:
      TypeError: if ``pytree_to_transpose`` does not have the composed structure.

    >>> outer, inner = tree_structure([0, 0]), tree_structure((0, 0))
    >>> tree_transpose(outer, inner, [(1, 2), (3, 4)])
    ([1, 3], [2, 4])
    """
    flat, treedef = tree_flatten(pytree_to_transpose)
    expected = outer_treedef.compose(inner_treedef)
    if treedef != expected:
        raise TypeError(f"tree_transpose: structure mismatch:\n{treedef}\n != \n{expected}")
    inner_size = inner_treedef.num_leaves
    outer_size = outer_treedef.num_leaves
    rows = [flat[i * inner_size:(i + 1) * inner_size] for i in range(outer_size)]
    columns = [outer_treedef.unflatten(col) for col in zip(*rows)] if rows else [
        outer_treedef.unflatten([]) for _ in range(inner_size)
    ]
    return inner_treedef.unflatten(columns)


def treedef_is_leaf(treedef: PyTreeDef) -> bool:
    """Whether ``treedef`` is the structure of a single leaf.

    >>> treedef_is_leaf(tree_structure(1.0)), treedef_is_leaf(tree_structure((1.0,)))
    (True, False)
    """
    return treedef._node is _LEAF


def all_leaves(iterable: Iterable[Any], is_leaf: IsLeaf = None) -> bool:
    """Whether every element of ``iterable`` is a leaf (``None`` is not a leaf).

    Args:
      iterable: the candidate leaves.
      is_leaf: optional predicate; elements for which it returns true count as leaves.

    Returns:
      ``True`` if no element is a pytree node.

    >>> all_leaves([1, "a", 2.0]), all_leaves([1, (2,)]), all_leaves([None])
    (True, False, False)
    """
    if is_leaf is None:
        return all(_kind_of(x) == _K_LEAF for x in iterable)
    return all(is_leaf(x) or _kind_of(x) == _K_LEAF for x in iterable)


def broadcast_prefix(prefix_tree: PyTree, full_tree: PyTree, is_leaf: IsLeaf = None) -> list[Any]:
    """For each leaf of ``full_tree``, the leaf of ``prefix_tree`` covering it.

    ``prefix_tree`` must have ``full_tree``'s structure down to its own leaves; each prefix leaf
    is repeated once per leaf of the subtree of ``full_tree`` it covers. ``None`` entries in
    ``prefix_tree`` are leaves here (vmap's "not mapped"). This is how ``in_axes`` is matched
    against the arguments of a vmapped function.

    Args:
      prefix_tree: the prefix, e.g. ``0`` or ``(0, None)`` or ``{"w": 1, "b": None}``.
      full_tree: the full pytree; its leaves are counted with default flattening.
      is_leaf: optional extra predicate marking subtrees of ``prefix_tree`` as leaves.

    Returns:
      A list with one entry per leaf of ``full_tree``.

    Raises:
      ValueError: if ``prefix_tree`` is not a prefix of ``full_tree``; the message names both
        structures.

    >>> broadcast_prefix((0, None), ([1, 2], 3))
    [0, 0, None]
    """
    if is_leaf is None:
        prefix_is_leaf: Callable[[Any], bool] = _is_none
    else:
        prefix_is_leaf = lambda x: x is None or is_leaf(x)
    prefix_leaves, prefix_def = tree_flatten(prefix_tree, prefix_is_leaf)
    subtrees = prefix_def._flatten_up_to(full_tree, "broadcast_prefix (prefix vs full tree)")
    result: list[Any] = []
    for p, sub in zip(prefix_leaves, subtrees):
        n = 1 if _kinds.get(type(sub)) == _K_LEAF else len(tree_leaves(sub))
        result.extend([p] * n)
    return result


def _is_none(x: Any) -> bool:
    return x is None


def leaf_paths(tree: PyTree, root: str = "") -> list[str]:
    """A readable path to each leaf of ``tree``, in flattening order; for error messages.

    Namedtuple fields read ``.name``, dict keys ``['key']``, and the children of sequences and
    registered classes ``[i]``.

    Args:
      tree: any pytree.
      root: the text every path starts with, e.g. the argument's name.

    Returns:
      One string per leaf, aligned with ``tree_leaves(tree)``.

    >>> leaf_paths({"b": [1.0, 2.0], "a": 3.0}, "params")
    ["params['a']", "params['b'][0]", "params['b'][1]"]
    """
    paths: list[str] = []
    _collect_leaf_paths(tree, root, paths)
    return paths


def _collect_leaf_paths(x: Any, path: str, out: list[str]) -> None:
    kind = _kind_of(x)
    if kind == _K_LEAF:
        out.append(path)
    elif kind != _K_NONE:
        data, children = _node_parts(x, kind)
        for label, child in zip(_child_labels(x, kind, data, len(children)), children):
            _collect_leaf_paths(child, path + label, out)


def _child_labels(x: Any, kind: int, data: Any, n: int) -> list[str]:
    if kind == _K_NAMEDTUPLE:
        return [f".{field}" for field in x._fields]
    if kind == _K_DICT or kind == _K_ODICT:
        return [f"[{key!r}]" for key in data]
    if kind == _K_DDICT:
        return [f"[{key!r}]" for key in data[1]]
    return [f"[{i}]" for i in range(n)]


# --------------------------------------------------------------------------------------------
# Registration
# --------------------------------------------------------------------------------------------


def register_pytree_node(
    nodetype: type,
    flatten_func: Callable[[Any], tuple[Iterable[Any], Hashable]],
    unflatten_func: Callable[[Any, tuple], Any],
) -> None:
    """Register a type as a pytree node (by exact type; subclasses are not covered).

    Args:
      nodetype: the class to register.
      flatten_func: ``obj -> (children, aux_data)``; ``aux_data`` should be hashable and
        comparable with ``==``, as it becomes part of the treedef.
      unflatten_func: ``(aux_data, children) -> obj``; ``children`` is a tuple.

    Raises:
      ValueError: if ``nodetype`` is already registered (built-in containers included).

    >>> class Pair:
    ...     def __init__(self, a, b):
    ...         self.a, self.b = a, b
    >>> register_pytree_node(Pair, lambda p: ((p.a, p.b), None), lambda _, ch: Pair(*ch))
    >>> tree_leaves([Pair(1, 2), 3])
    [1, 2, 3]
    """
    if nodetype in _registry or nodetype in _BUILTIN_NODE_TYPES:
        raise ValueError(f"Duplicate pytree node registration for type {nodetype!r}")
    _registry[nodetype] = (flatten_func, unflatten_func)
    _kinds[nodetype] = _K_CUSTOM


def register_pytree_node_class(cls: type) -> type:
    """Class decorator registering ``cls`` via its ``tree_flatten``/``tree_unflatten`` methods.

    ``obj.tree_flatten()`` must return ``(children, aux_data)`` and the classmethod
    ``cls.tree_unflatten(aux_data, children)`` must rebuild the object.

    Args:
      cls: the class to register.

    Returns:
      ``cls`` itself.

    >>> @register_pytree_node_class
    ... class Box:
    ...     def __init__(self, x):
    ...         self.x = x
    ...     def tree_flatten(self):
    ...         return (self.x,), None
    ...     @classmethod
    ...     def tree_unflatten(cls, aux, children):
    ...         return cls(*children)
    >>> tree_map(lambda v: v + 1, Box(1)).x
    2
    """
    register_pytree_node(cls, _obj_tree_flatten, cls.tree_unflatten)  # type: ignore[attr-defined]
    return cls


def _obj_tree_flatten(obj: Any) -> tuple[Iterable[Any], Any]:
    return obj.tree_flatten()


# --------------------------------------------------------------------------------------------
# Partial
# --------------------------------------------------------------------------------------------


class Partial(functools.partial):
    """A ``functools.partial`` that is a pytree: its bound arguments are its children.

    The wrapped function is the treedef's aux data, so a ``Partial`` can be passed through
    transformed functions with its arguments traced.

    >>> p = Partial(lambda a, b, c=0: a + b + c, 1, c=3)
    >>> tree_leaves(p)
    [1, 3]
    >>> tree_map(lambda x: x * 10, p)(2)
    42
    """


def _partial_flatten(p: Partial) -> tuple[tuple, Any]:
    return (p.args, p.keywords), p.func


def _partial_unflatten(func: Any, children: tuple) -> Partial:
    args, keywords = children
    return Partial(func, *args, **keywords)


register_pytree_node(Partial, _partial_flatten, _partial_unflatten)


# --------------------------------------------------------------------------------------------
# Key paths: where a leaf sits, as a tuple of keys (JAX's `*_with_path` functions)
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SequenceKey:
    """The key of a tuple or list child: its index (prints as ``[0]``)."""

    idx: int

    def __str__(self) -> str:
        return f"[{self.idx!r}]"


@dataclasses.dataclass(frozen=True)
class DictKey:
    """The key of a dict child (prints as ``['a']``)."""

    key: Hashable

    def __str__(self) -> str:
        return f"[{self.key!r}]"


@dataclasses.dataclass(frozen=True)
class GetAttrKey:
    """The key of a namedtuple field, or of an attribute (prints as ``.x``)."""

    name: str

    def __str__(self) -> str:
        return f".{self.name}"


@dataclasses.dataclass(frozen=True)
class FlattenedIndexKey:
    """The key of a child of a class registered without keys: its position among the children
    its flatten function returns (prints as ``[<flat index 0>]``)."""

    key: int

    def __str__(self) -> str:
        return f"[<flat index {self.key}>]"


KeyEntry = SequenceKey | DictKey | GetAttrKey | FlattenedIndexKey | Any
KeyPath = tuple[KeyEntry, ...]

# Classes registered with keys -> their `flatten_with_keys`.
_key_flatteners: dict[type, Callable[[Any], tuple[Iterable[tuple[Any, Any]], Any]]] = {}


def _child_keys(x: Any, kind: int, data: Any, n: int) -> list:
    if kind == _K_TUPLE or kind == _K_LIST:
        return [SequenceKey(i) for i in range(n)]
    if kind == _K_DICT or kind == _K_ODICT:
        return [DictKey(k) for k in data]
    if kind == _K_DDICT:
        return [DictKey(k) for k in data[1]]
    if kind == _K_NAMEDTUPLE:
        return [GetAttrKey(f) for f in type(x)._fields]
    keyed = _key_flatteners.get(type(x))
    if keyed is not None:
        return [k for k, _ in keyed(x)[0]]
    return [FlattenedIndexKey(i) for i in range(n)]


def _collect_with_path(x: Any, path: KeyPath, out: list, is_leaf: IsLeaf) -> None:
    if is_leaf is not None and is_leaf(x):
        out.append((path, x))
        return
    kind = _kind_of(x)
    if kind == _K_LEAF:
        out.append((path, x))
        return
    if kind == _K_NONE:
        return
    data, children = _node_parts(x, kind)
    for key, child in zip(_child_keys(x, kind, data, len(children)), children):
        _collect_with_path(child, (*path, key), out, is_leaf)


def tree_leaves_with_path(tree: PyTree, is_leaf: IsLeaf = None) -> list[tuple[KeyPath, Any]]:
    """The leaves of ``tree``, each with its key path (the keys leading from the root to it).

    >>> tree_leaves_with_path({"a": [1, 2]})
    [((DictKey(key='a'), SequenceKey(idx=0)), 1), ((DictKey(key='a'), SequenceKey(idx=1)), 2)]
    """
    out: list = []
    _collect_with_path(tree, (), out, is_leaf)
    return out


def tree_flatten_with_path(
    tree: PyTree, is_leaf: IsLeaf = None
) -> tuple[list[tuple[KeyPath, Any]], PyTreeDef]:
    """``(tree_leaves_with_path(tree), tree_structure(tree))``.

    >>> paths, treedef = tree_flatten_with_path((1, {"b": 2}))
    >>> [keystr(p) for p, _ in paths], treedef.num_leaves
    (['[0]', "[1]['b']"], 2)
    """
    return tree_leaves_with_path(tree, is_leaf), tree_structure(tree, is_leaf)


def tree_map_with_path(
    f: Callable[..., Any], tree: PyTree, *rest: PyTree, is_leaf: IsLeaf = None
) -> PyTree:
    """Like :func:`tree_map`, but ``f`` also receives each leaf's key path first.

    >>> tree_map_with_path(lambda path, x: keystr(path) + "=" + str(x), {"a": (1, 2)})
    {'a': ("['a'][0]=1", "['a'][1]=2")}
    """
    with_path, treedef = tree_flatten_with_path(tree, is_leaf)
    all_leaves = [[x for _, x in with_path]]
    for r in rest:
        all_leaves.append(treedef._flatten_up_to(r, "tree_map_with_path"))
    paths = [p for p, _ in with_path]
    return treedef.unflatten([f(p, *xs) for p, *xs in zip(paths, *all_leaves)])


def _simple_key(key: Any) -> str:
    for attr in ("idx", "key", "name"):
        if hasattr(key, attr):
            return str(getattr(key, attr))
    return str(key)


def keystr(keys: KeyPath, *, simple: bool = False, separator: str = "") -> str:
    """A key path as a string: ``['a'][0].x``, or with ``simple=True`` the bare keys joined
    by ``separator`` (``a/0/x`` with ``separator="/"``).

    >>> keystr((DictKey("a"), SequenceKey(0)))
    "['a'][0]"
    >>> keystr((DictKey("a"), SequenceKey(0)), simple=True, separator="/")
    'a/0'
    """
    if simple:
        return separator.join(_simple_key(k) for k in keys)
    return separator.join(str(k) for k in keys)


def register_pytree_with_keys(
    nodetype: type,
    flatten_with_keys: Callable[[Any], tuple[Iterable[tuple[Any, Any]], Hashable]],
    unflatten_func: Callable[[Any, tuple], Any],
    flatten_func: Callable[[Any], tuple[Iterable[Any], Hashable]] | None = None,
) -> None:
    """Register a pytree node whose children have keys (used by the ``*_with_path`` functions).

    Args:
      nodetype: the class to register.
      flatten_with_keys: ``obj -> (((key, child), ...), aux_data)``.
      unflatten_func: ``(aux_data, children) -> obj``.
      flatten_func: ``obj -> (children, aux_data)``; by default, derived from
        ``flatten_with_keys``.

    >>> class Point2:
    ...     def __init__(self, x, y):
    ...         self.x, self.y = x, y
    >>> register_pytree_with_keys(
    ...     Point2, lambda p: (((GetAttrKey("x"), p.x), (GetAttrKey("y"), p.y)), None),
    ...     lambda _, ch: Point2(*ch))
    >>> [keystr(path) for path, _ in tree_leaves_with_path(Point2(1, 2))]
    ['.x', '.y']
    """
    if flatten_func is None:

        def flatten_func(obj):
            keyed, aux = flatten_with_keys(obj)
            return [child for _, child in keyed], aux

    register_pytree_node(nodetype, flatten_func, unflatten_func)
    _key_flatteners[nodetype] = flatten_with_keys


def register_pytree_with_keys_class(cls: type) -> type:
    """Class decorator: register ``cls`` via ``obj.tree_flatten_with_keys()`` (and
    ``obj.tree_flatten()`` if it has one) and ``cls.tree_unflatten(aux_data, children)``.

    Returns:
      ``cls`` itself.
    """
    flatten = _obj_tree_flatten if hasattr(cls, "tree_flatten") else None
    register_pytree_with_keys(cls, lambda obj: obj.tree_flatten_with_keys(),
                              cls.tree_unflatten, flatten)  # type: ignore[attr-defined]
    return cls
