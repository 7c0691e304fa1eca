"""One pass over the inlined nodes: what each tensor is, and which nodes remain to convert.

Identity-like ops (and `ReadVariableOp` of a variable) become aliases of their input;
constants and variables become values (variables lazily, read from the bundle only when a
converter asks); every op whose inputs are all values is folded (`fold.py`), shapes come
from `shapes.py`, so a `Shape` feeding a `Reshape` becomes a literal shape with the batch
left open. What is left are the nodes computing on the model's inputs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from tf2torch.errors import SourceError
from tf2torch.sources.tensorflow.fold import EVALUATORS, evaluate, is_partial
from tf2torch.sources.tensorflow.nodes import Ref, TfNode, topological
from tf2torch.sources.tensorflow.shapes import Facts, Shape, infer
from tf2torch.sources.tensorflow.values import DTYPES, base_type, tensor_value

# Ops that pass their input(s) through unchanged at inference.
PASS_THROUGH = {"Identity", "IdentityN", "Snapshot", "StopGradient", "PreventGradient",
                "CheckNumerics", "EnsureShape", "ReadVariableOp", "PlaceholderWithDefault",
                "DebugIdentity", "DebugIdentityV2"}
# Ops that only change a tensor's shape: a weight passed through them keeps its name when
# it ends with the shape it started with (Keras 3 reshapes a bias and squeezes it back).
_RESHAPES = {"Reshape", "Squeeze", "ExpandDims"}
_EAGER_LIMIT = 4096  # constants up to this many elements are decoded at once
_MEMO_LIMIT = 1 << 20  # derived weights up to this many elements are computed once
_BOOL, _INT32, _INT64 = 10, 3, 9


@dataclass
class Lazy:
    """A weight: read (and, if derived, computed) only when asked for."""

    name: str
    load: Callable[[], np.ndarray]
    shape: tuple[int, ...]
    dtype: np.dtype
    origin: Lazy | None = None  # the weight this one reshapes, if only reshaped


@dataclass
class Simplified:
    nodes: list[TfNode]            # the nodes left to convert, producers first
    facts: dict[Ref, Facts]        # every tensor's shape, dtype, value
    alias: dict[Ref, Ref]          # pass-through outputs → what they pass


def simplify(nodes: Mapping[str, TfNode], outputs: list[Ref], inputs: Mapping[str, Facts],
             variables: Mapping[str, Lazy], source: str) -> Simplified:
    """Walk what `outputs` depend on; `inputs` are the graph's fed tensors (node name →
    facts), `variables` the variable nodes' weights."""
    facts: dict[Ref, Facts] = {}
    alias: dict[Ref, Ref] = {}
    kept: list[TfNode] = []

    def get(ref: Ref) -> Facts:
        while ref in alias:
            ref = alias[ref]
        return facts.get(ref) or Facts(None)

    for node in topological(nodes, [name for name, _ in outputs]):
        if node.name in inputs:
            facts[(node.name, 0)] = inputs[node.name]
        elif node.name in variables:
            lazy = variables[node.name]
            facts[(node.name, 0)] = Facts(lazy.shape, 1, lazy)
        elif node.op in PASS_THROUGH:
            for i, ref in enumerate(node.inputs if node.op == "IdentityN" else node.inputs[:1]):
                alias[(node.name, i)] = ref
        elif node.op == "Const":
            facts[(node.name, 0)] = _constant(node, source)
        elif node.op in ("VariableV2", "VarHandleOp", "Variable"):
            raise SourceError(f"{source}: variable {node.name!r} has no value in the "
                              "checkpoint")
        else:
            ins = [get(ref) for ref in node.inputs]
            outs = _fold(node, ins) if _foldable(node, ins) else None
            if outs is None:
                kept.append(node)
                shapes = infer(node, ins)
                dtypes = out_dtypes(node, ins, len(shapes))
                outs = [Facts(s, d) for s, d in zip(shapes, dtypes, strict=False)]
            for i, f in enumerate(outs):
                facts[(node.name, i)] = f
    resolved = {ref: get(ref) for ref in facts}
    return Simplified(kept, {**resolved, **{r: get(r) for r in alias}}, alias)


def _constant(node: TfNode, source: str) -> Facts:
    proto = node.attr("value")
    dtype = base_type(node.attr("dtype", 1))
    shape = tuple(int(d.size) for d in proto.tensor_shape.dim)
    try:
        if int(np.prod(shape, dtype=np.int64)) <= _EAGER_LIMIT or dtype not in (1, 2, 19, 14):
            return Facts(shape, dtype, tensor_value(proto))
    except ValueError as err:
        raise SourceError(f"{source}: constant {node.name}: {err}") from None
    np_dtype = DTYPES[dtype]
    return Facts(shape, dtype, Lazy(node.name, lambda: tensor_value(proto), shape, np_dtype))


def _foldable(node: TfNode, ins: list[Facts]) -> bool:
    if node.op in ("Shape", "Size", "Rank"):
        return ins[0].shape is not None
    return node.op in EVALUATORS and all(f.value is not None for f in ins) and bool(ins)


def _fold(node: TfNode, ins: list[Facts]) -> list[Facts] | None:
    if node.op in ("Shape", "Size", "Rank"):
        return [_shape_fact(node, ins[0].shape)]
    shapes = infer(node, ins)
    dtypes = out_dtypes(node, ins, len(shapes))
    if any(isinstance(f.value, Lazy) for f in ins):
        return _fold_lazy(node, ins, shapes, dtypes)
    values = evaluate(node, [f.value for f in ins])
    if values is None:  # needs a run-time size: unknown, but shaped
        if any(s is None or None in s for s in shapes) or node.op in _RESHAPES:
            return None
        return [Facts(s, d, np.full(s, None, object)) for s, d in zip(shapes, dtypes,
                                                                        strict=False)]
    return [Facts(tuple(v.shape), d, _settle(v)) for v, d in zip(values, dtypes, strict=False)]


def _settle(value: np.ndarray) -> np.ndarray:
    """An object array without unknowns becomes an int64 array again."""
    if value.dtype == object and not is_partial(value) and value.size and all(
            isinstance(v, int | np.integer) for v in value.reshape(-1)):
        return value.astype(np.int64)
    return value


def _shape_fact(node: TfNode, shape: Shape) -> Facts:
    assert shape is not None
    if node.op == "Rank":
        return Facts((), _INT32, np.asarray(len(shape), np.int32))
    if node.op == "Size":
        known = None not in shape
        return Facts((), _INT32, np.asarray(int(np.prod(shape)), np.int32) if known
                     else np.asarray(None, object))
    value = np.asarray(shape, object if None in shape else np.int32)
    return Facts((len(shape),), node.attr("out_type", _INT32), value)


def _fold_lazy(node: TfNode, ins: list[Facts], shapes: list[Shape],
               dtypes: list[int]) -> list[Facts] | None:
    if any(is_partial(f.value) for f in ins):
        return None
    loaders = [f.value.load if isinstance(f.value, Lazy) else (lambda v=f.value: v) for f in ins]

    memo: list[list[np.ndarray]] = []

    def compute() -> list[np.ndarray]:
        """Once: a derived weight is often read by two consumers (BatchNorm's scale)."""
        if memo:
            return memo[0]
        result = evaluate(node, [load() for load in loaders])
        assert result is not None
        if sum(v.size for v in result) <= _MEMO_LIMIT:
            memo.append(result)
        return result

    if any(s is None or None in s for s in shapes):  # no rule: compute now to learn it
        values = compute()
        shapes = [tuple(v.shape) for v in values]
        outs = [(lambda v=v: v) for v in values]
    else:
        outs = [(lambda i=i: compute()[i]) for i in range(len(shapes))]
    root = ins[0].value
    facts = []
    for i, (shape, dtype, load) in enumerate(zip(shapes, dtypes, outs, strict=False)):
        name = node.name if len(shapes) == 1 else f"{node.name}:{i}"
        origin = None
        if node.op in _RESHAPES and isinstance(root, Lazy):
            origin = root.origin or root
            if tuple(shape) == origin.shape:
                facts.append(Facts(tuple(shape), dtype, origin))
                continue
        np_dtype = DTYPES.get(dtype, np.dtype(np.float32))
        facts.append(Facts(tuple(shape), dtype, Lazy(name, load, tuple(shape), np_dtype,
                                                     origin)))
    return facts


_DTYPE_ATTRS = ("T", "dtype", "DstT", "out_type", "output_type", "Tout")
_BOOL_OPS = {"Equal", "NotEqual", "Less", "LessEqual", "Greater", "GreaterEqual",
             "LogicalAnd", "LogicalOr", "LogicalNot", "IsNan", "IsInf", "IsFinite", "All",
             "Any"}


def out_dtypes(node: TfNode, ins: list[Facts], count: int) -> list[int]:
    """The TF dtype of each output."""
    if node.op in _BOOL_OPS:
        return [_BOOL] * count
    if node.op in ("Shape", "Size", "Rank"):
        return [node.attr("out_type", _INT32)] * count
    if node.op in ("ArgMax", "ArgMin"):
        return [node.attr("output_type", _INT64)] * count
    if node.op == "TopKV2":
        return [node.attr("T", 1), _INT32]
    if node.op in ("Select", "SelectV2"):
        return [ins[1].dtype if len(ins) > 1 else 1] * count
    if node.op == "Cast":
        return [node.attr("DstT", 1)] * count
    for key in _DTYPE_ATTRS:
        value = node.attr(key)
        if isinstance(value, int):
            return [base_type(value)] * count
    return [ins[0].dtype if ins else 1] * count
