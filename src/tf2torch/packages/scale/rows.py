"""The result row: one per input file, the same for the local engine and for Ray.

Columns: `path`; `indices`, `labels`, `wnids`, `scores` (the top-k classes, most probable
first: output index, class name, WordNet id or null, softmax probability); `error` (null, or
why the file could not be classified, in which case the lists are empty). Flat list columns
keep the files easy to query (`labels[0]` in pandas, DuckDB or Spark).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tf2torch.packages.codecs import Prediction
from tf2torch.packages.predict import ImageResult

COLUMNS = ("path", "indices", "labels", "wnids", "scores", "error")


def result_row(result: ImageResult) -> dict[str, Any]:
    """An `ImageResult` of local predict as a row."""
    return prediction_row(result.path, result.predictions, result.error)


def prediction_row(path: str, predictions: Sequence[Prediction], error: str | None) -> dict[str, Any]:
    return {"path": path,
            "indices": [p.index for p in predictions],
            "labels": [p.label for p in predictions],
            "wnids": [p.wnid for p in predictions],
            "scores": [p.probability for p in predictions],
            "error": error}


def row_result(row: dict[str, Any]) -> ImageResult:
    """A row back as an `ImageResult`, for the terminal table and `--json`."""
    predictions = [Prediction(int(i), w, str(label), float(s)) for i, label, w, s in
                   zip(row["indices"], row["labels"], row["wnids"], row["scores"], strict=True)]
    return ImageResult(str(row["path"]), predictions, row["error"])


def arrow_schema() -> Any:
    """The rows' Arrow schema (pyarrow is imported here, never by the core)."""
    import pyarrow as pa

    return pa.schema([("path", pa.string()), ("indices", pa.list_(pa.int32())),
                      ("labels", pa.list_(pa.string())), ("wnids", pa.list_(pa.string())),
                      ("scores", pa.list_(pa.float64())), ("error", pa.string())])
