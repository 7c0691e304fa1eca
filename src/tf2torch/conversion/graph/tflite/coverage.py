"""Every TFLite builtin op: converted (and how the simulate form treats it), or refused and
why. docs/tflite_compatibility.md's op table is `markdown_table()`; a test keeps the two equal
and checks that every builtin is exactly one of converted or refused.
"""

from __future__ import annotations

from tf2torch.conversion.graph import converters
from tf2torch.conversion.graph.tflite import FORMAT, quantized
from tf2torch.conversion.graph.tflite.refusals import REFUSED
from tf2torch.sources.tflite.opcodes import BUILTIN_OPS

# Not a converter: the reader unrolls every WHILE whose trip count follows from constants
# (`sources/tflite/loops.py`) and refuses the others, naming them.
UNROLLED_WHEN_READ = {"WHILE"}


def _simulation(op: str) -> str:
    if op in UNROLLED_WHEN_READ:
        return "unrolled when read (trip count from constants); its body's ops as listed"
    if op in quantized.NOT_SIMULATED:
        return "float form only"
    if op in quantized.BYTE_COPY:
        return "copies bytes (each q read on the output grid)"
    if op in quantized.EXACT:
        return "integer kernel"
    if op in quantized.PASSTHROUGH:
        return "moves values"
    return "float, rounded to the grid"


def op_table() -> list[tuple[str, str, str]]:
    """(op, "converted"/"refused", how the simulate form runs it / why refused), by name."""
    registry = converters.default_registry()
    rows = []
    for op in sorted(set(BUILTIN_OPS.values())):
        if (FORMAT, op, 1) in registry or op in UNROLLED_WHEN_READ:
            rows.append((op, "converted", _simulation(op)))
        else:
            rows.append((op, "refused", REFUSED.get(op, "?")))
    return rows


def markdown_table() -> str:
    lines = ["| op | status | int8 simulate form / why refused |", "| --- | --- | --- |"]
    lines += [f"| {op} | {status} | {note} |" for op, status, note in op_table()]
    return "\n".join(lines)
