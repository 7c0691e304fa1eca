"""Render the corpus figures a test run recorded (`pytest --figures FILE`) as the markdown
tables of docs/tensorflow_compatibility.md and docs/tflite_compatibility.md, so no figure in
the docs is typed by hand.

    pytest tests/test_tf_graphs.py tests/test_tflite_quantized.py -m slow --figures run.jsonl
    python tools/corpus_tables.py run.jsonl [more.jsonl ...]

A model recorded twice (a rerun) keeps its last row; the summary line counts what passed.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def tf_graph_row(row: dict) -> str:
    size = f"{row['size']}×{row['size']}" if row.get("size") else "-"
    form = {"saved_model": "SavedModel", "frozen": "frozen GraphDef"}.get(row["form"],
                                                                          row["form"])
    seconds = "-" if row["convert_s"] is None else f"{row['convert_s']:.2f}"
    return (f"| {row['model']} | {size} | {form} | {row['nodes']} | {row['max_abs']:.2e} | "
            f"{row['bound']:.2e} | {seconds} | "
            f"{'pass' if row['passed'] else 'FAIL'} |")


TF_GRAPH_HEADER = ("| model | input | form | nodes | max abs diff | bound | convert (s) | "
                   "result |\n|---|---|---|---|---|---|---|---|")


def _quantized() -> tuple[str, Callable[[dict], str]]:
    from tflite_quant_corpus import HEADER, markdown_row

    return HEADER, markdown_row


def _passed(table: str, row: dict) -> bool:
    return row["passed"] if table == "tf-graphs" else row["status"] != "FAIL"


def _key(table: str, row: dict) -> tuple:
    return (row["model"], row["form"]) if table == "tf-graphs" else (
        row["model"], row["file"], row["port"])


def render(lines: Iterable[str]) -> str:
    tables: dict[str, dict[tuple, dict]] = {}
    for line in lines:
        if line.strip():
            row = json.loads(line)
            table = row.pop("table")
            tables.setdefault(table, {})[_key(table, row)] = row
    out = []
    for table, rows in tables.items():
        header, fmt = ((TF_GRAPH_HEADER, tf_graph_row) if table == "tf-graphs"
                       else _quantized())
        passed = sum(_passed(table, r) for r in rows.values())
        out += [f"{table}: {passed} of {len(rows)} passed", "", header,
                *(fmt(r) for r in rows.values()), ""]
    return "\n".join(out)


if __name__ == "__main__":
    print(render(line for name in sys.argv[1:] for line in Path(name).read_text().splitlines()))
