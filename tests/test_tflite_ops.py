"""Every TFLite op family, converted and compared with the TFLite interpreter's outputs."""

from __future__ import annotations

import pytest

pytest.importorskip("tensorflow")

from tflite_models import INPUT_RANGES, OP_MODELS, cached, verify_tflite


@pytest.mark.parametrize("name", sorted(OP_MODELS))
def test_op_matches_interpreter(name: str) -> None:
    low, high = INPUT_RANGES.get(name, (-1.0, 1.0))
    report = verify_tflite(cached(name, OP_MODELS[name]), low=low, high=high)
    assert report.passed, report.table()


@pytest.mark.parametrize("name", ["conv_2d_same_relu6", "depthwise_multiplier", "pools_same",
                                  "resize_bilinear", "transpose_conv_same", "softmax_axis"])
def test_nchw_layout_matches_interpreter(name: str) -> None:
    report = verify_tflite(cached(name, OP_MODELS[name]), layout="nchw")
    assert report.passed, report.table()


@pytest.mark.parametrize("name", ["conv_2d_same_relu6", "depthwise_multiplier",
                                  "fully_connected_3d", "transpose_conv_same"])
def test_float16_weights_match_interpreter(name: str) -> None:
    report = verify_tflite(cached(name, OP_MODELS[name], "float16"))
    assert report.passed, report.table()
