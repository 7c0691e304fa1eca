"""Crafted `.tflite` files: each is refused by the reader in one `SourceError` naming the file
and the node or tensor, before any builder or interpreter sees it. The files are valid
TensorFlow-written models edited with TensorFlow's own flatbuffer tools."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest

pytest.importorskip("tensorflow")

from tf2torch.errors import SourceError
from tf2torch.sources import open_source
from tf2torch.sources.tflite.reader import read_tflite
from tflite_models import OP_MODELS, cached

CONV = "conv_2d_same_relu6"  # one CONV_2D: input 0, filter 1, bias 2, output 3 (by role)
CHAIN = "unary_math"  # several ops in a row


def _conv(model):
    sub = model.subgraphs[0]
    return sub, sub.operators[0]


def _set_padding(model) -> None:
    _conv(model)[1].builtinOptions.padding = 7


def _set_dtype(model) -> None:
    sub, op = _conv(model)
    sub.tensors[op.outputs[0]].type = 99


def _set_dilation(model) -> None:
    _conv(model)[1].builtinOptions.dilationWFactor = 10**9


def _set_stride_zero(model) -> None:
    _conv(model)[1].builtinOptions.strideH = 0


def _no_inputs(model) -> None:
    model.subgraphs[0].inputs = []


def _input_index_out_of_range(model) -> None:
    _conv(model)[1].inputs[0] = 9999


def _output_index_out_of_range(model) -> None:
    _conv(model)[1].outputs[0] = 9999


def _self_loop(model) -> None:
    op = _conv(model)[1]
    op.inputs[0] = op.outputs[0]


def _two_op_cycle(model) -> None:
    ops = model.subgraphs[0].operators
    ops[0].inputs[0] = ops[1].outputs[0]


def _shape_beyond_buffer(model) -> None:
    sub, op = _conv(model)
    sub.tensors[op.inputs[1]].shape = [8, 3, 3, 300]


def _nan_scale(model) -> None:
    from tensorflow.lite.tools.flatbuffer_utils import schema_fb

    sub, op = _conv(model)
    q = schema_fb.QuantizationParametersT()
    q.scale, q.zeroPoint = [math.nan], [0]
    sub.tensors[op.inputs[0]].quantization = q


def _huge_input(model) -> None:
    sub = model.subgraphs[0]
    sub.tensors[sub.inputs[0]].shape = [1, 100000, 100000, 3]
    sub.tensors[sub.inputs[0]].shapeSignature = [-1, 100000, 100000, 3]


def _absurd_sparse(model) -> None:
    from tensorflow.lite.tools.flatbuffer_utils import schema_fb as fb

    sub, op = _conv(model)
    sparsity = fb.SparsityParametersT()
    sparsity.traversalOrder, sparsity.blockMap = [0, 1, 2, 3], []
    sparsity.dimMetadata = []
    for size in (8, 10**6, 10**6, 3):
        dim = fb.DimensionMetadataT()
        dim.format, dim.denseSize = 0, size
        sparsity.dimMetadata.append(dim)
    sub.tensors[op.inputs[1]].sparsity = sparsity


def _buffer_out_of_range(model) -> None:
    sub, op = _conv(model)
    sub.tensors[op.inputs[1]].buffer = 10**6


CASES: dict[str, tuple[str, Callable, str]] = {
    "padding_7": (CONV, _set_padding, r"conv_2d_0 \(CONV_2D\): padding 7 is not one"),
    "dtype_99": (CONV, _set_dtype, r"tensor type code 99"),
    "dilation_1e9": (CONV, _set_dilation, r"conv_2d_0 .*dilation_w_factor 1000000000"),
    "stride_0": (CONV, _set_stride_zero, r"stride_h 0 is outside"),
    "no_inputs": (CONV, _no_inputs, r"subgraph 0 has no inputs"),
    "input_index": (CONV, _input_index_out_of_range, r"input tensor index 9999 is out of range"),
    "output_index": (CONV, _output_index_out_of_range, r"output tensor index 9999"),
    "self_loop": (CONV, _self_loop, r"conv_2d_0 .*reads its own output"),
    "two_op_cycle": (CHAIN, _two_op_cycle, r"computes later: a cycle"),
    "shape_vs_buffer": (CONV, _shape_beyond_buffer, r"needs 86,400 bytes, its buffer"),
    "nan_scale": (CONV, _nan_scale, r"quantization scale \[nan\]"),
    "input_1e5_by_1e5": (CONV, _huge_input, r"declares 30,000,000,000 elements"),
    "sparse_absurd": (CONV, _absurd_sparse, r"sparse level 2"),
    "buffer_index": (CONV, _buffer_out_of_range, r"buffer 1000000 does not exist"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_crafted_tflite_is_refused_naming_file_and_node(case: str, tmp_path) -> None:
    from tensorflow.lite.tools import flatbuffer_utils

    seed, edit, message = CASES[case]
    model = flatbuffer_utils.read_model(str(cached(seed, OP_MODELS[seed])))
    edit(model)
    path = tmp_path / f"{case}.tflite"
    flatbuffer_utils.write_model(model, str(path))
    with pytest.raises(SourceError, match=message) as info:
        open_source(path)
    assert str(info.value).startswith(str(path)), info.value
    assert "\n" not in str(info.value)


def test_the_unedited_seeds_read() -> None:
    for seed in (CONV, CHAIN):
        assert read_tflite(cached(seed, OP_MODELS[seed])).graph.nodes
