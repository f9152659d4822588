"""Tests for fnbrrr.tree_util (pytree flattening, treedefs, tree_map and friends)."""

from __future__ import annotations

import collections
import pickle
from typing import NamedTuple

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fnbrrr import tree_util as tu
from fnbrrr.tree_util import (
    Partial,
    PyTreeDef,
    all_leaves,
    broadcast_prefix,
    register_pytree_node,
    register_pytree_node_class,
    tree_all,
    tree_flatten,
    tree_leaves,
    tree_map,
    tree_reduce,
    tree_structure,
    tree_transpose,
    tree_unflatten,
    treedef_is_leaf,
)

# --------------------------------------------------------------------------------------------
# Helper node types
# --------------------------------------------------------------------------------------------


class Point(NamedTuple):
    x: object
    y: object


class OtherPoint(NamedTuple):
    x: object
    y: object


@register_pytree_node_class
class Box:
    """Custom node with aux data (a tag) and a variable number of children."""

    def __init__(self, tag: str, *items: object) -> None:
        self.tag = tag
        self.items = items

    def tree_flatten(self):
        return self.items, self.tag

    @classmethod
    def tree_unflatten(cls, aux, children):
        return cls(aux, *children)

    def __eq__(self, other):
        return type(other) is Box and self.tag == other.tag and self.items == other.items

    def __repr__(self):
        return f"Box({self.tag!r}, *{self.items!r})"


class Pair:
    def __init__(self, a, b):
        self.a, self.b = a, b

    def __eq__(self, other):
        return type(other) is Pair and (self.a, self.b) == (other.a, other.b)


register_pytree_node(Pair, lambda p: ((p.a, p.b), None), lambda aux, ch: Pair(*ch))


# --------------------------------------------------------------------------------------------
# Hypothesis strategy for nested trees
# --------------------------------------------------------------------------------------------

_leaf = st.one_of(st.integers(-1000, 1000), st.floats(allow_nan=False, allow_infinity=False))
_key = st.text(alphabet="abcdefgh", min_size=1, max_size=3)


def _extend(children):
    return st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=4).map(tuple),
        st.dictionaries(_key, children, max_size=4),
        st.tuples(children, children).map(lambda t: Point(*t)),
        st.tuples(_key, st.lists(children, max_size=3)).map(lambda t: Box(t[0], *t[1])),
        st.tuples(children, children).map(lambda t: Pair(*t)),
    )


trees = st.recursive(st.one_of(_leaf, st.none()), _extend, max_leaves=25)


def _same(a, b) -> bool:
    """Structural equality that also checks exact container types."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return sorted(a) == sorted(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, Box):
        return a.tag == b.tag and _same(a.items, b.items)
    if isinstance(a, Pair):
        return _same(a.a, b.a) and _same(a.b, b.b)
    return a == b


def _reference_leaves(tree) -> list:
    """Independent, obviously-correct leaf order: depth first, dicts by sorted key."""
    if tree is None:
        return []
    if isinstance(tree, dict):
        return [leaf for k in sorted(tree) for leaf in _reference_leaves(tree[k])]
    if isinstance(tree, (list, tuple)):
        return [leaf for c in tree for leaf in _reference_leaves(c)]
    if isinstance(tree, Box):
        return _reference_leaves(list(tree.items))
    if isinstance(tree, Pair):
        return _reference_leaves([tree.a, tree.b])
    return [tree]


# --------------------------------------------------------------------------------------------
# Flatten / unflatten
# --------------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(trees)
def test_roundtrip_hypothesis(tree):
    leaves, td = tree_flatten(tree)
    assert leaves == _reference_leaves(tree)
    assert td.num_leaves == len(leaves)
    rebuilt = tree_unflatten(td, leaves)
    assert _same(rebuilt, tree)
    assert tree_structure(rebuilt) == td
    assert hash(tree_structure(rebuilt)) == hash(td)
    # Replacing leaves keeps the structure and puts the new leaves in order.
    marked = tree_unflatten(td, [f"leaf{i}" for i in range(len(leaves))])
    assert tree_leaves(marked) == [f"leaf{i}" for i in range(len(leaves))]
    assert tree_structure(marked) == td


@settings(max_examples=100, deadline=None)
@given(trees)
def test_children_and_flatten_up_to_hypothesis(tree):
    td = tree_structure(tree)
    assert sum(c.num_leaves for c in td.children()) == td.num_leaves or treedef_is_leaf(td)
    assert td.flatten_up_to(tree) == tree_leaves(tree)
    assert td.num_nodes >= td.num_leaves


def test_leaf_order_depth_first_and_sorted_dict_keys():
    tree = {"b": [1, (2, 3)], "a": {"z": 4, "c": 5}, "c": None}
    assert tree_leaves(tree) == [5, 4, 1, 2, 3]
    leaves, td = tree_flatten(tree)
    out = tree_unflatten(td, leaves)
    assert out == tree
    assert list(out["a"]) == ["c", "z"]  # rebuilt dicts use sorted key order


def test_none_is_a_node_not_a_leaf():
    assert tree_leaves(None) == []
    assert tree_leaves([None, 1, (None,)]) == [1]
    td = tree_structure(None)
    assert td.num_leaves == 0
    assert not treedef_is_leaf(td)
    assert tree_unflatten(td, []) is None
    assert tree_leaves([None, 1], is_leaf=lambda x: x is None) == [None, 1]


def test_leaves_are_not_split():
    arr = np.arange(3)
    assert tree_leaves(["abc", arr, b"x", 1.5]) == ["abc", arr, b"x", 1.5]
    assert treedef_is_leaf(tree_structure(arr))
    assert tree_unflatten(tree_structure("s"), ["t"]) == "t"


def test_namedtuple_kept_as_its_class():
    leaves, td = tree_flatten(Point(1, (2, 3)))
    assert leaves == [1, 2, 3]
    out = tree_unflatten(td, [10, 20, 30])
    assert type(out) is Point and out == Point(10, (20, 30))


def test_ordered_dict_and_defaultdict():
    od = collections.OrderedDict([("b", 1), ("a", 2)])
    leaves, td = tree_flatten(od)
    assert leaves == [1, 2]  # insertion order
    out = tree_unflatten(td, [3, 4])
    assert type(out) is collections.OrderedDict and list(out.items()) == [("b", 3), ("a", 4)]

    dd = collections.defaultdict(list, {"b": 1, "a": 2})
    leaves, td = tree_flatten(dd)
    assert leaves == [2, 1]
    out = tree_unflatten(td, [5, 6])
    assert type(out) is collections.defaultdict and out.default_factory is list
    assert dict(out) == {"a": 5, "b": 6}
    assert td != tree_structure({"b": 1, "a": 2})


def test_is_leaf_stops_recursion():
    tree = [(1, 2), [3, (4, 5)]]
    leaves = tree_leaves(tree, is_leaf=lambda x: isinstance(x, tuple))
    assert leaves == [(1, 2), 3, (4, 5)]
    leaves, td = tree_flatten(tree, is_leaf=lambda x: isinstance(x, tuple))
    assert td.num_leaves == 3
    assert tree_unflatten(td, leaves) == tree


def test_unflatten_wrong_leaf_count():
    td = tree_structure((1, [2, 3]))
    with pytest.raises(ValueError, match=r"tree_unflatten.*expected 3, got 2"):
        tree_unflatten(td, [1, 2])
    with pytest.raises(ValueError, match=r"tree_unflatten.*expected 3, got 4"):
        tree_unflatten(td, [1, 2, 3, 4])


def test_unflatten_accepts_iterables():
    td = tree_structure({"a": 0, "b": [0, 0]})
    assert tree_unflatten(td, iter([1, 2, 3])) == {"a": 1, "b": [2, 3]}
    assert td.unflatten(x for x in "xyz") == {"a": "x", "b": ["y", "z"]}


# --------------------------------------------------------------------------------------------
# PyTreeDef
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "a, b",
    [
        ([1, 2], (1, 2)),  # list vs tuple
        (Point(1, 2), (1, 2)),  # namedtuple vs tuple
        (Point(1, 2), OtherPoint(1, 2)),  # different namedtuple classes
        ({"a": 1, "b": 2}, {"a": 1, "c": 2}),  # dict keys differ
        (Box("x", 1), Box("y", 1)),  # aux data differs
        (Box("x", 1), Box("x", 1, 2)),  # arity differs
        ((1, 2), (1, 2, 3)),  # arity differs
        ((1, None), (1, 2)),  # None vs leaf
        ((1, (2,)), (1, 2)),  # subtree vs leaf
        ([], None),
        ({"a": 1}, collections.OrderedDict(a=1)),
    ],
)
def test_treedef_inequality(a, b):
    ta, tb = tree_structure(a), tree_structure(b)
    assert ta != tb
    assert not ta == tb
    assert len({ta, tb}) == 2


def test_treedef_equality_and_hash():
    t1 = tree_structure({"b": (1, [2.0, None]), "a": Box("k", 3)})
    t2 = tree_structure({"a": Box("k", "x"), "b": ("y", [np.zeros(2), None])})
    assert t1 == t2 and hash(t1) == hash(t2)
    cache = {t1: "hit"}
    assert cache[t2] == "hit"
    assert t1 != "not a treedef"
    assert tree_structure(1) == tree_structure("leaf")
    assert tree_structure([]) != tree_structure(())


def test_treedef_unhashable_aux_still_usable_as_key():
    t1 = tree_structure(Box(["unhashable"], 1))
    t2 = tree_structure(Box(["unhashable"], 2))
    t3 = tree_structure(Box(["other"], 2))
    assert t1 == t2 and hash(t1) == hash(t2)
    assert t1 != t3
    assert {t1: 1}[t2] == 1


def test_treedef_is_immutable_and_not_constructible():
    td = tree_structure((1, 2))
    with pytest.raises(AttributeError):
        td.foo = 1
    with pytest.raises(AttributeError):
        td._node = None
    with pytest.raises(TypeError):
        PyTreeDef()
    assert td == tree_structure((3, 4))


def test_treedef_repr():
    assert repr(tree_structure((1, {"a": 2, "b": None}))) == "PyTreeDef((*, {'a': *, 'b': None}))"
    assert repr(tree_structure(1)) == "PyTreeDef(*)"
    assert repr(tree_structure((1,))) == "PyTreeDef((*,))"
    assert repr(tree_structure([1, [2, 3]])) == "PyTreeDef([*, [*, *]])"
    assert repr(tree_structure(Point(1, 2))) == "PyTreeDef(CustomNode(namedtuple[Point], [*, *]))"
    assert repr(tree_structure(Box("t", 1))) == "PyTreeDef(CustomNode(Box['t'], [*]))"


def test_num_leaves_num_nodes_children():
    td = tree_structure([1, (2, None), {"a": 3}])
    assert td.num_leaves == 3
    assert td.num_nodes == 7  # list, 1, tuple, 2, None, dict, 3
    kids = td.children()
    assert kids == [tree_structure(0), tree_structure((0, None)), tree_structure({"a": 0})]
    assert [k.num_leaves for k in kids] == [1, 1, 1]
    assert tree_structure(5).children() == []
    assert tree_structure(5).num_nodes == 1


def test_treedef_unflatten_method_and_pickle():
    td = tree_structure({"a": [1, 2], "b": Point(3, None)})
    assert td.unflatten([7, 8, 9]) == {"a": [7, 8], "b": Point(9, None)}
    td2 = pickle.loads(pickle.dumps(td))
    assert td2 == td and hash(td2) == hash(td)


def test_compose():
    outer = tree_structure([0, 0])
    inner = tree_structure({"a": 0, "b": None})
    composed = outer.compose(inner)
    assert composed == tree_structure([{"a": 1, "b": None}, {"a": 2, "b": None}])
    assert composed.num_leaves == 2


def test_flatten_up_to():
    td = tree_structure((0, {"a": 0, "b": 0}))
    assert td.flatten_up_to(([1, 2], {"a": (3,), "b": None})) == [[1, 2], (3,), None]
    with pytest.raises(ValueError, match=r"(?s)expected structure.*got structure"):
        td.flatten_up_to((1, {"a": 2}))
    with pytest.raises(ValueError, match=r"tuple"):
        td.flatten_up_to([1, {"a": 2, "b": 3}])
    with pytest.raises(ValueError, match=r"arity"):
        td.flatten_up_to((1, {"a": 2, "b": 3}, 4))
    with pytest.raises(ValueError, match=r"tree\[1\]\['b'\]"):
        tree_structure((0, {"a": 0, "b": (0, 0)})).flatten_up_to((1, {"a": 2, "b": [3, 4]}))
    with pytest.raises(ValueError, match="auxiliary"):
        tree_structure(Box("x", 1)).flatten_up_to(Box("y", 1))
    with pytest.raises(ValueError, match="None"):
        tree_structure((None, 1)).flatten_up_to((1, 1))
    # A leaf treedef matches anything.
    assert tree_structure(0).flatten_up_to({"a": [1]}) == [{"a": [1]}]


# --------------------------------------------------------------------------------------------
# tree_map / tree_reduce / tree_all / transposition
# --------------------------------------------------------------------------------------------


def test_tree_map_single_and_none_stays_none():
    out = tree_map(lambda x: x * 2, {"a": 1, "b": (2, None), "c": [None, Point(3, 4)]})
    assert out == {"a": 2, "b": (4, None), "c": [None, Point(6, 8)]}
    assert type(out["c"][1]) is Point
    calls = []
    tree_map(calls.append, (None, [None]))
    assert calls == []


def test_tree_map_several_trees():
    a = {"x": 1, "y": (2, 3)}
    b = {"x": 10, "y": (20, 30)}
    c = {"x": 100, "y": (200, 300)}
    assert tree_map(lambda p, q, r: p + q + r, a, b, c) == {"x": 111, "y": (222, 333)}


def test_tree_map_rest_may_have_subtrees_at_leaves():
    out = tree_map(lambda axis, arg: (axis, tree_leaves(arg)), (0, 1), ([1, 2], {"k": 3}))
    assert out == ((0, [1, 2]), (1, [3]))


def test_tree_map_custom_nodes():
    out = tree_map(lambda x, y: x - y, Box("t", 5, Pair(1, 2)), Box("t", 1, Pair(1, 1)))
    assert out == Box("t", 4, Pair(0, 1))


@pytest.mark.parametrize(
    "tree, other",
    [
        ((1, 2), (1, 2, 3)),
        ((1, 2), [1, 2]),
        ({"a": 1}, {"b": 1}),
        ((1, None), (1, 2)),
        (Point(1, 2), OtherPoint(1, 2)),
        (Box("x", 1), Box("y", 1)),
    ],
)
def test_tree_map_mismatch_raises(tree, other):
    with pytest.raises(ValueError) as info:
        tree_map(lambda x, y: x, tree, other)
    msg = str(info.value)
    assert "tree_map" in msg
    assert repr(tree_structure(tree)) in msg and repr(tree_structure(other)) in msg


def test_tree_map_is_leaf():
    tree = [(1, 2), (3, 4)]
    out = tree_map(lambda t: sum(t), tree, is_leaf=lambda x: isinstance(x, tuple))
    assert out == [3, 7]


def test_tree_reduce():
    add = lambda a, b: a + b
    assert tree_reduce(add, [1, (2, {"a": 3})]) == 6
    assert tree_reduce(add, [1, (2, {"a": 3})], 100) == 106
    assert tree_reduce(add, [], 5) == 5
    assert tree_reduce(add, (None,), 0) == 0
    assert tree_reduce(lambda acc, x: acc + [x], {"b": 1, "a": 2}, []) == [2, 1]
    with pytest.raises(TypeError):
        tree_reduce(add, [])
    assert tree_reduce(add, [(1, 2), (3, 4)], (), is_leaf=lambda x: isinstance(x, tuple)) == (
        1, 2, 3, 4,
    )


def test_tree_all():
    assert tree_all([True, {"a": 1, "b": None}])
    assert not tree_all([True, {"a": 0}])
    assert tree_all([])


def test_tree_transpose():
    outer = tree_structure([0, 0, 0])
    inner = tree_structure({"a": 0, "b": 0})
    tree = [{"a": 1, "b": 2}, {"a": 3, "b": 4}, {"a": 5, "b": 6}]
    assert tree_transpose(outer, inner, tree) == {"a": [1, 3, 5], "b": [2, 4, 6]}
    with pytest.raises(TypeError):
        tree_transpose(outer, inner, tree[:2])


def test_treedef_is_leaf_and_all_leaves():
    assert treedef_is_leaf(tree_structure(1))
    assert not treedef_is_leaf(tree_structure((1,)))
    assert not treedef_is_leaf(tree_structure(None))
    assert all_leaves([1, "a", np.ones(2)])
    assert not all_leaves([1, [2]])
    assert not all_leaves([None])
    assert all_leaves([None, 1], is_leaf=lambda x: x is None)


# --------------------------------------------------------------------------------------------
# Registration
# --------------------------------------------------------------------------------------------


def test_register_pytree_node():
    class Vec:
        def __init__(self, *xs, scale=1):
            self.xs, self.scale = xs, scale

    register_pytree_node(
        Vec, lambda v: (v.xs, v.scale), lambda scale, xs: Vec(*xs, scale=scale)
    )
    leaves, td = tree_flatten({"v": Vec(1, (2, 3), scale=7)})
    assert leaves == [1, 2, 3]
    out = tree_unflatten(td, [4, 5, 6])
    assert isinstance(out["v"], Vec) and out["v"].xs == (4, (5, 6)) and out["v"].scale == 7
    assert td != tree_structure({"v": Vec(1, (2, 3), scale=8)})
    with pytest.raises(ValueError, match="Duplicate"):
        register_pytree_node(Vec, lambda v: ((), None), lambda a, c: Vec())


def test_register_after_type_seen_as_leaf():
    class Late:
        def __init__(self, v):
            self.v = v

    assert tree_leaves([Late(1)])[0].v == 1  # a leaf before registration
    register_pytree_node(Late, lambda o: ((o.v,), None), lambda _, ch: Late(*ch))
    assert tree_leaves([Late(1)]) == [1]


def test_register_builtin_twice_raises():
    for t in (tuple, list, dict, type(None)):
        with pytest.raises(ValueError):
            register_pytree_node(t, lambda x: ((), None), lambda a, c: None)


def test_register_pytree_node_class():
    @register_pytree_node_class
    class Scaled:
        def __init__(self, value, factor):
            self.value, self.factor = value, factor

        def tree_flatten(self):
            return (self.value,), self.factor

        @classmethod
        def tree_unflatten(cls, aux, children):
            return cls(children[0], aux)

    assert isinstance(Scaled, type) and Scaled.__name__ == "Scaled"
    out = tree_map(lambda x: x + 1, [Scaled(1, 10), Scaled({"a": 2}, 20)])
    assert (out[0].value, out[0].factor) == (2, 10)
    assert (out[1].value, out[1].factor) == ({"a": 3}, 20)
    with pytest.raises(ValueError):
        register_pytree_node_class(Scaled)


def test_subclass_of_registered_type_is_a_leaf():
    class MyList(list):
        pass

    assert tree_leaves([MyList([1, 2])]) == [MyList([1, 2])]


def test_partial():
    p = Partial(lambda a, b, c=0: a * 100 + b * 10 + c, 1, c=3)
    leaves, td = tree_flatten(p)
    assert leaves == [1, 3]
    q = tree_unflatten(td, [2, 4])
    assert isinstance(q, Partial) and q(5) == 254
    assert tree_map(lambda x: x + 1, p)(0) == 204
    assert tree_structure(p) == tree_structure(Partial(p.func, "x", c="y"))
    assert tree_structure(p) != tree_structure(Partial(print, 1, c=3))


# --------------------------------------------------------------------------------------------
# broadcast_prefix
# --------------------------------------------------------------------------------------------


def test_broadcast_prefix_int():
    assert broadcast_prefix(0, ([1, 2], {"a": 3, "b": None})) == [0, 0, 0]
    assert broadcast_prefix(1, 5) == [1]
    assert broadcast_prefix(0, ()) == []


def test_broadcast_prefix_tuple_with_none():
    full = (np.ones(3), [np.ones(2), np.ones(2)], 7.0)
    assert broadcast_prefix((0, None, 1), full) == [0, None, None, 1]
    assert broadcast_prefix((None, [0, 1], None), full) == [None, 0, 1, None]
    assert broadcast_prefix(None, full) == [None] * 4


def test_broadcast_prefix_dict():
    full = {"w": [1, 2], "b": 3, "c": None}
    assert broadcast_prefix({"w": 0, "b": 1, "c": 2}, full) == [1, 0, 0]  # sorted: b, c, w
    assert broadcast_prefix({"w": [None, 1], "b": 0, "c": None}, full) == [0, None, 1]


def test_broadcast_prefix_is_leaf():
    full = ([1, 2], [3])
    out = broadcast_prefix(([0, 1], [2]), full, is_leaf=lambda x: isinstance(x, list))
    assert out == [[0, 1], [0, 1], [2]]


def test_broadcast_prefix_mismatch():
    with pytest.raises(ValueError) as info:
        broadcast_prefix((0, 0), (1, 2, 3))
    msg = str(info.value)
    assert "broadcast_prefix" in msg
    assert "(*, *)" in msg and "(*, *, *)" in msg
    with pytest.raises(ValueError):
        broadcast_prefix({"a": 0}, {"b": 1})
    with pytest.raises(ValueError):
        broadcast_prefix([0, 0], (1, 2))


# --------------------------------------------------------------------------------------------
# Internals worth pinning down
# --------------------------------------------------------------------------------------------


def test_canonical_encoding_with_and_without_is_leaf():
    tree = {"a": (1, 2), "b": [3, None], "c": Box("t", 4)}
    plain = tree_structure(tree)
    via_is_leaf = tree_structure(tree, is_leaf=lambda x: False)
    assert plain == via_is_leaf and hash(plain) == hash(via_is_leaf)
    assert tu._child_nodes(plain._node)  # non-empty


def test_flatten_speed_smoke():
    import timeit

    t = tuple(range(10))
    n = 2000
    per_call = min(timeit.repeat(lambda: tree_flatten(t), number=n, repeat=5)) / n
    assert per_call < 20e-6  # generous bound; the point is to catch accidental blowups


def test_leaf_paths_align_with_leaves_for_every_node_kind():
    from collections import OrderedDict, defaultdict, namedtuple

    from fnbrrr.tree_util import leaf_paths, tree_leaves

    Point = namedtuple("Point", "x y")
    counts = defaultdict(int, {"z": 1.0, "a": 2.0})
    tree = {"p": Point(1.0, [2.0, None, 3.0]), "o": OrderedDict(b=4.0, a=5.0), "d": counts,
            "t": (6.0,)}
    paths = leaf_paths(tree, "args")
    assert len(paths) == len(tree_leaves(tree))
    assert paths == ["args['d']['a']", "args['d']['z']", "args['o']['b']", "args['o']['a']",
                     "args['p'].x", "args['p'].y[0]", "args['p'].y[2]", "args['t'][0]"]
    assert leaf_paths(7.0) == [""] and leaf_paths(None) == []
