"""The in-memory model every reader yields: named tensors, read lazily, plus an optional graph."""

from __future__ import annotations

import re
import shutil
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tf2torch.errors import Tf2TorchError


@dataclass(frozen=True)
class TensorInfo:
    """What is known about a stored tensor without reading its data."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))


class TensorStore(Mapping[str, np.ndarray]):
    """Name → array, where each array is read only when asked for.

    Readers register a loader per tensor; `store[name]` calls it. Nothing is cached, so
    peak memory stays at one tensor beyond what the caller keeps. `close` releases what the
    loaders keep open (a checkpoint's shard files): on `close()`, and when the store is
    collected; a later read opens again.
    """

    def __init__(self, close: Callable[[], None] | None = None) -> None:
        self._info: dict[str, TensorInfo] = {}
        self._loaders: dict[str, Callable[[], np.ndarray]] = {}
        self._close = close
        if close is not None:
            weakref.finalize(self, close)

    def close(self) -> None:
        if self._close is not None:
            self._close()

    def add(self, info: TensorInfo, loader: Callable[[], np.ndarray]) -> None:
        self._info[info.name] = info
        self._loaders[info.name] = loader

    def info(self, name: str) -> TensorInfo:
        return self._info[name]

    def infos(self) -> list[TensorInfo]:
        return list(self._info.values())

    def __getitem__(self, name: str) -> np.ndarray:
        return self._loaders[name]()

    def __contains__(self, name: object) -> bool:
        return name in self._info  # Mapping's default would read the tensor

    def __iter__(self) -> Iterator[str]:
        return iter(self._info)

    def __len__(self) -> int:
        return len(self._info)


@dataclass
class SourceModel:
    """A model as read from disk, before any PyTorch exists.

    `format` names the reader ("tf-checkpoint", "keras", "tflite", ...); `meta` holds what the
    file or its name tells (e.g. `release` = "mobilenet_v2_1.4_224", `input_size` = 224).
    `graph` is set by readers of formats that carry one (Keras, TFLite); checkpoints have none.
    `runnable` lists files beside the weights that can be run as a reference (a `.tflite` in a
    release archive), keyed by kind. `parsed` is the reader's own parse of the file where it
    keeps one (the flatbuffer tables of a `.tflite`), handed on so no later stage reads the
    file's structure again.

    A model unpacked from an archive into a temporary folder owns that folder: `close()`
    removes it (so does leaving a `with` block, garbage collection, or interpreter exit).
    Leaving a `with` block with a tf2torch error also rewrites the paths it names inside the
    unpacked folder as members of the archive, so messages name what the user gave.
    """

    format: str
    path: Path
    tensors: TensorStore
    graph: Any = None
    meta: dict[str, Any] = field(default_factory=dict)
    runnable: dict[str, Path] = field(default_factory=dict)
    parsed: Any = None
    unpacked: tuple[Path, Path] | None = field(default=None, repr=False)  # (archive, folder)
    _cleanup: Any = field(default=None, init=False, repr=False, compare=False)

    def unpacked_from(self, archive: Path, folder: Path, remove: bool) -> None:
        """Record that the files live in `folder`, unpacked from `archive`; `remove`: the
        folder is this model's to delete."""
        self.unpacked = (archive, folder)
        if remove:
            self._cleanup = weakref.finalize(self, shutil.rmtree, str(folder), True)

    def close(self) -> None:
        """Close the files the tensors are read from, and remove the temporary folder this
        model was unpacked into, if any (idempotent)."""
        self.tensors.close()
        if self._cleanup is not None:
            self._cleanup()

    def __enter__(self) -> SourceModel:
        return self

    def __exit__(self, kind: object, error: BaseException | None, trace: object) -> None:
        if isinstance(error, Tf2TorchError) and self.unpacked is not None:
            error.args = (name_inside(str(error), self.unpacked[1], self.unpacked[0]),)
        self.close()


def name_inside(message: str, folder: Path, archive: Path) -> str:
    """`message` with paths inside the unpacked `folder` named as members of `archive`."""
    inside = re.escape(str(folder)) + r"[/\\]([^\s:'\"]+)"
    message = re.sub(inside, lambda m: f"{archive} (member {m.group(1)})", message)
    return message.replace(str(folder), str(archive))
