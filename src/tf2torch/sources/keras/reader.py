"""Read Keras `.keras` archives and `.h5` model files without TensorFlow.

A `.keras` file is a zip of `config.json`, `metadata.json` and `model.weights.h5`; the weights
are read in place from the zip (Keras stores members uncompressed), nothing is extracted. A
`.h5` model file holds the config as a JSON attribute and the weights under `model_weights`.
Configs are parsed as JSON only: nothing in the file is unpickled, evaluated or executed.
"""

from __future__ import annotations

import io
import struct
import zipfile
from pathlib import Path
from typing import Any, BinaryIO

import h5py
import numpy as np

from tf2torch.errors import SourceError
from tf2torch.sources.graph_checks import validate_graph
from tf2torch.sources.ir import WeightSpec
from tf2torch.sources.keras.checks import check_config, check_h5, check_version, check_zip
from tf2torch.sources.keras.graph import build_graph
from tf2torch.sources.keras.weights import keras3_weights, legacy_weights
from tf2torch.sources.model import SourceModel, TensorInfo, TensorStore
from tf2torch.util.budgets import load_json

_ZIP_LOCAL_HEADER = struct.Struct("<4s5H3L2H")


def read_keras(path: str | Path) -> SourceModel:
    """A `.keras` or `.h5` Keras model as named weights (`layer/kernel`) plus its graph IR."""
    path = Path(path)
    if not path.is_file():
        raise SourceError(f"{path}: no such file")
    try:
        if zipfile.is_zipfile(path):
            return _read_archive(path)
        return _read_h5(path)
    except SourceError as err:
        raise SourceError(f"{path}: {err}") from None
    except (OSError, RuntimeError, KeyError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise SourceError(f"{path}: corrupt or truncated Keras file ({err})") from None
    except (TypeError, AttributeError, IndexError) as err:  # JSON of another structure
        raise SourceError(f"{path}: the model config is not laid out as Keras writes it "
                          f"({type(err).__name__}: {err})") from None


def _read_archive(path: Path) -> SourceModel:
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        for required in ("config.json", "model.weights.h5"):
            if required not in names:
                raise SourceError(f".keras archive has no {required}")
        check_zip(archive)
        if archive.testzip() is not None:
            raise SourceError("archive member fails its CRC check (corrupt file)")
        config = _dict(load_json(archive.read("config.json"), "config.json"), "config.json")
        metadata = (_dict(load_json(archive.read("metadata.json"), "metadata.json"),
                          "metadata.json") if "metadata.json" in names else {})
        member = archive.getinfo("model.weights.h5")
    h5 = h5py.File(_open_member(path, member), "r")
    check_h5(h5, member.file_size)
    version = check_version(metadata.get("keras_version", "3"), "metadata.json")
    return _source(path, config, keras3_weights(h5, config), version)


def _dict(value: Any, where: str) -> dict:
    if not isinstance(value, dict):
        raise SourceError(f"{where}: a JSON {type(value).__name__}, not an object")
    return value


def _open_member(path: Path, member: zipfile.ZipInfo) -> BinaryIO:
    """A seekable view of a stored zip member, or its bytes in memory if compressed."""
    if member.compress_type != zipfile.ZIP_STORED:
        with zipfile.ZipFile(path) as archive:
            return io.BytesIO(archive.read(member))
    handle = open(path, "rb")  # noqa: SIM115 - owned by the returned window
    handle.seek(member.header_offset)
    header = _ZIP_LOCAL_HEADER.unpack(handle.read(_ZIP_LOCAL_HEADER.size))
    start = member.header_offset + _ZIP_LOCAL_HEADER.size + header[-2] + header[-1]
    return _Window(handle, start, member.file_size)


class _Window(io.RawIOBase):
    """Read-only file view of bytes [start, start + size) of another file."""

    def __init__(self, handle: BinaryIO, start: int, size: int) -> None:
        super().__init__()
        self._handle, self._start, self._size, self._pos = handle, start, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def readinto(self, buffer) -> int:
        n = max(0, min(len(buffer), self._size - self._pos))
        self._handle.seek(self._start + self._pos)
        data = self._handle.read(n)
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def close(self) -> None:
        self._handle.close()
        super().close()


def _read_h5(path: Path) -> SourceModel:
    h5 = h5py.File(path, "r")
    check_h5(h5, path.stat().st_size)
    if "model_config" not in h5.attrs:
        raise SourceError("HDF5 file has no model config (a weights-only file? "
                          "save the whole model with model.save)")
    config = _dict(load_json(_text(h5.attrs["model_config"]), "model_config"), "model_config")
    version = check_version(h5.attrs.get("keras_version", h5["model_weights"].attrs.get(
        "keras_version", "2") if "model_weights" in h5 else "2"), "keras_version")
    return _source(path, config, legacy_weights(h5, config), version)


def _text(value: Any) -> str:
    return value.decode("utf8") if isinstance(value, bytes) else str(value)


def _source(path: Path, config: dict, datasets: dict[str, h5py.Dataset],
            version: str) -> SourceModel:
    # The loaders keep the HDF5 file open for as long as the SourceModel lives.
    store = TensorStore()
    specs: dict[str, WeightSpec] = {}
    for name, dataset in datasets.items():
        dtype = np.dtype(dataset.dtype)
        store.add(TensorInfo(name, tuple(dataset.shape), dtype), _loader(dataset))
        specs[name] = WeightSpec(tuple(int(d) for d in dataset.shape), dtype.name)
    graph = build_graph(config, specs, version)
    validate_graph(graph, path)
    check_config(graph)
    meta = {"keras_version": version, "model_name": graph.name}
    return SourceModel("keras", path, store, graph, meta)


def _loader(dataset: h5py.Dataset):
    def load() -> np.ndarray:
        try:
            return np.asarray(dataset[()])
        except (OSError, RuntimeError) as err:  # h5py: corrupt structures raise either
            raise SourceError(f"{dataset.file.filename}: cannot read {dataset.name} ({err})") from None
    return load
