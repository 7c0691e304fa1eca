"""Write (or check) the TFLite op table of docs/tflite_compatibility.md from the registry.

    python tools/tflite_op_table.py          # rewrite the table between its markers
    python tools/tflite_op_table.py --check  # exit 1 if the doc is out of date

Every TFLite builtin op is listed: converted (and how the simulate form of a full-integer
model runs it) or refused, with the reason the error message gives.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tf2torch.conversion.graph.tflite.coverage import markdown_table

DOC = Path(__file__).resolve().parents[1] / "docs" / "tflite_compatibility.md"
START, END = "<!-- op-table:start (tools/tflite_op_table.py) -->", "<!-- op-table:end -->"


def current_table(text: str) -> str:
    return text.split(START, 1)[1].split(END, 1)[0].strip()


def main(check: bool) -> int:
    text = DOC.read_text(encoding="utf-8")
    table = markdown_table()
    if check:
        if current_table(text) != table:
            print(f"{DOC}: the op table is out of date; run python tools/tflite_op_table.py")
            return 1
        return 0
    head, rest = text.split(START, 1)
    DOC.write_text(f"{head}{START}\n{table}\n{END}{rest.split(END, 1)[1]}", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main("--check" in sys.argv[1:]))
