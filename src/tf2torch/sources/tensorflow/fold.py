"""Numpy evaluators of the ops whose inputs are all static: shape arithmetic and the
weight-only subgraphs an export leaves (BatchNorm's `gamma · rsqrt(var + eps)`, a bias
reshaped, a normalization layer's `sqrt(variance)`).

Values may be partial: an object array with None where a size is only known at run time
(the batch). An op that cannot compute with a None (a product with the batch size) makes
its result unknown, never wrong.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from tf2torch.sources.tensorflow.nodes import TfNode
from tf2torch.sources.tensorflow.slicing import as_index, strided_slice_items
from tf2torch.sources.tensorflow.values import DTYPES

Evaluator = Callable[[TfNode, list[np.ndarray]], list[np.ndarray]]


def _one(fn: Callable[..., np.ndarray]) -> Evaluator:
    def evaluate(node: TfNode, xs: list[np.ndarray]) -> list[np.ndarray]:
        return [fn(*xs)]
    return evaluate


def _with_node(fn: Callable[..., np.ndarray]) -> Evaluator:
    def evaluate(node: TfNode, xs: list[np.ndarray]) -> list[np.ndarray]:
        return [fn(node, *xs)]
    return evaluate


def _ints(x: np.ndarray) -> list[int]:
    return [int(v) for v in np.asarray(x).reshape(-1)]


def _axes(x: np.ndarray, rank: int) -> tuple[int, ...]:
    return tuple(sorted({a % max(rank, 1) for a in _ints(x)}))


def _reduce(fn: Callable) -> Evaluator:
    def evaluate(node: TfNode, xs: list[np.ndarray]) -> list[np.ndarray]:
        x, axes = xs
        keep = bool(node.attr("keep_dims", False))
        return [np.asarray(fn(x, axis=_axes(axes, x.ndim), keepdims=keep))]
    return evaluate


def _reshape(node: TfNode, x: np.ndarray, shape: np.ndarray) -> np.ndarray:
    return x.reshape(_ints(shape))


def _squeeze(node: TfNode, x: np.ndarray) -> np.ndarray:
    dims = node.attr("squeeze_dims") or []
    return np.squeeze(x, tuple(d % x.ndim for d in dims)) if dims else np.squeeze(x)


def _concat(node: TfNode, *xs: np.ndarray) -> np.ndarray:
    *parts, axis = xs
    return np.concatenate(parts, axis=int(axis))


def _pack(node: TfNode, *xs: np.ndarray) -> np.ndarray:
    return np.stack(xs, axis=node.attr("axis", 0))


def _unpack(node: TfNode, xs: list[np.ndarray]) -> list[np.ndarray]:
    x = xs[0]
    return list(np.moveaxis(x, node.attr("axis", 0), 0))


def _strided_slice(node: TfNode, x: np.ndarray, b: np.ndarray, e: np.ndarray,
                   s: np.ndarray) -> np.ndarray:
    items = strided_slice_items(x.ndim, _ints(b), _ints(e), _ints(s), node.attrs)
    return np.asarray(x[as_index(items)])


def _slice(node: TfNode, x: np.ndarray, begin: np.ndarray, size: np.ndarray) -> np.ndarray:
    index = tuple(slice(b, None if s == -1 else b + s) for b, s in zip(_ints(begin),
                                                                       _ints(size), strict=True))
    return np.asarray(x[index])


def _gather(node: TfNode, params: np.ndarray, indices: np.ndarray,
            axis: np.ndarray | None = None) -> np.ndarray:
    a = 0 if axis is None else int(axis)
    return np.take(params, np.asarray(indices, np.int64), axis=a)


def _fill(node: TfNode, dims: np.ndarray, value: np.ndarray) -> np.ndarray:
    return np.full(_ints(dims), value, dtype=value.dtype)


def _range(node: TfNode, start: np.ndarray, limit: np.ndarray, delta: np.ndarray) -> np.ndarray:
    return np.arange(start, limit, delta, dtype=np.result_type(start, limit, delta))


def _cast(node: TfNode, x: np.ndarray) -> np.ndarray:
    if x.dtype == object:
        return x
    return x.astype(DTYPES.get(node.attr("DstT", 1), np.float32))


def _shape(node: TfNode, x: np.ndarray) -> np.ndarray:
    return np.asarray(x.shape, np.int32)


def _split(node: TfNode, xs: list[np.ndarray]) -> list[np.ndarray]:
    if node.op == "Split":
        axis, x = xs
        return np.split(x, node.attr("num_split"), axis=int(axis))
    x, sizes, axis = xs
    cuts = np.cumsum(_ints(sizes))[:-1]
    return np.split(x, cuts, axis=int(axis))


def _pad(node: TfNode, x: np.ndarray, pads: np.ndarray, value: Any = 0) -> np.ndarray:
    return np.pad(x, np.asarray(pads, np.int64).reshape(-1, 2), constant_values=value)


def _select(cond: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.where(cond, a, b)


def _rsqrt(x: np.ndarray) -> np.ndarray:
    return (1 / np.sqrt(x)).astype(x.dtype)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return (1 / (1 + np.exp(-x))).astype(x.dtype)


def _argmax(node: TfNode, x: np.ndarray, axis: np.ndarray) -> np.ndarray:
    fn = np.argmax if node.op == "ArgMax" else np.argmin
    return fn(x, axis=int(axis)).astype(DTYPES.get(node.attr("output_type", 9), np.int64))


def _div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if np.issubdtype(np.asarray(a).dtype, np.integer):
        return np.trunc(a / b).astype(a.dtype)  # C++ integer division truncates
    return np.divide(a, b).astype(np.result_type(a, b))


def _real_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.divide(a, b).astype(np.result_type(a, b))


EVALUATORS: dict[str, Evaluator] = {
    "Identity": _one(lambda x: x),
    "Snapshot": _one(lambda x: x),
    "StopGradient": _one(lambda x: x),
    "Neg": _one(np.negative),
    "Abs": _one(np.abs),
    "Sqrt": _one(np.sqrt),
    "Rsqrt": _one(_rsqrt),
    "Square": _one(np.square),
    "Reciprocal": _one(lambda x: (1 / x).astype(x.dtype)),
    "Exp": _one(np.exp),
    "Log": _one(np.log),
    "Floor": _one(np.floor),
    "Ceil": _one(np.ceil),
    "Round": _one(np.round),
    "Sign": _one(np.sign),
    "Sigmoid": _one(_sigmoid),
    "Tanh": _one(np.tanh),
    "Relu": _one(lambda x: np.maximum(x, 0).astype(x.dtype)),
    "LogicalNot": _one(np.logical_not),
    "Add": _one(np.add),
    "AddV2": _one(np.add),
    "Sub": _one(np.subtract),
    "Mul": _one(np.multiply),
    "RealDiv": _one(_real_div),
    "Div": _one(_div),
    "FloorDiv": _one(np.floor_divide),
    "FloorMod": _one(np.mod),
    "Maximum": _one(np.maximum),
    "Minimum": _one(np.minimum),
    "Pow": _one(np.power),
    "SquaredDifference": _one(lambda a, b: np.square(a - b)),
    "Equal": _one(np.equal),
    "NotEqual": _one(np.not_equal),
    "Less": _one(np.less),
    "LessEqual": _one(np.less_equal),
    "Greater": _one(np.greater),
    "GreaterEqual": _one(np.greater_equal),
    "LogicalAnd": _one(np.logical_and),
    "LogicalOr": _one(np.logical_or),
    "Select": _one(_select),
    "SelectV2": _one(_select),
    "AddN": _one(lambda *xs: sum(xs[1:], xs[0])),
    "Cast": _with_node(_cast),
    "Reshape": _with_node(_reshape),
    "Squeeze": _with_node(_squeeze),
    "ExpandDims": _one(lambda x, axis: np.expand_dims(x, int(axis))),
    "Transpose": _one(lambda x, perm: np.transpose(x, _ints(perm))),
    "ConcatV2": _with_node(_concat),
    "Pack": _with_node(_pack),
    "Unpack": _unpack,
    "StridedSlice": _with_node(_strided_slice),
    "Slice": _with_node(_slice),
    "GatherV2": _with_node(_gather),
    "Tile": _one(lambda x, m: np.tile(x, _ints(m))),
    "Fill": _with_node(_fill),
    "Range": _with_node(_range),
    "ZerosLike": _one(np.zeros_like),
    "OnesLike": _one(np.ones_like),
    "BroadcastTo": _one(lambda x, shape: np.broadcast_to(x, _ints(shape)).copy()),
    "Prod": _reduce(np.prod),
    "Sum": _reduce(np.sum),
    "Max": _reduce(np.max),
    "Min": _reduce(np.min),
    "Mean": _reduce(np.mean),
    "All": _reduce(np.all),
    "Any": _reduce(np.any),
    "ArgMax": _with_node(_argmax),
    "ArgMin": _with_node(_argmax),
    "Shape": _with_node(_shape),
    "Size": _one(lambda x: np.asarray(x.size, np.int32)),
    "Rank": _one(lambda x: np.asarray(x.ndim, np.int32)),
    "Split": _split,
    "SplitV": _split,
    "Pad": _with_node(_pad),
    "PadV2": _with_node(_pad),
}


def evaluate(node: TfNode, values: list[np.ndarray]) -> list[np.ndarray] | None:
    """The node's outputs from its input values; None where a value is only partly known
    and the op needs the unknown part."""
    try:
        with np.errstate(all="ignore"):
            return [np.asarray(v) for v in EVALUATORS[node.op](node, values)]
    except TypeError:  # arithmetic on a None (run-time size)
        return None


def is_partial(value: Any) -> bool:
    return isinstance(value, np.ndarray) and value.dtype == object and any(
        v is None for v in value.reshape(-1))
