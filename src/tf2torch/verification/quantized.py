"""Bounds for quantized models: what a port of a quantized `.tflite` is held to, per output.

- simulate form (full-integer): one quantization step of the output — the port reproduces
  the interpreter's integer arithmetic (status "within-one-step");
- float form, and every weight-only model: the dequantized float model cannot compute what
  TFLite's integer or hybrid kernels compute. TFLite itself, running the same graph with
  the same dequantized weights in float (the file's "dequantized twin",
  `references/tflite_twin.py`), lands |file − twin| away from the file; the port is held
  to that distance, measured on the same input, plus the float32 bound (status
  "within-quantization-error"), and to the float32 bound against the twin itself.

Why a measured distance and not a fixed factor: on the corpus (docs/tflite_compatibility.md,
2026-11-28) |port − file| equals |twin − file| to within the float32 bound on every model,
while |twin − file| itself ranges from under one output step (MobileNetV2, int8) to dozens
(int8 log-mel of silence, far outside the calibration range): a fixed bound loose enough for
the second would accept a broken port of the first.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tf2torch.verification.report import GRAPH_TOLERANCE, QUANTIZATION, STEP, Tolerance


def output_steps(graph: dict[str, Any]) -> dict[str, float | None]:
    """Per output name, the quantization step of the grid it comes from (the input of the
    DEQUANTIZE that produces it, or the output tensor itself), None for float outputs."""
    table = graph["meta"].get("quantization", {})
    produced_by = {out: node for node in graph["nodes"] for out in node["outputs"]}
    steps: dict[str, float | None] = {}
    for name, tensor in zip(graph["output_names"], graph["outputs"], strict=True):
        node = produced_by.get(tensor)
        source = tensor
        while node is not None and node["op"] in ("DEQUANTIZE", "RESHAPE", "SQUEEZE"):
            source = node["inputs"][0]
            node = produced_by.get(source)
        grid = table.get(source)
        steps[name] = float(max(grid["scale"])) if grid else None
    return steps


def tolerances(graph: dict[str, Any]) -> dict[str, Tolerance]:
    """The bound of every output of a graph conversion (its IR as JSON); QUANTIZATION
    outputs are bounded per input by `quantization_bound` once the twin has run."""
    meta = graph["meta"]
    kind, form = meta.get("quantized"), meta.get("quantized_form")
    if not kind:
        return {name: GRAPH_TOLERANCE for name in graph["output_names"]}
    result = {}
    for name, step in output_steps(graph).items():
        if form == "simulate":  # on a grid: one step; a float tail (EXP of a dequantized
            # tensor): float ops on the interpreter's own values, the float32 bound
            result[name] = Tolerance(step * 1.001, rule=STEP) if step else GRAPH_TOLERANCE
        else:
            result[name] = Tolerance(0.0, rule=QUANTIZATION)
    return result


def quantization_bound(file_output: np.ndarray, twin_output: np.ndarray) -> Tolerance:
    """|file − twin| on this input, plus the float32 bound."""
    gap = float(np.max(np.abs(np.asarray(file_output, np.float64) - twin_output), initial=0.0))
    return Tolerance(gap + GRAPH_TOLERANCE.bound(file_output), rule=QUANTIZATION)


def rule_text(form: str) -> str:
    if form == "simulate":
        return "simulate: within one quantization step of the interpreter"
    return ("float: no farther from the file than TFLite's float run of its dequantized "
            "twin is (+ 1e-4 · max(1, max |output|)), and within 1e-4 · max(1, max |output|) "
            "of that twin")


def card_section(source_meta: dict[str, Any], graph: dict[str, Any]) -> dict[str, Any] | None:
    """The model card's `quantization`: what the file quantizes, the form converted to, and
    the rule verification held it to (every tensor's parameters are in the IR)."""
    summary = source_meta.get("quantization")
    if not summary:
        return None
    form = graph["meta"].get("quantized_form", "float")
    return {**summary, "form": form, "bound_rule": rule_text(form),
            "parameters": "config.graph.meta.quantization (every quantized tensor)"}
