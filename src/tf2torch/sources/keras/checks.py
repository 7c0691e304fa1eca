"""What a Keras file must satisfy before its weights are read or its graph is built.

- The container: a `.keras` zip's member names stay inside the archive, its members are no
  larger than the budgets and inflate no more than `TF2TORCH_MAX_COMPRESSION_RATIO`; an HDF5
  file reads nothing outside itself (no external links, external storage or virtual
  datasets, whose data HDF5 would fetch from other files or devices), and each dataset's
  declared size is backed by the bytes it stores.
- The config: numbers where Keras writes numbers (a table of keys), a version that is one.
- The weights against the config: kernels and biases of the shapes their layer declares.

Each problem is one `SourceError` naming the member, dataset or layer.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Callable
from pathlib import PurePosixPath
from typing import Any

import h5py
import numpy as np

from tf2torch.errors import SourceError
from tf2torch.sources.ir import Graph, Node
from tf2torch.util import budgets

# ---- containers ----------------------------------------------------------------------------


def check_zip(archive: zipfile.ZipFile) -> None:
    """Member names inside the archive; sizes and inflation within the budgets."""
    for info in archive.infolist():
        name = info.filename
        parts = PurePosixPath(name.replace("\\", "/")).parts
        if name.startswith(("/", "\\")) or ".." in parts or re.match(r"^[A-Za-z]:", name):
            raise SourceError(f"archive member {name!r} points outside the archive")
        budgets.check(budgets.WEIGHT_BYTES, info.file_size, f"archive member {name!r}")
        if info.compress_type != zipfile.ZIP_STORED:
            ratio = info.file_size / max(info.compress_size, 1)
            if ratio > budgets.COMPRESSION_RATIO.value:
                raise SourceError(
                    f"archive member {name!r} inflates {ratio:,.0f}× ({info.compress_size:,} → "
                    f"{info.file_size:,} bytes), above {budgets.COMPRESSION_RATIO.value}× (a zip "
                    f"bomb? raise {budgets.COMPRESSION_RATIO.variable} if the file is real)")


def check_h5(h5: h5py.File, file_size: int) -> None:
    """Every link and dataset of `h5`: nothing outside the file, declared sizes backed.

    Walks with h5py's low-level API on raw names: its high-level visitors decode every name
    as UTF-8 and fail inside HDF5's callback (a SystemError) on a name that is not."""
    problems: list[str] = []
    hard: list[bytes] = []

    def visit(name: bytes) -> int | None:
        shown = name.decode("utf8", "replace")
        try:
            kind = h5.id.links.get_info(name).type
        except Exception as err:
            problems.append(f"link {shown!r} is unreadable ({err})")
            return 1
        if kind == h5py.h5l.TYPE_EXTERNAL:
            problems.append(f"{shown!r} is an HDF5 external link, to a file outside the model")
        elif kind == h5py.h5l.TYPE_SOFT:
            problems.append(f"{shown!r} is an HDF5 soft link (Keras writes none)")
        elif kind != h5py.h5l.TYPE_HARD:
            problems.append(f"{shown!r} is an HDF5 link of a kind Keras does not write")
        else:
            hard.append(name)
        return 1 if problems else None

    h5.id.links.visit(visit)
    if problems:
        raise SourceError(problems[0])
    total = 0
    for name in hard:
        obj = h5[name]
        if isinstance(obj, h5py.Dataset):
            total += _check_dataset(name.decode("utf8", "replace"), obj, file_size)
    budgets.check(budgets.WEIGHT_BYTES, total, "HDF5 weights")


def _check_dataset(name: str, obj: h5py.Dataset, file_size: int) -> int:
    if obj.external:
        raise SourceError(f"dataset {name!r} keeps its data in HDF5 external storage "
                          f"({obj.external[0][0]!r}), outside the model file")
    if obj.is_virtual:
        raise SourceError(f"dataset {name!r} is an HDF5 virtual dataset (its data live in "
                          "other files)")
    if obj.dtype.kind in "OVU" or obj.shape is None:  # strings, opaque, empty: read as is
        return 0
    count = budgets.check_shape(obj.shape, f"dataset {name!r}")
    declared = count * obj.dtype.itemsize
    stored = obj.id.get_storage_size()
    if obj.compression is None and declared > max(stored, 0) and declared > file_size:
        raise SourceError(f"dataset {name!r} declares {declared:,} bytes, the file holds "
                          f"{file_size:,}")
    if obj.compression is not None and declared > stored * budgets.COMPRESSION_RATIO.value:
        raise SourceError(f"dataset {name!r} inflates {declared:,} bytes from {stored:,} "
                          f"stored, above {budgets.COMPRESSION_RATIO.value}×")
    return declared


# ---- config --------------------------------------------------------------------------------

_VERSION = re.compile(r"^\d+(\.\d+)*([.\-+]?[0-9A-Za-z.\-]*)?$")


def check_version(version: Any, where: str) -> str:
    text = version.decode("utf8", "replace") if isinstance(version, bytes) else str(version)
    if not _VERSION.match(text) or len(text) > 64:
        raise SourceError(f"{where}: Keras version {text[:40]!r} is not a version number")
    return text


_MAX_INT = 1 << 31


def _int(value: Any, positive: bool) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool)
            and (1 if positive else -_MAX_INT) <= value < _MAX_INT)


def _ints(positive: bool, nested: bool = False) -> Callable[[Any], bool]:
    def ok(value: Any) -> bool:
        if _int(value, positive):
            return True
        if isinstance(value, list | tuple) and len(value) <= 16:
            return all(ok(v) if nested else _int(v, positive) for v in value)
        return False

    return ok


def _number(value: Any) -> bool:
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool)
                             and bool(np.isfinite(value)))


def _int_or_none(value: Any) -> bool:
    return value is None or _int(value, False)


# Config keys whose values are numbers in every Keras layer that has them.
_NUMERIC: dict[str, Callable[[Any], bool]] = {
    "filters": _ints(True), "units": _ints(True), "kernel_size": _ints(True),
    "strides": _ints(True), "dilation_rate": _ints(True), "pool_size": _ints(True),
    "depth_multiplier": _ints(True), "groups": _ints(True), "size": _ints(True),
    "axis": _ints(False), "n": _ints(True), "target_shape": _ints(False), "dims": _ints(True),
    "cropping": _ints(False, nested=True), "input_dim": _ints(True), "output_dim": _ints(True),
    "num_heads": _ints(True), "key_dim": _ints(True), "epsilon": _number,
    "momentum": _number, "rate": _number, "alpha": _number, "negative_slope": _number,
    "max_value": _number, "threshold": _number, "theta": _number, "stddev": _number,
    "value_dim": _int_or_none,
}
# `padding` is a word ("same", "valid", "causal") or, for padding layers, sizes.
_PADDING_WORDS = {"same", "valid", "causal", "full"}


def check_config(graph: Graph) -> None:
    """Every node's config: numbers where Keras writes numbers; weights of the declared
    shapes."""
    for node in graph.nodes:
        if not node.inputs:
            raise SourceError(f"layer {node.name!r} ({node.op}) is called on no tensor")
        for key, ok in _NUMERIC.items():
            if key in node.attrs and not ok(node.attrs[key]):
                raise SourceError(f"layer {node.name!r} ({node.op}): {key} is "
                                  f"{_show(node.attrs[key])}, not what Keras writes there")
        padding = node.attrs.get("padding")
        if padding is not None and not ((isinstance(padding, str) and padding in _PADDING_WORDS)
                                        or _ints(False, nested=True)(padding)):
            raise SourceError(f"layer {node.name!r} ({node.op}): padding is {_show(padding)}")
        _check_kernels(node, graph)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _tuple(value: Any, rank: int) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, list | tuple) else (value,) * rank


def _conv(a: dict, shape: tuple[int, ...]) -> dict[int, int]:
    ks = _tuple(a.get("kernel_size"), len(shape) - 2)
    return {**dict(enumerate(ks)), len(shape) - 1: a.get("filters")}


def _transpose(a: dict, shape: tuple[int, ...]) -> dict[int, int]:
    ks = _tuple(a.get("kernel_size"), len(shape) - 2)
    return {**dict(enumerate(ks)), len(shape) - 2: a.get("filters")}


def _depthwise(a: dict, shape: tuple[int, ...]) -> dict[int, int]:
    ks = _tuple(a.get("kernel_size"), len(shape) - 2)
    return {**dict(enumerate(ks)), len(shape) - 1: a.get("depth_multiplier", 1)}


def _dense(a: dict, shape: tuple[int, ...]) -> dict[int, int]:
    return {len(shape) - 1: a.get("units")}


# Class → (kernel role, its rank or None, the sizes its config fixes by axis, bias size key).
_KERNELS: dict[str, tuple[str, int | None, Callable, str | None]] = {
    "Conv1D": ("kernel", 3, _conv, "filters"), "Conv2D": ("kernel", 4, _conv, "filters"),
    "Conv3D": ("kernel", 5, _conv, "filters"),
    "Conv1DTranspose": ("kernel", 3, _transpose, "filters"),
    "Conv2DTranspose": ("kernel", 4, _transpose, "filters"),
    "Conv3DTranspose": ("kernel", 5, _transpose, "filters"),
    "DepthwiseConv1D": ("kernel", 3, _depthwise, None),
    "DepthwiseConv2D": ("kernel", 4, _depthwise, None),
    "SeparableConv2D": ("depthwise_kernel", 4, _depthwise, "filters"),
    "Dense": ("kernel", 2, _dense, "units"),
}


def _check_kernels(node: Node, graph: Graph) -> None:
    rule = _KERNELS.get(node.op)
    if rule is None or rule[0] not in node.weights:
        return
    role, rank, fixed, bias_key = rule
    shape = graph.weights[node.weights[role]].shape
    where = f"layer {node.name!r} ({node.op})"
    if rank is not None and len(shape) != rank:
        raise SourceError(f"{where}: {role} of shape {list(shape)}, rank {rank} expected")
    for axis, size in fixed(node.attrs, shape).items():
        if size is not None and shape[axis] != size:
            raise SourceError(f"{where}: {role} of shape {list(shape)} does not fit its config "
                              f"(axis {axis} should be {size}): dimensions swapped?")
    bias = node.weights.get("bias")
    if bias is not None and bias_key is not None and node.attrs.get(bias_key) is not None:
        want = (node.attrs[bias_key],)
        if graph.weights[bias].shape != want:
            raise SourceError(f"{where}: bias of shape {list(graph.weights[bias].shape)}, "
                              f"{list(want)} expected")
