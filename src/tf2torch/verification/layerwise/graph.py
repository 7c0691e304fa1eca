"""Graph path taps: fx node ↔ IR node ↔ Keras layer, all named after the Keras layer.

Seam for the Keras → IR → torch.fx converter (`tf2torch.conversion.graph`): the lowering names each
`call_module` fx node `identifier(ir_node.name)` and keeps the IR (with the Keras layer
names) in `conversion.config["graph"]`, so a tap is one call_module node per IR node, read
by a forward hook on the module it calls, paired with the Keras layer of the same name.
"""

from __future__ import annotations

from typing import Any

from tf2torch.conversion.graph.lower import identifier
from tf2torch.verification.layerwise.taps import BLOCK, BN, CONV, DENSE, DEPTHWISE, FLATTEN, LOGITS, Tap

# IR op → diagnosis op (anything else: a plain "block" step)
_OPS = {"Conv2D": CONV, "DepthwiseConv2D": DEPTHWISE, "BatchNormalization": BN,
        "Flatten": FLATTEN, "Reshape": FLATTEN, "Dense": DENSE}


def graph_taps(conversion: Any) -> list[Tap]:
    """One tap per IR node lowered to a call_module fx node, in graph order."""
    from torch import fx

    from tf2torch.sources.ir import Graph

    graph = Graph.from_json(conversion.config["graph"])
    net: fx.GraphModule = conversion.net
    calls = {n.name: n for n in net.graph.nodes if n.op == "call_module"}
    from tf2torch.conversion.graph.lower import OUTPUT_LAYOUT
    from tf2torch.conversion.graph.registry import CF

    taps = []
    for node in graph.nodes:
        fx_node = calls.get(identifier(node.name))
        if fx_node is None:
            continue
        stride = node.attrs.get("strides", (1,))
        op = _OPS.get(node.op, BLOCK)
        layout = "nchw" if fx_node.meta.get(OUTPUT_LAYOUT) == CF else "nhwc"
        taps.append(Tap(str(fx_node.target), node.name, op,
                        int(stride[0]) if isinstance(stride, list | tuple) else int(stride),
                        layout))
    if taps:
        taps[-1] = Tap(taps[-1].net, taps[-1].ref, LOGITS, taps[-1].stride, taps[-1].layout)
    return taps
