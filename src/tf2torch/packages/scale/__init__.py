"""Batch prediction beyond one process: result rows, their files, and the Ray Data pipeline.

`rows` is the one row schema both engines write (one row per input file); `output` writes
rows to Parquet or JSON lines atomically; `pipeline` runs local `predict`'s job on Ray Data,
with `workers` (the map tasks and the model actor) and `shipping` (how a package reaches
them). Ray and pyarrow are imported only inside `pipeline`, `workers`, `shipping` and the
Parquet sink, so nothing here costs the core an import.
"""
