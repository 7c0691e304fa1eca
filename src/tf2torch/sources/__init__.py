"""Readers, one per file format, each yielding a `SourceModel`."""

from __future__ import annotations

import re
from pathlib import Path

from tf2torch.errors import SourceError
from tf2torch.sources.model import SourceModel, TensorInfo, TensorStore

__all__ = ["SourceModel", "TensorInfo", "TensorStore", "open_source"]


def open_source(path: str | Path, extract_to: str | Path | None = None,
                signature: str | None = None) -> SourceModel:
    """Read any supported model file, choosing the reader by what the path is.

    `extract_to` is where a release archive is unpacked (default: a fresh temporary folder,
    never the current directory); `signature` picks a SavedModel's (or meta graph's)
    signature (default: serving_default).
    """
    path = Path(path)
    name = path.name.lower()
    from tf2torch.sources.tensorflow import is_saved_model

    if is_saved_model(path) or name.endswith((".pb", ".pbtxt", ".meta")):
        from tf2torch.sources.tensorflow.reader import read_tensorflow

        return read_tensorflow(path, signature)
    if signature is not None:
        raise SourceError(f"{path}: --signature applies to SavedModels and meta graphs")
    if name.endswith((".tgz", ".tar.gz", ".tar")):
        from tf2torch.sources.archive import open_release_archive

        return open_release_archive(path, extract_to)
    if name.endswith((".keras", ".h5", ".hdf5")):
        from tf2torch.sources.keras.reader import read_keras

        return read_keras(path)
    if name.endswith(".tflite"):
        from tf2torch.sources.tflite.reader import read_tflite

        return read_tflite(path)
    from tf2torch.sources.checkpoint.reader import read_checkpoint

    if (path.is_dir() or path.with_name(path.name + ".index").exists()
            or name.endswith(".index") or re.search(r"\.data-\d{5}-of-\d{5}$", name)):
        return read_checkpoint(path)
    if not path.exists():
        raise SourceError(f"{path}: no such file or checkpoint prefix")
    raise SourceError(
        f"{path}: unknown model format (expected a SavedModel folder, a frozen .pb, a .meta, "
        "a checkpoint prefix or folder, a .tgz release, .keras, .h5 or .tflite)"
    )
