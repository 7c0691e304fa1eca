"""The in-memory model every reader yields: named tensors, read lazily, plus an optional graph."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


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
    peak memory stays at one tensor beyond what the caller keeps.
    """

    def __init__(self) -> None:
        self._info: dict[str, TensorInfo] = {}
        self._loaders: dict[str, Callable[[], np.ndarray]] = {}

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
    """

    format: str
    path: Path
    tensors: TensorStore
    graph: Any = None
    meta: dict[str, Any] = field(default_factory=dict)
    runnable: dict[str, Path] = field(default_factory=dict)
    parsed: Any = None
