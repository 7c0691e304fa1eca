"""Every TFLite builtin op is converted or refused with a reason, and the doc's table says so."""

from __future__ import annotations

import sys
from pathlib import Path

from tf2torch.conversion.graph.converters import default_registry
from tf2torch.conversion.graph.tflite import FORMAT
from tf2torch.conversion.graph.tflite.coverage import UNROLLED_WHEN_READ, markdown_table, op_table
from tf2torch.conversion.graph.tflite.refusals import REFUSED
from tf2torch.sources.tflite.opcodes import BUILTIN_OPS

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
from tflite_op_table import DOC, current_table


def test_every_builtin_is_converted_or_refused_with_a_reason() -> None:
    registry = default_registry()
    for op in set(BUILTIN_OPS.values()):
        converted = (FORMAT, op, 1) in registry or op in UNROLLED_WHEN_READ
        assert converted != (op in REFUSED), op
    assert all(status in ("converted", "refused") and note != "?"
               for _, status, note in op_table())


def test_refusals_name_only_builtins() -> None:
    assert set(REFUSED) <= set(BUILTIN_OPS.values())


def test_the_doc_table_is_the_registry_s() -> None:
    assert current_table(DOC.read_text(encoding="utf-8")) == markdown_table(), \
        "run python tools/tflite_op_table.py"
