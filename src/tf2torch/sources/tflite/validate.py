"""A parsed `.tflite` checked as a graph before anything is built from it or run on it.

The flatbuffer parse (`schema.py`) only guarantees that every read stays inside the file.
This checks what the tables *say*: indices in range, operators in an order where every input
exists before it is read (no self-loops or cycles), inputs and outputs present, enums TFLite
defines, strides and dilations of sane size, quantization parameters finite and of the right
length, constants no larger than their buffers, sparse layouts well formed, and declared
shapes within the budgets of `util/budgets.py`. The first problem found is one `SourceError`
naming the file, the subgraph and the operator or tensor. TFLite's own interpreter does
far fewer checks and crashes on several of these, so a file goes to it only after this.
"""

from __future__ import annotations

import math
from itertools import pairwise
from pathlib import Path

from tf2torch.errors import SourceError
from tf2torch.sources.tflite.opcodes import ACTIVATIONS, NUMPY_DTYPES, PADDING
from tf2torch.sources.tflite.schema import TflModel, TflOperator, TflSubgraph, TflTensor
from tf2torch.util import budgets

# Options that are sizes of a window, step or dilation: 1 ≤ value ≤ this.
_WINDOW_OPTIONS = ("stride_w", "stride_h", "dilation_w_factor", "dilation_h_factor",
                   "filter_width", "filter_height", "block_size")
_SUBGRAPH_OPTIONS = ("cond_subgraph_index", "body_subgraph_index")
_MAX_WINDOW = 1 << 16
_MAX_RANK = 16
# Enum-valued options: the values TFLite defines.
_ENUMS = {"padding": PADDING, "fused_activation_function": ACTIVATIONS}
_ITEMSIZE = {name: int(dt.lstrip("<")[-1]) for name, dt in NUMPY_DTYPES.items() if dt != "?"}
_ITEMSIZE["BOOL"] = 1
_NO_DATA_TYPES = {"STRING", "RESOURCE", "VARIANT", "INT4"}  # size not itemsize × count


def validate_model(model: TflModel, path: Path) -> None:
    """Raise `SourceError` on the first thing in `model` that is not a well-formed graph."""
    if not model.subgraphs[0].inputs:
        raise SourceError(f"{path}: subgraph 0 has no inputs: nothing to feed the model")
    weight_bytes = 0
    for k, sub in enumerate(model.subgraphs):
        where = f"{path}: subgraph {k}" + (f" ({sub.name})" if sub.name else "")
        weight_bytes += _check_tensors(model, sub, where)
        _check_endpoints(sub, where)
        _check_operators(model, sub, where)
    budgets.check(budgets.WEIGHT_BYTES, weight_bytes, str(path))


def _check_tensors(model: TflModel, sub: TflSubgraph, where: str) -> int:
    """Shapes, dtypes, buffers, quantization and sparsity of every tensor; the bytes its
    constants take once decoded."""
    total = 0
    for t in sub.tensors:
        at = f"{where}, tensor {t.index} ({t.name!r})"
        if t.dtype.startswith("TYPE_"):
            raise SourceError(f"{at}: tensor type code {t.dtype[5:]} is not one TFLite defines")
        if len(t.shape) > _MAX_RANK:
            raise SourceError(f"{at}: rank {len(t.shape)} (TFLite allows {_MAX_RANK})")
        if any(d < 0 for d in t.shape):
            raise SourceError(f"{at}: shape {list(t.shape)} has a negative size")
        if len(t.shape_signature) == len(t.shape) and any(d < -1 for d in t.shape_signature):
            raise SourceError(f"{at}: shape signature {list(t.shape_signature)} has a size "
                              "below -1")
        count = budgets.check_shape(t.shape, at)
        if t.buffer >= len(model.buffers):
            raise SourceError(f"{at}: buffer {t.buffer} does not exist (file has "
                              f"{len(model.buffers)})")
        _check_quantization(t, at)
        size = model.buffers[t.buffer].size if t.buffer else 0
        if not size:
            continue
        if t.sparsity is not None:
            _check_sparsity(t, at)
        elif t.dtype not in _NO_DATA_TYPES and count * _ITEMSIZE.get(t.dtype, 1) > size:
            raise SourceError(f"{at}: a {t.dtype} constant of shape {list(t.shape)} needs "
                              f"{count * _ITEMSIZE.get(t.dtype, 1):,} bytes, its buffer "
                              f"{t.buffer} holds {size:,}")
        total += count * max(_ITEMSIZE.get(t.dtype, 1), 4)  # served as float32 at least
    return total


def _check_quantization(t: TflTensor, at: str) -> None:
    q = t.quantization
    if q is None:
        return
    if not all(math.isfinite(s) for s in q.scale) or any(s < 0 for s in q.scale):
        raise SourceError(f"{at}: quantization scale {list(q.scale)[:4]} is not finite and "
                          "non-negative")
    if len(q.zero_point) not in (1, len(q.scale)):
        raise SourceError(f"{at}: {len(q.scale)} quantization scales but "
                          f"{len(q.zero_point)} zero points")
    if len(q.scale) > 1 and not (0 <= q.axis < len(t.shape)
                                 and t.shape[q.axis] == len(q.scale)):
        raise SourceError(f"{at}: {len(q.scale)} per-channel scales along axis {q.axis} "
                          f"of shape {list(t.shape)}")


def _check_sparsity(t: TflTensor, at: str) -> None:
    s = t.sparsity
    rank, blocks = len(t.shape), len(s.block_map)
    levels = len(s.levels)
    if len(s.traversal_order) != levels or levels != rank + blocks:
        raise SourceError(f"{at}: sparse layout with {levels} levels, {len(s.traversal_order)} "
                          f"in its traversal order, for rank {rank} and {blocks} block(s)")
    if sorted(s.traversal_order) != list(range(levels)):
        raise SourceError(f"{at}: sparse traversal order {list(s.traversal_order)} is not a "
                          f"permutation of 0..{levels - 1}")
    if any(not 0 <= d < rank for d in s.block_map):
        raise SourceError(f"{at}: sparse block map {list(s.block_map)} names a dimension "
                          f"beyond rank {rank}")
    walked = 1
    for level, (size, segments, indices) in enumerate(s.levels):
        if not segments and not indices:
            if size < 0:
                raise SourceError(f"{at}: sparse level {level} has size {size}")
            walked *= max(size, 1)
            budgets.check(budgets.ACTIVATION_ELEMENTS, walked, f"{at}, sparse level {level}")
            continue
        if any(b < a for a, b in pairwise(segments)) or \
                (segments and (segments[0] < 0 or segments[-1] > len(indices))):
            raise SourceError(f"{at}: sparse level {level} has segments that are not an "
                              f"increasing split of its {len(indices)} indices")
        if any(i < 0 for i in indices):
            raise SourceError(f"{at}: sparse level {level} has a negative index")


def _check_endpoints(sub: TflSubgraph, where: str) -> None:
    n = len(sub.tensors)
    for kind, indices in (("input", sub.inputs), ("output", sub.outputs)):
        for i in indices:
            if not 0 <= i < n:
                raise SourceError(f"{where}: {kind} tensor index {i} is out of range (the "
                                  f"subgraph has {n} tensors)")
    if not sub.outputs:
        raise SourceError(f"{where}: no outputs")


def _check_operators(model: TflModel, sub: TflSubgraph, where: str) -> None:
    """Indices in range, options in range, and dataflow in file order: every computed input
    was written by an earlier operator (TFLite runs operators in file order), so a tensor an
    operator reads from itself or from a later one is a cycle."""
    n = len(sub.tensors)
    writer: dict[int, int] = {}
    for op in sub.operators:
        for i in op.outputs:
            if not 0 <= i < n:
                raise SourceError(f"{_node(where, op)}: output tensor index {i} is out of range "
                                  f"(the subgraph has {n} tensors)")
            if i in writer:
                raise SourceError(f"{_node(where, op)}: writes tensor {i}, which operator "
                                  f"{writer[i]} writes too")
            writer[i] = op.index
    available = set(sub.inputs)
    for t in sub.tensors:
        if t.is_variable or (t.buffer and model.buffers[t.buffer].size) or 0 in t.shape:
            available.add(t.index)
    for op in sub.operators:
        at = _node(where, op)
        _check_options(op, at, len(model.subgraphs))
        for i in op.inputs:
            if i == -1:
                continue
            if not 0 <= i < n:
                raise SourceError(f"{at}: input tensor index {i} is out of range (the subgraph "
                                  f"has {n} tensors)")
            if i in available:
                continue
            if writer.get(i) == op.index:
                raise SourceError(f"{at}: reads its own output (tensor {i}): a cycle")
            if i in writer:
                raise SourceError(f"{at}: reads tensor {i}, which operator {writer[i]} "
                                  "computes later: a cycle or operators out of order")
            raise SourceError(f"{at}: reads tensor {i} ({sub.tensors[i].name!r}), which is no "
                              "input, constant or operator output")
        available.update(op.outputs)
    for i in sub.outputs:
        if i not in available:
            raise SourceError(f"{where}: output tensor {i} ({sub.tensors[i].name!r}) is never "
                              "computed")


def _check_options(op: TflOperator, at: str, subgraphs: int) -> None:
    for key, known in _ENUMS.items():
        if key in op.options and op.options[key] not in known:
            raise SourceError(f"{at}: {key.replace('_', ' ')} {op.options[key]} is not one "
                              "TFLite defines "
                              f"({', '.join(f'{k}={v}' for k, v in known.items())})")
    for key in _WINDOW_OPTIONS:
        value = op.options.get(key)
        if value is not None and key in op.options and not 1 <= value <= _MAX_WINDOW:
            raise SourceError(f"{at}: {key} {value} is outside 1..{_MAX_WINDOW}")
    for key in _SUBGRAPH_OPTIONS:
        if key in op.options and not 0 < op.options[key] < subgraphs:
            raise SourceError(f"{at}: {key} {op.options[key]} names no subgraph (the file "
                              f"has {subgraphs})")


def _node(where: str, op: TflOperator) -> str:
    return f"{where}, node {op.op.lower()}_{op.index} ({op.op})"  # the IR's node name
