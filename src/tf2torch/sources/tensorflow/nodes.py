"""TF nodes as plain Python, with function calls inlined: one flat list of `TfNode`s.

A GraphDef names a node's inputs `node` / `node:k` (k-th output); a FunctionDef names them
`arg` (a function argument) or `node:output_arg:k` (the k-th tensor of one of the node's
output arguments). Call nodes (`PartitionedCall`, `StatefulPartitionedCall`, or a node
whose op is a library function) are replaced by the callee's nodes, named
`<call node>/<inner node>` as TensorFlow's own inliner names them. References are resolved
through aliases at the end, since a function body need not list its nodes in order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tf2torch.errors import SourceError
from tf2torch.sources.tensorflow.values import attr_value

Ref = tuple[str, int]  # (node name, output index)

CALL_OPS = {"PartitionedCall", "StatefulPartitionedCall"}
# Output arguments of ops with more than one (FunctionDef bodies name outputs by argument).
OUTPUT_ARGS: dict[str, tuple[str, ...]] = {
    "FusedBatchNorm": ("y", "batch_mean", "batch_variance", "reserve_space_1",
                       "reserve_space_2"),
    "FusedBatchNormV2": ("y", "batch_mean", "batch_variance", "reserve_space_1",
                         "reserve_space_2"),
    "FusedBatchNormV3": ("y", "batch_mean", "batch_variance", "reserve_space_1",
                         "reserve_space_2", "reserve_space_3"),
    "TopKV2": ("values", "indices"),
    "Unique": ("y", "idx"),
    "UniqueV2": ("y", "idx"),
    "BroadcastGradientArgs": ("r0", "r1"),
}


@dataclass
class TfNode:
    """One node: data inputs as (producer, output index), attributes decoded."""

    name: str
    op: str
    inputs: list[Ref]
    attrs: dict[str, Any] = field(default_factory=dict)
    outputs: int = 1  # number of outputs known to be read (at least)

    def attr(self, key: str, default: Any = None) -> Any:
        return self.attrs.get(key, default)


def _attrs(node_def: Any) -> dict[str, Any]:
    return {key: attr_value(value) for key, value in node_def.attr.items()}


def plain_nodes(node_defs: Iterable[Any]) -> dict[str, TfNode]:
    """GraphDef nodes as they are, nothing inlined."""
    return {nd.name: TfNode(nd.name, nd.op, [parse_graph_ref(i) for i in nd.input
                                             if not i.startswith("^")], _attrs(nd))
            for nd in node_defs}


def parse_graph_ref(text: str) -> Ref:
    name, _, index = text.partition(":")
    return name, int(index) if index else 0


class Inliner:
    """Flatten a graph's nodes and the library functions they call into one node list."""

    def __init__(self, library: Any, source: str) -> None:
        self.functions = {f.signature.name: f for f in library.function}
        self.source = source
        self.nodes: dict[str, TfNode] = {}
        self.alias: dict[Ref, Ref] = {}
        self.calls: dict[str, TfNode] = {}  # call nodes as written (before inlining)
        self.flat_results: list = []  # the results of the call inlined under its own names
        self.depth = 0

    # --- top level ---------------------------------------------------------------------
    def add_graph(self, node_defs: Iterable[Any], flat_call: str | None = None) -> None:
        """GraphDef nodes (`node:k` references). The body of the call node `flat_call` keeps
        its own node names (as TF names a signature function's nodes when it freezes it);
        other calls' nodes are named `<call>/<node>`."""
        for nd in node_defs:
            inputs = [parse_graph_ref(i) for i in nd.input if not i.startswith("^")]
            self._add(nd.name, nd.op, inputs, _attrs(nd), "" if nd.name == flat_call else None)

    def inline_function(self, name: str, args: list[Ref], prefix: str) -> list[Ref]:
        """The body of function `name` with its arguments bound to `args`; its results."""
        function = self.functions.get(name)
        if function is None:
            raise SourceError(f"{self.source}: function {name!r} is not in the graph's library")
        self.depth += 1
        if self.depth > 64:
            raise SourceError(f"{self.source}: function calls nest deeper than 64 ({name})")
        signature = function.signature
        if len(args) != len(signature.input_arg):
            raise SourceError(f"{self.source}: {name} takes {len(signature.input_arg)} "
                              f"inputs, the call gives {len(args)}")
        for arg, ref in zip(signature.input_arg, args, strict=True):
            self.alias[(f"{prefix}^arg^{arg.name}", 0)] = ref
        for nd in function.node_def:
            inputs = [self._body_input(i, prefix) for i in nd.input if not i.startswith("^")]
            self._add(prefix + nd.name, nd.op, inputs, _attrs(nd))
        self.depth -= 1
        return [self._body_input(function.ret[arg.name], prefix)
                for arg in signature.output_arg]

    # --- references ----------------------------------------------------------------------
    def _body_input(self, text: str, prefix: str) -> Ref:
        parts = text.split(":")
        if len(parts) == 1:
            return f"{prefix}^arg^{parts[0]}", 0
        node = parts[0]
        index = int(parts[2]) if len(parts) > 2 else 0
        return prefix + node, ("@" + parts[1], index)  # resolved once the op is known

    # --- nodes ---------------------------------------------------------------------------
    def _add(self, name: str, op: str, inputs: list, attrs: dict[str, Any],
             prefix: str | None = None) -> None:
        callee = attrs.get("f") if op in CALL_OPS else (op if op in self.functions else None)
        if callee is not None:
            self.calls.setdefault(name, TfNode(name, op, list(inputs), attrs))  # outer first
            results = self.inline_function(callee, inputs, name + "/" if prefix is None else prefix)
            if prefix == "":  # its body may use its name: its results are kept apart
                self.flat_results = results
                return
            for i, ref in enumerate(results):
                self.alias[(name, i)] = ref
            self.nodes[name] = TfNode(name, "__call__", [], {"results": len(results)})
            return
        if name in self.nodes:
            raise SourceError(f"{self.source}: two nodes are named {name!r}")
        self.nodes[name] = TfNode(name, op, inputs, attrs)

    def resolve(self, ref: Any) -> Ref:
        """Follow aliases (call results, arguments) to the producing node's output."""
        seen = 0
        while True:
            name, index = ref
            if isinstance(index, tuple):  # a FunctionDef's "node:arg:k"
                index = _flat_index(self.nodes.get(name), index[0][1:], index[1])
                ref = (name, index)
            if ref not in self.alias:
                return ref
            ref = self.alias[ref]
            seen += 1
            if seen > 10_000:
                raise SourceError(f"{self.source}: reference cycle at {name}")

    def finish(self) -> dict[str, TfNode]:
        """Every node with resolved inputs (call placeholders dropped)."""
        out: dict[str, TfNode] = {}
        for name, node in self.nodes.items():
            if node.op == "__call__":
                continue
            node.inputs = [self.resolve(ref) for ref in node.inputs]
            out[name] = node
        for node in out.values():
            for producer, index in node.inputs:
                if producer not in out:
                    raise SourceError(f"{self.source}: node {node.name} reads {producer!r}, "
                                      "which the graph does not define")
                out[producer].outputs = max(out[producer].outputs, index + 1)
        return out


def _flat_index(node: TfNode | None, arg: str, index: int) -> int:
    """The flat output index of `node`'s output argument `arg`, k-th tensor."""
    if node is None or node.op == "__call__":
        return index  # a call's single "output" list
    names = OUTPUT_ARGS.get(node.op)
    if names is None or arg not in names:
        return index  # single output argument (possibly a list: Split, Unpack, IdentityN)
    return names.index(arg) + index


def topological(nodes: Mapping[str, TfNode], wanted: Iterable[str]) -> list[TfNode]:
    """The nodes `wanted` depends on (data edges only), producers first."""
    order: list[TfNode] = []
    state: dict[str, int] = {}
    for start in wanted:
        stack = [(start, False)]
        while stack:
            name, expanded = stack.pop()
            if name not in nodes:
                raise SourceError(f"the graph reads node {name!r}, which it does not have")
            if expanded:
                state[name] = 2
                order.append(nodes[name])
                continue
            if state.get(name):  # done, or on the stack (a TF1 loop's back edge)
                continue
            state[name] = 1
            stack.append((name, True))
            for producer, _ in reversed(nodes[name].inputs):
                if not state.get(producer):
                    stack.append((producer, False))
    return order
