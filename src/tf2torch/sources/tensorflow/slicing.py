"""TF's StridedSlice masks as Python index items, shared by folding, shape inference and the
converter (so all three read a slice the same way).

An item is `[start, stop, step]` (None = open), `"new"` (insert an axis) or an int (take
one position and drop the axis). Python slicing semantics equal TF's for these items:
out-of-range bounds clamp, negative values count from the end.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def strided_slice_items(rank: int, begin: Sequence[int], end: Sequence[int],
                        strides: Sequence[int], attrs: dict[str, Any]) -> list:
    """One item per axis of the result's source (ellipsis expanded for an input of `rank`)."""
    begin_mask, end_mask = attrs.get("begin_mask", 0), attrs.get("end_mask", 0)
    ellipsis, new_axis = attrs.get("ellipsis_mask", 0), attrs.get("new_axis_mask", 0)
    shrink = attrs.get("shrink_axis_mask", 0)
    specs = len(begin)
    # Axes of the input the spec covers (new axes take none; an ellipsis takes the rest).
    covered = sum(1 for i in range(specs) if not (new_axis >> i) & 1 and not (ellipsis >> i) & 1)
    items: list = []
    seen_ellipsis = False
    for i in range(specs):
        bit = 1 << i
        if ellipsis & bit and not seen_ellipsis:
            seen_ellipsis = True
            items += [[None, None, None]] * max(rank - covered, 0)
        elif new_axis & bit:
            items.append("new")
        elif shrink & bit:
            items.append(int(begin[i]))
        else:
            items.append([None if begin_mask & bit else int(begin[i]),
                          None if end_mask & bit else int(end[i]), int(strides[i])])
    return items


def apply_items(shape: Sequence[int | None], items: list) -> tuple[int | None, ...]:
    """The shape `items` leave of `shape` (unknown dims stay unknown)."""
    out: list[int | None] = []
    axis = 0
    for item in items:
        if item == "new":
            out.append(1)
            continue
        size = shape[axis] if axis < len(shape) else None
        axis += 1
        if isinstance(item, int):
            continue
        if size is None:
            out.append(None)
        else:
            out.append(len(range(*slice(*item).indices(size))))
    out.extend(shape[axis:])
    return tuple(out)


def as_index(items: list) -> tuple:
    return tuple(None if i == "new" else i if isinstance(i, int) else slice(*i) for i in items)
