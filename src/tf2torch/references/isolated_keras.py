"""Layer-by-layer references (a Keras model's layers, a frozen graph's nodes) run in the
reference worker (`isolated.py`): the `LayerReference` of `layers.py`, by proxy.

`locate` is answered there once per call (with the labels of what it found); `stream` runs
the batch there and emits the wanted tensors here in the order the worker produced them,
which is execution order.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Sequence
from pathlib import Path

import numpy as np

from tf2torch.references.isolated import Opened
from tf2torch.references.layers import Emit

RUNTIMES = {"frozen_pb": "TensorFlow", "keras": "Keras", "keras_standin": "Keras"}


class IsolatedLayers:
    """`layers.layer_reference(kind, path)`, living in the worker."""

    def __init__(self, kind: str, path: str | os.PathLike) -> None:
        self._opened = Opened(path, {"op": "open_layers", "kind": kind,
                                     "path": str(Path(path).resolve())}, RUNTIMES[kind])
        self.description = self._opened.description
        self._labels: dict[str, str] = {}

    def locate(self, names: Sequence[str]) -> dict[str, str]:
        reply, _ = self._opened.ask({"op": "locate", "names": list(names)}, [], "locate")
        self._labels.update(reply["labels"])
        return reply["located"]

    def stream(self, batch: np.ndarray, wanted: Collection[str], emit: Emit) -> None:
        out = self._opened.named({"op": "stream", "wanted": sorted(wanted)},
                                 [np.asarray(batch, np.float32)], "layers")
        for own, array in out.items():
            emit(own, array)

    def label(self, own: str) -> str:
        return self._labels.get(own, own)
