"""Per-op comparison: every intermediate tensor of the converted module against the TFLite
interpreter's (run with all tensors preserved), in graph order, to name the first op that
leaves the tolerance."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import fx

from tf2torch.conversion.graph.lower import identifier
from tf2torch.references.tflite import tflite_intermediates
from tf2torch.sources.model import SourceModel
from tf2torch.verification.report import GRAPH_TOLERANCE, Tolerance

# (source, input arrays) → the original's tensors by IR tensor name
Intermediates = Callable[[SourceModel, list[np.ndarray]], dict[str, np.ndarray]]


@dataclass(frozen=True)
class OpDiff:
    node: str
    op: str
    tensor: str
    max_abs: float
    bound: float
    shape: tuple[int, ...] = ()
    max_rel: float = 0.0

    @property
    def passed(self) -> bool:
        return bool(np.isfinite(self.max_abs)) and self.max_abs <= self.bound


def _record(net: fx.GraphModule, inputs: list[np.ndarray]) -> dict[str, torch.Tensor]:
    """Run `net`, keeping the value of every fx node by name."""
    values: dict[str, torch.Tensor] = {}

    class Recorder(fx.Interpreter):
        def run_node(self, n: fx.Node):
            result = super().run_node(n)
            values[n.name] = result
            return result

    with torch.no_grad():
        Recorder(net).run(*[torch.from_numpy(np.asarray(x)) for x in inputs])
    return values


def _distance(value: torch.Tensor, ref: np.ndarray) -> tuple[float, float]:
    """(max abs, max rel) difference in the interpreter's layout. The module's value may be
    channels-first; the layout is not recorded per tensor, so both readings are tried where
    shapes allow and the closer one counts."""
    arr = value.numpy()
    arr = arr if np.iscomplexobj(arr) else arr.astype(np.float64)
    ref = ref if np.iscomplexobj(ref) else ref.astype(np.float64)
    candidates = [arr] if arr.shape == ref.shape else []
    if arr.ndim >= 3 and np.moveaxis(arr, 1, -1).shape == ref.shape:
        candidates.append(np.moveaxis(arr, 1, -1))
    if not candidates:
        return float("inf"), float("inf")
    best = min(candidates, key=lambda c: float(np.abs(c - ref).max(initial=0.0)))
    diff = np.abs(best - ref)
    return (float(diff.max(initial=0.0)),
            float((diff / np.maximum(np.abs(best), 1e-8)).max(initial=0.0)))


def reference_form(source: SourceModel) -> dict[str, bool]:
    """How to run the original for a per-op comparison: a full-integer file on the default
    runtime (what `simulate` reproduces), every tensor exposed as an output; a weight-only
    one as its dequantized float twin (its hybrid kernels quantize on the fly; the twin
    tells a conversion error from that); a float file on its builtin kernels."""
    kind = source.graph.meta.get("quantized")
    return {"exposed": kind is not None, "twin": kind == "weight-only"}


def _bound(source: SourceModel, tensor: str, ref: np.ndarray, tolerance: Tolerance) -> float:
    """One quantization step for an int8/uint8 tensor of a full-integer model (and for the
    float output of a DEQUANTIZE, which carries its input's grid)."""
    table = source.graph.meta.get("quantization", {})
    dequantized = {n.outputs[0]: n.inputs[0] for n in source.graph.nodes
                   if n.op == "DEQUANTIZE" and n.inputs}
    grid = table.get(tensor) or table.get(dequantized.get(tensor, ""))
    if grid and source.graph.meta.get("quantized") == "full-integer":
        return float(max(grid["scale"])) * 1.001
    return tolerance.bound(ref)


def compare_per_op(source: SourceModel, net: fx.GraphModule,
                   inputs: np.ndarray | list[np.ndarray],
                   tolerance: Tolerance = GRAPH_TOLERANCE,
                   intermediates: Intermediates | None = None) -> list[OpDiff]:
    """One `OpDiff` per node output the original also exposes (by default: the TFLite
    interpreter's kept tensors), in graph order; quantized tensors compared in float
    (dequantized), bound one step."""
    batch = list(inputs) if isinstance(inputs, list | tuple) else [inputs]
    reference = (tflite_intermediates(source, batch, **reference_form(source))
                 if intermediates is None else intermediates(source, batch))
    graph = source.graph
    values = _record(net, batch)
    diffs: list[OpDiff] = []
    for node in graph.nodes:
        fx_name = identifier(node.name)
        for i, tensor in enumerate(node.outputs):
            key = fx_name if len(node.outputs) == 1 else None
            value = values.get(key) if key else _nth_output(values, fx_name, i)
            if value is None or tensor not in reference:
                continue
            ref = reference[tensor]
            max_abs, max_rel = _distance(value, ref)
            diffs.append(OpDiff(node.name, node.op, tensor, max_abs,
                                _bound(source, tensor, ref, tolerance),
                                tuple(ref.shape[1:]), max_rel))
    return diffs


def _nth_output(values: dict[str, torch.Tensor], fx_name: str, i: int) -> torch.Tensor | None:
    result = values.get(fx_name)
    if isinstance(result, tuple | list) and i < len(result):
        return result[i]
    return None


def first_failure(diffs: list[OpDiff]) -> OpDiff | None:
    return next((d for d in diffs if not d.passed), None)


def compare_isolated(source: SourceModel, net: fx.GraphModule,
                     inputs: np.ndarray | list[np.ndarray],
                     tolerance: Tolerance = GRAPH_TOLERANCE) -> list[OpDiff]:
    """Each module fed the interpreter's own inputs: separates a wrong op from error that
    only grows along a deep, ill-conditioned network (every op exact, outputs apart)."""
    batch = list(inputs) if isinstance(inputs, list | tuple) else [inputs]
    reference = tflite_intermediates(source, batch, **reference_form(source))
    graph = source.graph
    reference.update({spec.name: x for spec, x in zip(graph.inputs, batch, strict=True)})
    diffs: list[OpDiff] = []
    for node in graph.nodes:
        module = net.get_submodule(identifier(node.name))
        if not all(i in reference for i in node.inputs) or node.outputs[0] not in reference:
            continue
        ref = reference[node.outputs[0]].astype(np.float64)
        max_abs = min(_isolated_run(module, [reference[i] for i in node.inputs], ref, cf)
                      for cf in (False, True))
        diffs.append(OpDiff(node.name, node.op, node.outputs[0], max_abs,
                            _bound(source, node.outputs[0], ref, tolerance)))
    return diffs


def _isolated_run(module: torch.nn.Module, args: list[np.ndarray], ref: np.ndarray,
                  channels_first: bool) -> float:
    """Distance of one module's first output, run in NHWC or channels-first (the layout it
    was lowered to is not recorded, and a wrong one fails or mismatches in shape)."""
    def prepare(a: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(np.asarray(a, np.float32))
        return t.movedim(-1, 1) if channels_first and t.dim() >= 3 else t

    try:
        with torch.no_grad():
            out = module(*[prepare(a) for a in args])
    except (RuntimeError, IndexError, ValueError):
        return float("inf")
    out = out[0] if isinstance(out, tuple | list) else out
    if channels_first and out.dim() >= 3:
        out = out.movedim(1, -1)
    got = out.numpy().astype(np.float64)
    if got.shape != ref.shape:
        return float("inf")
    return float(np.abs(got - ref).max(initial=0.0))
