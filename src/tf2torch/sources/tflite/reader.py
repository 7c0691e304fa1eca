"""Reader of `.tflite` flatbuffers: weights as lazily read arrays, the subgraph as graph IR.

Parses the file with `struct`/numpy only: no TensorFlow import, nothing in the file is run.
"""

from __future__ import annotations

import mmap
from collections.abc import Callable
from pathlib import Path

import numpy as np

from tf2torch.errors import SourceError
from tf2torch.sources.graph_checks import validate_graph
from tf2torch.sources.model import SourceModel, TensorInfo, TensorStore
from tf2torch.sources.tflite import quantization
from tf2torch.sources.tflite.graph import (
    Constants,
    build_graph,
    find_constants,
    output_names,
    small_integer_constants,
    unique_names,
)
from tf2torch.sources.tflite.loops import unroll_loops
from tf2torch.sources.tflite.opcodes import NUMPY_DTYPES
from tf2torch.sources.tflite.schema import TflModel, parse_model
from tf2torch.sources.tflite.validate import validate_model

__all__ = ["read_metadata", "read_tflite", "read_tflite_model"]


def read_tflite_model(path: str | Path) -> TflModel:
    """The parsed flatbuffer structure (subgraphs, tensors, ops, buffers, metadata), checked
    as a graph (`validate.py`): nothing malformed reaches a builder or an interpreter."""
    path = Path(path)
    with _mapped(path) as buf:
        view = memoryview(buf)
        try:
            model = parse_model(view)
        except SourceError as err:
            raise SourceError(f"{path}: {err}") from None
        finally:
            view.release()
    validate_model(model, path)
    return model


def read_tflite(path: str | Path) -> SourceModel:
    """Read a `.tflite` file: `tensors` holds the constant (weight) tensors by name."""
    path = Path(path)
    model = read_tflite_model(path)
    original = model.subgraphs[0]

    def read(buffer: int, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
        return _read_buffer(path, model, buffer, dtype, shape)

    sub, folded = unroll_loops(model, original, small_integer_constants(model, original, read),
                               read)
    constants = find_constants(model, sub, read, folded if sub is not original else None)
    labels = output_names(model, original, unique_names(original))
    graph = build_graph(model, sub, constants, path.stem, labels)
    validate_graph(graph, path)
    store = TensorStore()
    index_of = {name: i for i, name in enumerate(unique_names(sub))}
    for tensor_name, spec in graph.weights.items():
        index = index_of[tensor_name]
        store.add(TensorInfo(tensor_name, spec.shape, np.dtype(spec.dtype)),
                  _float_loader(constants, index))
    meta = {
        "tflite_schema_version": model.version,
        "description": model.description,
        "metadata": sorted(model.metadata),
        "signatures": [s.key for s in model.signatures],
        "subgraphs": len(model.subgraphs),
        "op_counts": graph.op_counts(),
        "quantization": quantization.summary(sub, set(constants.entries), unique_names(sub)),
    }
    return SourceModel("tflite", path, store, graph, meta, {"tflite": path}, parsed=model)


def _float_loader(constants: Constants, index: int) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        values = np.asarray(constants.load(index))
        # float64 only for dequantized int32 biases (exact integers for the simulation)
        return values if values.dtype == np.float64 else values.astype(np.float32)

    return load


def read_metadata(path: str | Path, model: TflModel, name: str) -> bytes:
    """The raw bytes of one metadata entry (e.g. "TFLITE_METADATA", "min_runtime_version")
    of the file at `path`, whose parsed tables are `model`."""
    path = Path(path)
    if name not in model.metadata:
        raise SourceError(f"{path}: no metadata {name!r} (has {sorted(model.metadata)})")
    span = model.buffers[model.metadata[name]]
    with path.open("rb") as f:
        f.seek(span.offset)
        return f.read(span.size)


def _read_buffer(path: Path, model: TflModel, buffer: int, dtype: str,
                 shape: tuple[int, ...]) -> np.ndarray:
    span = model.buffers[buffer]
    if dtype == "INT4":
        count = int(np.prod(shape, dtype=np.int64))
        raw = np.fromfile(path, dtype=np.uint8, count=(count + 1) // 2, offset=span.offset)
        return quantization.unpack_int4(raw, count).reshape(shape)
    if dtype not in NUMPY_DTYPES:
        raise SourceError(f"{path}: constant of type {dtype} is not readable")
    dt = np.dtype(NUMPY_DTYPES[dtype])
    count = int(np.prod(shape, dtype=np.int64))
    if count * dt.itemsize > span.size:
        raise SourceError(f"{path}: buffer {buffer} holds {span.size} bytes, a {dtype} tensor "
                          f"of shape {shape} needs {count * dt.itemsize}")
    data = np.fromfile(path, dtype=dt, count=count, offset=span.offset)
    return data.reshape(shape)


class _mapped:
    """Context manager: the file memory-mapped read-only (weights are not copied to RAM)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> mmap.mmap:
        if not self.path.is_file():
            raise SourceError(f"{self.path}: no such file")
        self._file = self.path.open("rb")
        try:
            self._map = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError as err:  # empty file
            self._file.close()
            raise SourceError(f"{self.path}: not a TFLite file ({err})") from err
        return self._map

    def __exit__(self, *exc) -> None:
        self._map.close()
        self._file.close()
