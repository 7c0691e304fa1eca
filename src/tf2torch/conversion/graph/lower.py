"""Lower a graph IR to a `torch.fx.GraphModule`, computing channels-first inside.

Each node's converter says which module computes it and in which layout. Lowering walks the
nodes in order, inserting a permute only where a tensor's current layout differs from the one
its consumer needs (each tensor is permuted at most once per layout). Modules are built on
the meta device and run there on meta tensors to learn every shape without computing; only
then are they materialised and filled from the source tensors, with a count check: every
parameter bound, every source tensor used or explicitly ignored.
"""

from __future__ import annotations

import importlib
import keyword
import operator
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import fx, nn

from tf2torch.conversion.graph import modules
from tf2torch.conversion.graph.registry import ANY, CF, SOURCE, LowerContext, Lowered, ModuleSpec, Registry
from tf2torch.conversion.graph.transforms import TRANSFORMS
from tf2torch.conversion.macs import MacCounter
from tf2torch.errors import MappingError, Tf2TorchError, UnsupportedError
from tf2torch.sources.ir import Graph, Node

# Size used for unknown spatial dimensions while inferring shapes on the meta device.
_DYNAMIC_PROBE_SIZE = 64
# Non-float model inputs (token ids, masks) keep their type; everything else is float32.
_INPUT_DTYPES = {"int32": torch.int32, "int64": torch.int64, "bool": torch.bool}


@dataclass
class _Value:
    """A tensor during lowering: its fx node, layout and a meta tensor with its true shape."""

    node: fx.Node
    layout: str
    meta: torch.Tensor
    permuted: dict[str, _Value] = field(default_factory=dict)


@dataclass
class LoweredGraph:
    net: fx.GraphModule
    provenance: dict[str, str]
    module_names: dict[str, str]  # IR module key → torch submodule path
    specs: dict[str, ModuleSpec]  # torch submodule path → how to rebuild it
    ignored: dict[str, str]  # source tensor → why unused
    permutes: int
    multiply_adds: int | None  # per sample, from the meta shapes; None if sizes are open


def check_supported(graph: Graph, registry: Registry) -> None:
    """Raise one error listing every op without a converter, with counts and node names."""
    missing: dict[str, list[str]] = {}
    for node in graph.nodes:
        if (graph.format, node.op, node.version) not in registry:
            missing.setdefault(node.op, []).append(node.name)
    if missing:
        parts = []
        for op, names in sorted(missing.items()):
            shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
            why = registry.reasons.get((graph.format, op))
            parts.append(f"{op} ×{len(names)} ({shown})" + (f" — {why}" if why else ""))
        kind = "layer classes" if graph.format == "keras" else "ops"
        raise UnsupportedError(f"{graph.name}: unsupported {graph.format} {kind}: "
                               + "; ".join(parts))
    for check in registry.checks.get(graph.format, ()):
        check(graph)


OUTPUT_LAYOUT = "tf2torch_layout"  # fx node meta key: SOURCE or CF


def to_layout_perm(rank: int, target: str) -> tuple[int, ...]:
    """Permutation taking a SOURCE tensor to CF, or a CF tensor back to SOURCE."""
    if target == CF:
        return (0, rank - 1, *range(1, rank - 1))
    return (0, *range(2, rank), 1)


def _source_shape(meta: torch.Tensor, layout: str) -> tuple[int, ...]:
    shape = tuple(meta.shape[1:])
    if layout == CF and meta.dim() >= 3:
        return (*shape[1:], shape[0])
    return shape


class _Lowerer:
    def __init__(self, graph: Graph, registry: Registry, layout: str) -> None:
        self.graph, self.registry, self.layout = graph, registry, layout
        self.fx = fx.Graph()
        self.root = nn.Module()
        self.values: dict[str, _Value] = {}
        self.built: dict[str, tuple[Lowered, str, nn.Module]] = {}
        self.used_names: set[str] = set()
        self.permutes = 0
        self.multiply_adds = 0
        self.static = all(d is not None for i in graph.inputs for d in i.shape)

    # ---- tensors and layouts -------------------------------------------------------------
    def add_inputs(self) -> None:
        for spec in self.graph.inputs:
            shape = [_DYNAMIC_PROBE_SIZE if d is None else d for d in spec.shape]
            meta = torch.empty((1, *shape), device="meta", dtype=_INPUT_DTYPES.get(
                spec.dtype, torch.float32))
            node = self.fx.placeholder(identifier(spec.name))
            value = _Value(node, SOURCE, meta)
            if self.layout == "nchw" and meta.dim() == 4:
                value = _Value(node, CF, meta.permute(to_layout_perm(4, CF)))
            self.values[spec.name] = value

    def in_layout(self, value: _Value, layout: str) -> _Value:
        if layout == ANY or value.layout == layout or value.meta.dim() < 3:
            return value
        if layout not in value.permuted:
            perm = to_layout_perm(value.meta.dim(), layout)
            node = self.fx.call_method("permute", (value.node, perm))
            self.permutes += 1
            value.permuted[layout] = _Value(node, layout, value.meta.permute(perm))
        return value.permuted[layout]

    def common_layout(self, values: list[_Value]) -> str:
        """An elementwise op follows its inputs; mixed or differently-ranked inputs go SOURCE."""
        ranks = {v.meta.dim() for v in values}
        if len(ranks) == 1 and any(v.layout == CF for v in values):
            return CF
        return SOURCE

    # ---- nodes ----------------------------------------------------------------------------
    def context(self, node: Node, inputs: list[_Value]) -> LowerContext:
        weight_shapes = {}
        for role, name in node.weights.items():
            if name not in self.graph.weights:
                raise MappingError(f"{node.name}: weight {name!r} is not in the source file")
            weight_shapes[role] = self.graph.weights[name].shape
        return LowerContext(
            input_shapes=tuple(_source_shape(v.meta, v.layout) for v in inputs),
            input_layouts=tuple(v.layout if v.meta.dim() >= 3 else SOURCE for v in inputs),
            weight_shapes=weight_shapes,
            static=self.static,
            meta=self.graph.meta,
        )

    def module_for(self, node: Node, inputs: list[_Value]) -> tuple[Lowered, str, nn.Module]:
        if node.module in self.built:
            return self.built[node.module]
        converter = self.registry.get((self.graph.format, node.op, node.version))
        try:
            lowered = converter(node, self.context(node, inputs))
        except (KeyError, ValueError, TypeError) as err:
            raise UnsupportedError(f"{node.name} ({node.op}): cannot convert: {err}") from err
        with torch.device("meta"):
            module = instantiate(lowered.spec)
        path = self.place(node.module, module)
        self.built[node.module] = (lowered, path, module)
        return self.built[node.module]

    def place(self, key: str, module: nn.Module) -> str:
        """Attach under a path mirroring the source scopes ("block1/conv" → block1.conv).

        TF graphs name a node after a scope that holds other nodes ("clip/Minimum" and
        "clip"): a scope never takes a module's name, nor a module a scope's."""
        parts = [identifier(p) for p in key.split("/")]
        parent, prefix = self.root, ""
        for i in range(len(parts) - 1):
            while f"{prefix}{parts[i]}" in self.used_names:
                parts[i] += "_"
            if not hasattr(parent, parts[i]):
                parent.add_module(parts[i], nn.Module())
            parent, prefix = getattr(parent, parts[i]), f"{prefix}{parts[i]}."
        while f"{prefix}{parts[-1]}" in self.used_names or hasattr(parent, parts[-1]):
            parts[-1] += "_"
        path = prefix + parts[-1]
        self.used_names.add(path)
        parent.add_module(parts[-1], module)
        return path

    def lower_node(self, node: Node) -> None:
        """One node into the fx graph. Its attributes come from the file: what a converter
        or module cannot make of them is an error naming the node, never a traceback."""
        try:
            self._lower_node(node)
        except Tf2TorchError:
            raise
        except _ATTRIBUTE_ERRORS as err:
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise UnsupportedError(f"{node.name} ({node.op}): cannot convert: {reason}") from err

    def _lower_node(self, node: Node) -> None:
        inputs = [self.values[t] for t in node.inputs]
        lowered, path, module = self.module_for(node, inputs)
        layout = lowered.layout if lowered.layout != ANY else self.common_layout(inputs)
        args = [self.in_layout(v, layout) for v in inputs]
        with MacCounter().watch(module) as macs:  # the shapes are known here: count now
            out = _infer_meta(module, [a.meta for a in args])
        self.multiply_adds += macs.total
        call = self.fx.create_node("call_module", path, tuple(a.node for a in args),
                                   name=identifier(node.name))
        outs = out if isinstance(out, tuple | list) else (out,)
        # the layout this module computes in, for per-layer comparison with the source
        call.meta[OUTPUT_LAYOUT] = layout if outs[0].dim() >= 3 else SOURCE
        if len(outs) != len(node.outputs):
            raise UnsupportedError(f"{node.name}: expected {len(node.outputs)} outputs")
        for i, (name, meta) in enumerate(zip(node.outputs, outs, strict=True)):
            fx_node = call if len(outs) == 1 else self.fx.call_function(
                operator.getitem, (call, i))
            self.values[name] = _Value(fx_node, layout if meta.dim() >= 3 else SOURCE, meta)

    def add_outputs(self) -> None:
        results = []
        for name in self.graph.outputs:
            value = self.values[name]
            want = CF if self.layout == "nchw" and value.meta.dim() == 4 else SOURCE
            results.append(self.in_layout(value, want).node)
        self.fx.output(results[0] if len(results) == 1 else tuple(results))


# What a module or converter raises on attributes it cannot use (a size that is a string,
# an axis out of range, an input count the op does not take).
_ATTRIBUTE_ERRORS = (RuntimeError, ValueError, NotImplementedError, IndexError, TypeError,
                     KeyError, AttributeError, ArithmeticError)


def _qualified(name: str, defaults: Mapping[str, Any]) -> Any:
    """`name` from the shared `defaults`, or `package.module:name` from a front-end's own
    module (a class or weight transform only one source format needs)."""
    if ":" in name:
        module, attr = name.split(":", 1)
        return getattr(importlib.import_module(module), attr)
    return defaults[name]


def instantiate(spec: ModuleSpec) -> nn.Module:
    """The module a spec describes; arguments that are specs are built first."""
    kwargs = {k: instantiate(v) if isinstance(v, ModuleSpec) else v
              for k, v in spec.kwargs.items()}
    return _qualified(spec.cls, vars(modules))(**kwargs)


def _infer_meta(module: nn.Module, args: list[torch.Tensor]):
    """Output meta tensor(s); elementwise modules skip the (slow) meta-kernel dispatch.

    Tensors computed from shapes alone (SHAPE, RANGE and the arithmetic on them) are not
    meta but real, on the CPU: later modules may need their values (a computed reshape)."""
    rule = getattr(module, "shape_rule", None)
    if rule in ("same", "broadcast") and all(a.is_meta for a in args):
        shape = torch.broadcast_shapes(*(a.shape for a in args))
        return torch.empty(shape, device="meta", dtype=args[0].dtype)
    with torch.no_grad():
        return module(*args)


def identifier(name: str) -> str:
    """A Python identifier close to `name`, safe as an attribute of nn.Module."""
    ident = re.sub(r"\W", "_", name)
    if not ident or ident[0].isdigit():
        ident = "_" + ident
    if keyword.iskeyword(ident) or hasattr(nn.Module, ident):
        ident += "_"
    return ident


def lower(
    graph: Graph, registry: Registry, tensors: Mapping[str, np.ndarray] | None,
    layout: str = "nhwc",
) -> LoweredGraph:
    """Build the fx module; fill it from `tensors` (or leave it zeroed when None)."""
    if layout not in ("nhwc", "nchw"):
        raise ValueError(f"layout must be 'nhwc' or 'nchw', not {layout!r}")
    check_supported(graph, registry)
    lowerer = _Lowerer(graph, registry, layout)
    lowerer.add_inputs()
    for node in graph.nodes:
        lowerer.lower_node(node)
    lowerer.add_outputs()
    net = fx.GraphModule(lowerer.root, lowerer.fx, class_name=identifier(graph.name))
    provenance, ignored = _fill(graph, lowerer, tensors)
    net.eval()
    module_names = {key: path for key, (_, path, _) in lowerer.built.items()}
    specs = {path: lowered.spec for lowered, path, _ in lowerer.built.values()}
    return LoweredGraph(net, provenance, module_names, specs, ignored, lowerer.permutes,
                        lowerer.multiply_adds if lowerer.static else None)


def _fill(
    graph: Graph, lowerer: _Lowerer, tensors: Mapping[str, np.ndarray] | None,
) -> tuple[dict[str, str], dict[str, str]]:
    """Give every meta parameter/buffer its data; check counts and shapes on both sides."""
    provenance: dict[str, str] = {}
    ignored: dict[str, str] = {}
    nodes_by_module = {n.module: n for n in graph.nodes}
    for key, (lowered, path, module) in lowerer.built.items():
        node = nodes_by_module[key]
        targets = dict(module.named_parameters()) | dict(module.named_buffers())
        for binding in lowered.bindings:
            if binding.param not in targets:
                raise MappingError(f"{node.name}: module has no parameter {binding.param!r}")
            shape = tuple(targets[binding.param].shape)
            roles = _roles(binding)
            if binding.source is None:
                data = np.asarray(binding.value, np.float32)
                where = node.name
            elif tensors is None:
                data, where = np.zeros(shape, np.float32), node.name
            else:
                sources = [np.asarray(tensors[node.weights[r]]) for r in roles]
                joined = sources[0] if len(sources) == 1 else np.concatenate(sources)
                data = _qualified(binding.transform, TRANSFORMS)(joined)
                where = f"{node.name} ({', '.join(node.weights[r] for r in roles)})"
            if roles:
                provenance[f"{path}.{binding.param}"] = ", ".join(node.weights[r] for r in roles)
            target = targets[binding.param]
            dtype = np.float64 if target.dtype == torch.float64 else np.float32
            _assign(module, binding.param, _checked(where, binding.param, shape, data, dtype))
        _materialize_transient(module)
        filled = dict(module.named_parameters()) | dict(module.named_buffers())
        unbound = sorted(name for name, t in filled.items() if t.is_meta)
        if unbound:
            raise MappingError(f"{node.name}: no source tensor for {', '.join(unbound)}")
        used = {r for b in lowered.bindings for r in _roles(b)}
        for role, source in node.weights.items():
            if role in lowered.ignored:
                ignored[source] = lowered.ignored[role]
            elif role not in used:
                raise MappingError(f"{node.name}: source tensor {source!r} is not used")
    return provenance, ignored


def _materialize_transient(module: nn.Module) -> None:
    """Non-persistent buffers (a module's device anchor) hold no source data: made empty."""
    for owner in module.modules():
        for name in owner._non_persistent_buffers_set:
            buffer = owner._buffers.get(name)
            if buffer is not None and buffer.is_meta:
                owner._buffers[name] = torch.empty(buffer.shape, dtype=buffer.dtype)


def _roles(binding) -> tuple[str, ...]:
    if binding.source is None:
        return ()
    return binding.source if isinstance(binding.source, tuple) else (binding.source,)


def _checked(where: str, param: str, shape: tuple, data: np.ndarray,
             dtype: type = np.float32) -> torch.Tensor:
    if tuple(data.shape) != shape:
        raise MappingError(f"{where}: shape {tuple(data.shape)} does not fit {param} {shape}")
    return torch.from_numpy(np.ascontiguousarray(data, dtype=dtype))


def _assign(module: nn.Module, name: str, tensor: torch.Tensor) -> None:
    """Replace a meta parameter/buffer by real data (no allocation-then-copy)."""
    owner_path, _, leaf = name.rpartition(".")
    owner = module.get_submodule(owner_path) if owner_path else module
    if leaf in owner._parameters:
        owner._parameters[leaf] = nn.Parameter(tensor)
    else:
        owner._buffers[leaf] = tensor
