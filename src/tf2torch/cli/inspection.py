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
    if model.meta:
        lines.append("meta: " + ", ".join(f"{k}={v}" for k, v in model.meta.items()))
    for group in groups:
        lines.append(f"\n{group.scope}  [{group.parameters:,}]")
        for t in group.tensors:
            short = t.name[len(group.scope) + 1:] if t.name.startswith(group.scope + "/") \
                else t.name
            shape = "×".join(map(str, t.shape)) or "scalar"
            lines.append(f"  {short:48} {shape:>18}  {t.dtype}")
    return "\n".join(lines)
