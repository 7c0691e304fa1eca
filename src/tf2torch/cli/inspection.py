"""`tf2torch inspect`: a source's tensors grouped by scope, before any porting."""

from __future__ import annotations

from dataclasses import dataclass, field

from tf2torch.sources import SourceModel, TensorInfo

# Sub-scopes folded into their parent so one layer reads as one group.
_FOLDED = ("BatchNorm", "ExponentialMovingAverage")


@dataclass
class ScopeGroup:
    scope: str
    tensors: list[TensorInfo] = field(default_factory=list)

    @property
    def parameters(self) -> int:
        return sum(t.size for t in self.tensors)

    def to_dict(self) -> dict:
        return {"scope": self.scope, "parameters": self.parameters,
                "tensors": [{"name": t.name, "shape": list(t.shape), "dtype": str(t.dtype)}
                            for t in self.tensors]}


def scope_of(name: str) -> str:
    parts = name.split("/")[:-1]
    while parts and parts[-1] in _FOLDED:
        parts.pop()
    return "/".join(parts) or "(top level)"


def group_by_scope(infos: list[TensorInfo]) -> list[ScopeGroup]:
    """Groups in the order their first tensor appears (checkpoints store names sorted)."""
    groups: dict[str, ScopeGroup] = {}
    for info in infos:
        groups.setdefault(scope_of(info.name), ScopeGroup(scope_of(info.name))).tensors.append(info)
    return list(groups.values())


def render_groups(model: SourceModel, groups: list[ScopeGroup]) -> str:
    total = sum(g.parameters for g in groups)
    lines = [f"{model.path} ({model.format}): {sum(len(g.tensors) for g in groups)} tensors, "
             f"{total:,} values in {len(groups)} scopes"]
    graph_meta = {k: model.meta[k] for k in _GRAPH_META if k in model.meta}
    if graph_meta:
        lines += render_graph_meta(graph_meta)
    rest = {k: v for k, v in model.meta.items() if k not in _GRAPH_META}
    if rest:
        lines.append("meta: " + ", ".join(f"{k}={v}" for k, v in rest.items()))
    for group in groups:
        lines.append(f"\n{group.scope}  [{group.parameters:,}]")
        for t in group.tensors:
            short = t.name[len(group.scope) + 1:] if t.name.startswith(group.scope + "/") \
                else t.name
            shape = "×".join(map(str, t.shape)) or "scalar"
            lines.append(f"  {short:48} {shape:>18}  {t.dtype}")
    return "\n".join(lines)


_GRAPH_META = ("signatures", "signature", "op_counts", "variables", "variable_values",
               "variable_bytes")


def render_graph_meta(meta: dict) -> list[str]:
    """A TensorFlow graph's signatures (the chosen one marked), ops and variables."""
    lines = []
    for sig in meta.get("signatures", []):
        if not isinstance(sig, dict):  # a .tflite lists its signatures' keys only
            lines.append(f"  signature {sig}")
            continue
        mark = "*" if sig["name"] == meta.get("signature") else " "
        lines.append(f"{mark} signature {sig['name']}")
        for kind in ("inputs", "outputs"):
            for t in sig[kind]:
                shape = "?" if t["shape"] is None else "×".join(
                    "?" if d is None else str(d) for d in t["shape"])
                lines.append(f"    {kind[:-1]:6} {t['name']:32} {t['dtype']:8} {shape}")
    if "variables" in meta:
        lines.append(f"variables: {meta['variables']} ({meta['variable_values']:,} values, "
                     f"{meta.get('variable_bytes', 0) / 2**20:.1f} MiB)")
    if meta.get("op_counts"):
        ops = ", ".join(f"{op} ×{n}" for op, n in sorted(meta["op_counts"].items(),
                                                          key=lambda kv: (-kv[1], kv[0])))
        lines.append(f"ops to convert ({sum(meta['op_counts'].values())}): {ops}")
    return lines
