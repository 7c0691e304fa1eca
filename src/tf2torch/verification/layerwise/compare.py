"""Run the port and the original side by side and compare every shared intermediate result."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace

import numpy as np
import torch
from torch import nn

from tf2torch.references.layers import LayerReference
from tf2torch.verification.layerwise.report import LayerReport, LayerRow
from tf2torch.verification.layerwise.taps import BN, LOGITS, Tap, stream_net, zoo_taps
from tf2torch.verification.report import GRAPH_TOLERANCE, Tolerance, compare_arrays


def compare_layers(
    conversion_or_net: object, reference: LayerReference, inputs: Mapping[str, np.ndarray],
    tolerance: Tolerance = GRAPH_TOLERANCE, taps: Sequence[Tap] | None = None,
) -> LayerReport:
    """Compare every tap both sides expose, on every NHWC input batch, in execution order.

    `conversion_or_net`: a `Conversion` (taps derived from its provenance, or its graph's
    node ↔ module names) or a bare `nn.Module` with explicit `taps`. Each pair is compared
    as soon as both tensors exist; only the figures are kept.
    """
    net, taps, layout = _resolve(conversion_or_net, taps)
    located = reference.locate([t.ref for t in taps])
    paired = _dedupe([t for t in taps if t.ref in located], located)
    report = LayerReport(reference.description,
                         unpaired=[t.net or "<output>" for t in taps if t.ref not in located])
    figures: dict[Tap, list[LayerRow]] = {t: [] for t in paired}
    order: list[Tap] = []
    for case, batch in inputs.items():
        for tap, row in _compare_case(net, layout, reference, batch, paired, located,
                                      tolerance, case):
            figures[tap].append(row)
            if tap not in order:
                order.append(tap)
    report.rows = [_worst(figures[t]) for t in order]
    return report


def _resolve(conversion_or_net: object, taps: Sequence[Tap] | None,
             ) -> tuple[nn.Module, list[Tap], str]:
    if isinstance(conversion_or_net, nn.Module):
        if taps is None:
            raise ValueError("a bare nn.Module needs explicit taps (or pass its Conversion)")
        return conversion_or_net, list(taps), "nchw"
    net = conversion_or_net.net
    layout = conversion_or_net.layout
    if taps is None:
        if conversion_or_net.mapping is None:
            # graph path: fx node ↔ IR node ↔ Keras layer by name; see `graph_taps`
            from tf2torch.verification.layerwise.graph import graph_taps

            taps = graph_taps(conversion_or_net)
        else:
            taps = zoo_taps(net, conversion_or_net.provenance)
    return net, list(taps), layout


def _dedupe(taps: list[Tap], located: Mapping[str, str]) -> list[Tap]:
    """One tap per reference tensor: logits, then a BN, then the first in module order.

    (A block without a residual ends at its project BN; the classifier's output is logits.)
    """
    best: dict[str, Tap] = {}
    for tap in taps:
        key = located[tap.ref]
        if key not in best or _PRIORITY.get(tap.op, 0) > _PRIORITY.get(best[key].op, 0):
            best[key] = tap
    keep = set(best.values())
    return [t for t in taps if t in keep]


_PRIORITY = {LOGITS: 2, BN: 1}


def _compare_case(
    net: nn.Module, layout: str, reference: LayerReference, batch: np.ndarray,
    taps: list[Tap], located: Mapping[str, str], tolerance: Tolerance, case: str,
) -> Iterator[tuple[Tap, LayerRow]]:
    """Stream the reference; for each of its tensors, pull the net's partner and compare."""
    by_ref = {located[t.ref]: t for t in taps}
    x = torch.from_numpy(np.ascontiguousarray(batch.transpose(0, 3, 1, 2) if layout == "nchw"
                                              else batch))
    net_stream = stream_net(net, x, taps)
    pending: dict[Tap, np.ndarray] = {}  # net results that came before their partner
    arrival: dict[Tap, int] = {}         # the net's execution order
    rows: list[tuple[Tap, LayerRow]] = []

    def on_reference(name: str, ref: np.ndarray) -> None:
        tap = by_ref[name]
        got = pending.pop(tap, None)
        while got is None:
            try:
                other, array = next(net_stream)
            except StopIteration:
                return  # the net never ran this module (e.g. a branch not taken)
            arrival[other] = len(arrival)
            if other is tap:
                got = array
            else:
                pending[other] = array
        row = measure(tap, got, ref, tolerance, case)
        rows.append((tap, replace(row, ref=reference.label(name))))  # its own tensor name

    try:
        reference.stream(batch, set(by_ref), on_reference)
    finally:
        net_stream.close()
    yield from sorted(rows, key=lambda item: arrival[item[0]])


def measure(tap: Tap, net: np.ndarray, ref: np.ndarray, tolerance: Tolerance,
            case: str = "") -> LayerRow:
    """The figures of one pair; extra evidence for the diagnosis only where it fails."""
    net, ref = _align(net, ref)
    if net.shape != ref.shape:
        return LayerRow(tap.net, tap.ref, tap.op, tap.stride, tuple(net.shape[1:]), float("inf"),
                        float("inf"), tolerance.bound(ref),
                        note=f"shape {tuple(net.shape)} vs reference {tuple(ref.shape)}")
    c = compare_arrays(case, tap.ref, net, ref, tolerance)
    row = LayerRow(tap.net, tap.ref, tap.op, tap.stride, c.shape[1:], c.max_abs, c.max_rel, c.bound)
    if row.passed:
        return row
    same = bool(np.allclose(np.sort(net, axis=None), np.sort(ref, axis=None),
                            atol=c.bound, rtol=0))
    shift = _class_shift(net, ref, c.bound) if tap.op == LOGITS or _per_class(net) else 0
    return replace(row, same_values=same, shift=shift)


def _align(net: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop size-1 axes when that is all that differs ((N, C, 1, 1) conv vs (N, C) dense)."""
    if net.shape != ref.shape and net.size == ref.size and \
            tuple(d for d in net.shape if d != 1) == tuple(d for d in ref.shape if d != 1):
        return net.reshape(ref.shape), ref
    return net, ref


def _per_class(array: np.ndarray) -> bool:
    """One score per class: (N, C) or a classifier conv's (N, 1, 1, C)."""
    return array.ndim >= 2 and all(d == 1 for d in array.shape[1:-1]) and array.shape[-1] > 2


def _class_shift(net: np.ndarray, ref: np.ndarray, bound: float) -> int:
    """k = ±1 when the net's logits are the reference's rolled by k classes (background).

    Needs three classes at least: with one or two, every class wraps around (two-class heads
    of detectors, a single score per anchor), so a roll says nothing."""
    if net.ndim == 0 or net.shape[-1] < 3:
        return 0
    for shift in (1, -1):
        rolled = np.roll(ref, shift, axis=-1)
        inner = slice(1, -1)  # the wrapped-around class differs anyway
        if np.abs(rolled[..., inner] - net[..., inner]).max() <= bound:
            return shift
    return 0


def _worst(rows: list[LayerRow]) -> LayerRow:
    """Merge one tap's rows over input cases: the worst figures, evidence from a failure."""
    worst = max(rows, key=lambda r: (not r.passed, r.max_abs))
    return replace(worst, max_rel=max(r.max_rel for r in rows))
