"""Result files: Parquet or JSON lines, complete or absent.

Rows go to a hidden temporary file beside the output and are moved into place (an atomic
rename) only after the last one is written, so a crashed or interrupted job leaves no output
and a reader never sees half a file. An existing output is refused unless `overwrite`, and
then replaced whole: a re-run never appends duplicates.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tf2torch.errors import MissingDependencyError, OutputError
from tf2torch.packages.scale.rows import COLUMNS, arrow_schema

# Suffix → format; a file without a suffix is Parquet.
FORMATS = {".parquet": "parquet", ".pq": "parquet", "": "parquet",
           ".jsonl": "jsonl", ".ndjson": "jsonl"}


def output_format(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise OutputError(f"{path}: unknown results format {path.suffix!r}; name the file "
                          ".parquet (Parquet) or .jsonl (JSON lines)")
    return fmt


def check_output(path: Path, overwrite: bool) -> str:
    """Refuse before any work is done: an existing file without `overwrite`, a folder, an
    unknown suffix. Returns the format."""
    fmt = output_format(path)
    if path.is_dir():
        raise OutputError(f"{path}: is a folder; give a results file (.parquet or .jsonl)")
    if path.exists() and not overwrite:
        raise OutputError(f"{path} already exists (use --overwrite to replace it)")
    if fmt == "parquet":
        _require_pyarrow()
    return fmt


class _Sink:
    """Counts what it writes; subclasses store it."""

    def __init__(self, path: Path) -> None:
        self.path, self.rows, self.errors = path, 0, 0

    def write_rows(self, rows: Sequence[dict[str, Any]]) -> None:
        self.rows += len(rows)
        self.errors += sum(row["error"] is not None for row in rows)
        self._write_rows(rows)

    def write_table(self, table: Any) -> None:
        """A pyarrow table in the rows' schema (what the Ray pipeline hands back)."""
        self.rows += table.num_rows
        self.errors += table.num_rows - table.column("error").null_count
        self._write_table(table)

    def _write_rows(self, rows: Sequence[dict[str, Any]]) -> None:
        raise NotImplementedError

    def _write_table(self, table: Any) -> None:
        self._write_rows(table.select(list(COLUMNS)).to_pylist())

    def close(self) -> None:
        raise NotImplementedError


class _JsonLines(_Sink):
    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self._file = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed by close()

    def _write_rows(self, rows: Sequence[dict[str, Any]]) -> None:
        self._file.writelines(json.dumps({c: row[c] for c in COLUMNS}, ensure_ascii=False) + "\n"
                              for row in rows)

    def close(self) -> None:
        self._file.close()


class _Parquet(_Sink):
    def __init__(self, path: Path) -> None:
        super().__init__(path)
        import pyarrow.parquet as pq

        self._schema = arrow_schema()
        self._writer = pq.ParquetWriter(path, self._schema)

    def _write_rows(self, rows: Sequence[dict[str, Any]]) -> None:
        import pyarrow as pa

        self._write_table(pa.Table.from_pylist(list(rows), schema=self._schema))

    def _write_table(self, table: Any) -> None:
        self._writer.write_table(table.select(list(COLUMNS)).cast(self._schema))

    def close(self) -> None:
        self._writer.close()


SINKS = {"parquet": _Parquet, "jsonl": _JsonLines}


@contextmanager
def result_writer(path: str | Path, overwrite: bool = False) -> Iterator[_Sink]:
    """Yield a sink for rows; on leaving the block without error, move the file into place."""
    path = Path(path)
    fmt = check_output(path, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        sink = SINKS[fmt](partial)
        try:
            yield sink
        finally:
            sink.close()
        if path.exists() and not overwrite:  # another job wrote it while this one ran
            raise OutputError(f"{path} appeared while this job ran; nothing was replaced "
                              "(use --overwrite to replace it)")
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def _require_pyarrow() -> None:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise MissingDependencyError(
            "writing Parquet needs pyarrow: pip install 'tf2torch[ray]' (or name the output "
            ".jsonl for JSON lines)") from None
