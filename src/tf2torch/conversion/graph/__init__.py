"""Graph converter: a model's layer graph (IR) lowered to a `torch.fx` module.

Importing this package loads no PyTorch; `convert_graph` and `build_from_ir` do, on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from tf2torch.conversion.graph.convert import GraphConversion
    from tf2torch.sources.model import SourceModel

__all__ = ["GraphConversion", "build_from_ir", "convert_graph"]


def convert_graph(source: SourceModel, layout: str = "nhwc",
                  quantized: str = "simulate") -> GraphConversion:
    """Convert a reader's graph and weights into an eval-mode `torch.fx.GraphModule`
    (`quantized`: the form of a full-integer model, "simulate" or "float")."""
    from tf2torch.conversion.graph.convert import convert_graph as _convert

    return _convert(source, layout, quantized=quantized)


def build_from_ir(ir_json: dict[str, Any], layout: str = "nhwc") -> torch.nn.Module:
    """Rebuild the module of a conversion from its `ir_json` alone (weights left zero)."""
    from tf2torch.conversion.graph.convert import build_from_ir as _build

    return _build(ir_json, layout)


def __getattr__(name: str):
    if name == "GraphConversion":
        from tf2torch.conversion.graph.convert import GraphConversion

        return GraphConversion
    raise AttributeError(name)
