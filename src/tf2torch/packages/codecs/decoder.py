"""The label decoder: a model's scores → named classes, top-k first.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from tf2torch.packages.codecs.fields import check_field, from_json_dict, to_json_dict
from tf2torch.packages.codecs.labels import LABEL_FILES, load_label_set


@dataclass(frozen=True)
class Prediction:
    """One class of a top-k answer."""

    index: int
    wnid: str | None
    label: str
    probability: float

    @property
    def short_label(self) -> str:
        """First synonym of the label: 'tabby' for 'tabby, tabby cat'."""
        return self.label.split(",")[0]


@dataclass(frozen=True)
class Decoder:
    """Turns a model's logits (or probabilities) into named classes.

    Fields:
        num_classes: the model's output width.
        label_set: a label set shipped with tf2torch ("imagenet-1k"), or None with `labels`.
        background_offset: leading "background" classes: 1 for TF-slim's 1001-way heads,
            0 for Keras's 1000-way ones.
        labels: class names of a custom head (after the background classes), or None.
    """

    num_classes: int
    label_set: str | None
    background_offset: int
    labels: tuple[str, ...] | None

    def __post_init__(self) -> None:
        if isinstance(self.labels, list):
            object.__setattr__(self, "labels", tuple(self.labels))
        self._validate()

    def _validate(self) -> None:
        c = functools.partial(check_field, owner="decoder")
        c((self.label_set is None) != (self.labels is None), field="labels",
          why="must be given exactly when label_set is null")
        c(self.label_set is None or self.label_set in LABEL_FILES, field="label_set",
          why=f"must be one of {sorted(LABEL_FILES)} or null, got {self.label_set!r}")
        c(self.background_offset in (0, 1) and isinstance(self.background_offset, int),
          field="background_offset", why="must be 0 or 1")
        if self.labels is not None:
            c(isinstance(self.labels, tuple) and len(self.labels) > 0
              and all(isinstance(s, str) and s for s in self.labels), field="labels",
              why="must be a non-empty list of non-empty strings")
        # Loading the label set here makes a missing or damaged label file fail at load time.
        named = len(self.labels if self.labels is not None else load_label_set(self.label_set))
        c(isinstance(self.num_classes, int) and self.num_classes == self.background_offset + named,
          field="num_classes",
          why=f"is {self.num_classes!r} but the labels give {self.background_offset} + {named}")

    # -- factories ---------------------------------------------------------------------------

    @classmethod
    def imagenet(cls, num_classes: int, labels: Sequence[str] | None = None) -> Decoder:
        """ImageNet-1k with the form picked by width: 1001 = TF-slim (background at 0), 1000 =
        Keras/torchvision. Other widths need `labels` (a fine-tuned head)."""
        if labels is not None:
            decoder = cls.custom(labels)
            check_field(decoder.num_classes == num_classes, "decoder", "labels",
                   f"has {decoder.num_classes} names for {num_classes} classes")
            return decoder
        offsets = {1000: 0, 1001: 1}
        check_field(num_classes in offsets, "decoder", "num_classes",
               f"is {num_classes}: ImageNet-1k heads have 1000 or 1001 outputs; "
               "give labels for a custom head")
        return cls(num_classes, "imagenet-1k", offsets[num_classes], None)

    @classmethod
    def custom(cls, labels: Sequence[str]) -> Decoder:
        """A head with its own class names, one per output."""
        return cls(len(labels), None, 0, tuple(labels))

    # -- serialisation -----------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return to_json_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Decoder:
        return from_json_dict(cls, data)

    # -- decoding ----------------------------------------------------------------------------

    def entries(self) -> tuple[tuple[str | None, str], ...]:
        """(wnid or None, label) for every output index."""
        named = (load_label_set(self.label_set) if self.label_set is not None
                 else tuple((None, label) for label in self.labels))
        return ((None, "background"),) * self.background_offset + named

    def __call__(self, scores: torch.Tensor | np.ndarray, top: int = 5,
                 apply_softmax: bool = True) -> list[list[Prediction]]:
        """Top-`top` classes per row of a (batch, num_classes) array, most probable first.

        `apply_softmax=False` treats the scores as probabilities already. Ties keep index order.
        """
        x = torch.as_tensor(scores).detach().to("cpu", torch.float64)
        if x.ndim != 2 or x.shape[1] != self.num_classes:
            raise ValueError(f"expected scores of shape (batch, {self.num_classes}), "
                             f"got {tuple(x.shape)}")
        if top < 1:
            raise ValueError(f"top must be at least 1, got {top}")
        probs = torch.softmax(x, dim=1) if apply_softmax else x
        values, indices = torch.sort(probs, dim=1, descending=True, stable=True)
        k, entries = min(top, self.num_classes), self.entries()
        return [
            [Prediction(i, *entries[i], p) for p, i in zip(row_p[:k], row_i[:k], strict=True)]
            for row_p, row_i in zip(values.tolist(), indices.tolist(), strict=True)
        ]
