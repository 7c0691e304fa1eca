"""WHILE loops with a trip count known from constants, unrolled into the main subgraph.

Keras 3's recurrent layers (and tf.keras's GRU) become a TFLite WHILE over a condition and a
body subgraph; their loop counters start from constants and step by constants, so the
number of iterations is known without running the model. Each iteration's body is inlined
with its own tensors (`name@k`); the counters and the integer arithmetic on them are folded
to constants (so a GATHER of the k-th time step becomes a GATHER of a constant index), and
the body's constant tensors (weights) are shared across iterations, as are the modules of
the ops that use them (`TflOperator.shared`). A loop whose condition depends on data is
refused, naming it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from tf2torch.errors import UnsupportedError
from tf2torch.sources.tflite.schema import TflModel, TflOperator, TflSubgraph, TflTensor

MAX_ITERATIONS = 10_000
# Ops folded when every input is a known (integer or boolean) constant.
_FOLD: dict[str, Callable] = {
    "ADD": np.add, "SUB": np.subtract, "MUL": np.multiply, "FLOOR_DIV": np.floor_divide,
    "MAXIMUM": np.maximum, "MINIMUM": np.minimum, "LESS": np.less,
    "LESS_EQUAL": np.less_equal, "GREATER": np.greater, "GREATER_EQUAL": np.greater_equal,
    "EQUAL": np.equal, "NOT_EQUAL": np.not_equal, "LOGICAL_AND": np.logical_and,
    "LOGICAL_OR": np.logical_or, "LOGICAL_NOT": np.logical_not,
}
_SHAPE_FOLD = {"RESHAPE", "CONCATENATION", "PACK", "CAST"}


def _fold(op: TflOperator, args: list[np.ndarray], out: TflTensor) -> np.ndarray | None:
    if op.op in _FOLD:
        return np.asarray(_FOLD[op.op](*args))
    if op.op == "RESHAPE":
        return args[0].reshape([int(d) for d in np.asarray(args[1]).reshape(-1)]) \
            if len(args) > 1 else args[0].reshape(out.shape)
    if op.op == "CONCATENATION":
        return np.concatenate([np.atleast_1d(a) for a in args], axis=op.options["axis"])
    if op.op == "PACK":
        return np.stack(args, axis=op.options["axis"])
    if op.op == "CAST":
        return args[0].astype({"INT32": np.int32, "INT64": np.int64, "BOOL": bool,
                               "FLOAT32": np.float32}.get(out.dtype, args[0].dtype))
    return None


class _Flattener:
    """Builds the unrolled subgraph: tensors appended as bodies are inlined, ops in order,
    folded values by tensor index."""

    def __init__(self, model: TflModel, main: TflSubgraph, known: dict[int, np.ndarray],
                 read: Callable):
        self.model, self.main, self.read = model, main, read
        self.tensors: list[TflTensor] = list(main.tensors)
        self.ops: list[TflOperator] = []
        self.known = dict(known)
        self.shared_constants: dict[tuple[int, int], int] = {}

    def new_tensor(self, template: TflTensor, name: str) -> int:
        index = len(self.tensors)
        self.tensors.append(replace(template, index=index, name=name))
        return index

    def emit(self, op: TflOperator, inputs: list[int], outputs: list[int],
             shared: str | None = None, unrolled: bool = False) -> None:
        """Fold the op when its inputs are known integers, else append it."""
        if op.op in _FOLD or op.op in _SHAPE_FOLD:
            args = [self.known.get(i) for i in inputs if i >= 0]
            if args and all(a is not None and a.dtype.kind in "iub" for a in args):
                value = _fold(op, args, self.tensors[outputs[0]])
                if value is not None:
                    self.known[outputs[0]] = value
                    return
        self.ops.append(replace(op, index=len(self.ops), inputs=tuple(inputs),
                                outputs=tuple(outputs), shared=shared, unrolled=unrolled))

    def run_subgraph(self, index: int, args: list[int], tag: str) -> list[int]:
        """Inline subgraph `index` on main tensors `args`; the main tensors of its outputs."""
        sub = self.model.subgraphs[index]
        mapping = dict(zip(sub.inputs, args, strict=True))
        for op in sub.operators:
            inputs = [self._map(index, sub, i, mapping, tag) for i in op.inputs]
            outputs = [self._map(index, sub, i, mapping, tag) for i in op.outputs]
            # ops with weights share one module; integer operands (sizes, axes, begin
            # indices) may differ per iteration, so they do not make an op shared
            uses_weights = any(i >= 0 and self._constant(sub, i)
                               and mapped not in self.known
                               for i, mapped in zip(op.inputs, inputs, strict=True))
            shared = f"{op.op.lower()}_loop{index}_{op.index}" if uses_weights else None
            self.emit(op, inputs, outputs, shared, unrolled=True)
        return [self._map(index, sub, i, mapping, tag) for i in sub.outputs]

    def _constant(self, sub: TflSubgraph, i: int) -> bool:
        t = sub.tensors[i]
        return 0 < t.buffer < len(self.model.buffers) and self.model.buffers[t.buffer].size > 0

    def _map(self, index: int, sub: TflSubgraph, i: int, mapping: dict[int, int],
             tag: str) -> int:
        if i < 0:
            return i
        if i not in mapping:
            t = sub.tensors[i]
            if self._constant(sub, i):  # a weight: one main tensor for every iteration
                key = (index, i)
                if key not in self.shared_constants:
                    new = self.new_tensor(t, f"{sub.name}/{t.name}")
                    self.shared_constants[key] = new
                    if t.dtype in ("INT32", "INT64", "BOOL") and int(np.prod(t.shape)) <= 4096:
                        self.known[new] = np.asarray(self.read(t.buffer, t.dtype, t.shape))
                mapping[i] = self.shared_constants[key]
            else:
                mapping[i] = self.new_tensor(t, f"{t.name}@{tag}")
        return mapping[i]

    def materialize(self, i: int) -> int:
        """A stored float tensor made a computed one (BROADCAST_TO to its own shape): an
        initial loop state the body's ops take as data, not as weights."""
        t = self.tensors[i]
        model = self.model
        stored = 0 < t.buffer < len(model.buffers) and model.buffers[t.buffer].size > 0
        if i < 0 or i in self.known or not stored:
            return i
        shape = self.new_tensor(replace(t, dtype="INT32", shape=(len(t.shape),),
                                        shape_signature=(len(t.shape),), buffer=0,
                                        quantization=None), f"{t.name}/shape")
        self.known[shape] = np.asarray(t.shape, np.int32)
        out = self.new_tensor(replace(t, buffer=0), f"{t.name}/state")
        self.ops.append(TflOperator(len(self.ops), "BROADCAST_TO", 1, (i, shape), (out,), {},
                                    None, False))
        return out

    def condition(self, index: int, args: list[int], where: str) -> bool:
        before = len(self.ops)
        (result,) = self.run_subgraph(index, args, "cond")
        if len(self.ops) != before or result not in self.known:
            raise UnsupportedError(f"{where}: the loop's condition depends on the model's "
                                   "data, so its trip count is unknown until it runs")
        return bool(np.asarray(self.known[result]).reshape(-1)[0])


def unroll_loops(model: TflModel, sub: TflSubgraph, known: dict[int, np.ndarray],
                 read: Callable) -> tuple[TflSubgraph, dict[int, np.ndarray]]:
    """The subgraph with every WHILE unrolled; `known` holds the values of its small integer
    constants, and the result's the folded ones too (new tensor indices included); `read`
    loads a buffer (buffer, dtype, shape)."""
    if not any(op.op == "WHILE" for op in sub.operators):
        return sub, known
    flat = _Flattener(model, sub, known, read)
    alias: dict[int, int] = {}
    for op in sub.operators:
        inputs = [alias.get(i, i) for i in op.inputs]
        if op.op != "WHILE":
            flat.emit(op, inputs, list(op.outputs))
            continue
        cond, body = op.options["cond_subgraph_index"], op.options["body_subgraph_index"]
        where = f"WHILE ({model.subgraphs[body].name})"
        state = [flat.materialize(i) for i in inputs]
        for k in range(MAX_ITERATIONS + 1):
            if not flat.condition(cond, state, where):
                break
            if k == MAX_ITERATIONS:
                raise UnsupportedError(f"{where}: more than {MAX_ITERATIONS} iterations")
            state = flat.run_subgraph(body, state, str(k))
        alias.update(zip(op.outputs, state, strict=True))
    outputs = tuple(alias.get(i, i) for i in sub.outputs)
    unrolled = TflSubgraph(sub.name, flat.tensors, sub.inputs, outputs, flat.ops)
    return unrolled, flat.known
