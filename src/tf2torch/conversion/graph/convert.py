"""Entry points of the graph path: SourceModel (with a graph IR) → `GraphConversion`."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from torch import fx, nn

from tf2torch.conversion.graph.converters import default_registry
from tf2torch.conversion.graph.lower import lower
from tf2torch.conversion.graph.registry import ModuleSpec, Registry
from tf2torch.errors import SourceError
from tf2torch.sources.graph_checks import validate_graph
from tf2torch.sources.ir import Graph
from tf2torch.sources.model import SourceModel


@dataclass(frozen=True)
class ConversionReport:
    """What a conversion did: ops converted, modules shared, permutes, unused tensors."""

    op_counts: dict[str, int]
    modules: int
    shared_modules: list[str]
    parameters: int
    permutes: int
    ignored: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        ops = ", ".join(f"{op} ×{n}" for op, n in sorted(self.op_counts.items()))
        shared = f", {len(self.shared_modules)} shared" if self.shared_modules else ""
        return (f"{sum(self.op_counts.values())} layers ({ops}); {self.modules} modules{shared}; "
                f"{self.parameters:,} parameters; {self.permutes} layout permutes")


@dataclass(frozen=True)
class GraphConversion:
    """`net` keeps the source interface (NHWC in and out unless layout="nchw"); `inputs` are
    (name, shape without batch, dtype); `provenance` maps each torch parameter/buffer to the
    source tensor it came from; `ir_json` rebuilds `net` with `build_from_ir`."""

    net: fx.GraphModule
    inputs: list[tuple[str, tuple[int | None, ...], str]]
    outputs: list[str]
    provenance: dict[str, str]
    ir_json: dict[str, Any]
    report: ConversionReport
    layout: str = "nhwc"
    modules: dict[str, ModuleSpec] = field(default_factory=dict)  # submodule path → spec
    multiply_adds: int | None = None  # per sample, where every input size is known


QUANTIZED_FORMS = ("simulate", "float")


def convert_graph(
    source: SourceModel, layout: str = "nhwc", registry: Registry | None = None,
    quantized: str = "simulate",
) -> GraphConversion:
    """Convert every node of `source.graph`; fails before any work if a layer is unsupported.

    `quantized` picks the form of a full-integer model: "simulate" (reproduce its integer
    arithmetic) or "float" (the dequantized model). Weight-only models are always "float";
    the form is recorded in the IR (`meta["quantized_form"]`), so a rebuild gives the same.
    """
    graph = source.graph
    if not isinstance(graph, Graph):
        raise SourceError(f"{source.path}: a {source.format} source without a layer graph "
                          "cannot go through the graph converter")
    if quantized not in QUANTIZED_FORMS:
        raise ValueError(f"quantized must be one of {QUANTIZED_FORMS}, not {quantized!r}")
    if graph.meta.get("quantized"):
        form = quantized if graph.meta["quantized"] == "full-integer" else "float"
        graph = replace(graph, meta={**graph.meta, "quantized_form": form})
    lowered = lower(graph, registry or default_registry(), source.tensors, layout)
    counts = graph.op_counts()
    calls: dict[str, int] = {}
    for node in graph.nodes:
        calls[node.module] = calls.get(node.module, 0) + 1
    report = ConversionReport(
        op_counts=counts,
        modules=len(lowered.module_names),
        shared_modules=sorted(k for k, n in calls.items() if n > 1),
        parameters=sum(p.numel() for p in lowered.net.parameters()),
        permutes=lowered.permutes,
        ignored=lowered.ignored,
    )
    return GraphConversion(
        net=lowered.net,
        inputs=[(i.name, tuple(i.shape), i.dtype) for i in graph.inputs],
        outputs=list(graph.output_names),
        provenance=lowered.provenance,
        ir_json=graph.to_json(),
        report=report,
        layout=layout,
        modules=lowered.specs,
        multiply_adds=lowered.multiply_adds,
    )


def build_from_ir(
    ir_json: dict[str, Any], layout: str = "nhwc", registry: Registry | None = None,
) -> nn.Module:
    """The same module as `convert_graph` gave, with zero weights, from the IR alone; load
    the weights with `load_state_dict` (same keys)."""
    graph = Graph.from_json(ir_json)
    validate_graph(graph, "the card's graph")
    return lower(graph, registry or default_registry(), None, layout).net
