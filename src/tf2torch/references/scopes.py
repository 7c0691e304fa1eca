"""Pair the zoo's slim tap names with the tensors of a TF graph or a `.tflite` made from one.

A frozen slim graph names its nodes after slim's scopes, and TensorFlow's converter carries
those names onto the `.tflite` tensors (a fused op's tensor is named first after its last
node: `MobilenetV2/Conv/Relu6;MobilenetV2/Conv/BatchNorm/…;…`). So a tap is found by name:

- `S/Conv2D`, `S/depthwise`, `S/BiasAdd`: the node of that name (frozen graphs; TFLite fuses them away);
- `S/BatchNorm`, `S/output`: the scope's *exit*, the last node under `S/` whose result is read
  outside `S` (slim's `output` Identity where there is one, else `Relu6`, the BN, the `add`);
- `logits`: the input of the last softmax.

Pure Python: the references build the node list, this module only reads names.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class GraphNode:
    """One result of the original, in execution order.

    `name`: the node name it carries (for a TFLite tensor, the first part of its name);
    `key`: how the reference reads it back; `readers`: names of the nodes reading it.
    """

    name: str
    key: str
    readers: frozenset[str]


class ScopeNames:
    """Tap reference names → reference keys, by slim scope."""

    def __init__(self, nodes: Sequence[GraphNode], logits_key: str | None) -> None:
        self.nodes = list(nodes)
        self.logits_key = logits_key
        self._by_name = {node.name: node for node in self.nodes}

    def locate(self, refs: Sequence[str]) -> dict[str, str]:
        """Tap reference name → key, for the refs this graph has a tensor for."""
        found = {ref: self.resolve(ref) for ref in refs}
        return {ref: key for ref, key in found.items() if key is not None}

    def resolve(self, ref: str) -> str | None:
        if ref == "logits":
            return self.logits_key
        node = self._by_name.get(ref)
        if node is not None:
            return node.key
        if ref.endswith(("/Conv2D", "/depthwise", "/BiasAdd")):
            return None  # a conv fused into its successor: nothing to read
        exit_node = self.scope_exit(ref.removesuffix("/output"))
        return exit_node.key if exit_node else None

    def scope_exit(self, scope: str) -> GraphNode | None:
        """The last node under `scope/` whose result leaves the scope (or the graph)."""
        inside = scope + "/"
        found = None
        for node in self.nodes:
            if node.name.startswith(inside) and (
                    not node.readers or any(not r.startswith(inside) for r in node.readers)):
                found = node
        return found

    def order(self) -> list[str]:
        """Reference keys in execution order."""
        return [node.key for node in self.nodes]


def topological(names: Sequence[str], inputs: dict[str, Iterable[str]]) -> list[str]:
    """`names` in an order where every node comes after its inputs (stable otherwise).

    Frozen GraphDefs are usually stored in this order already, but nothing promises it.
    """
    position = {name: i for i, name in enumerate(names)}
    done: set[str] = set()
    visiting: set[str] = set()  # guards against cycles (TF1 while loops): visited once
    out: list[str] = []
    for start in names:
        stack = [(start, False)]
        while stack:
            name, expanded = stack.pop()
            if name in done:
                continue
            if expanded:
                done.add(name)
                out.append(name)
                continue
            if name in visiting:
                continue
            visiting.add(name)
            stack.append((name, True))
            for parent in sorted(inputs.get(name, ()), key=lambda n: -position.get(n, -1)):
                if parent in position and parent not in done:
                    stack.append((parent, False))
    return out
