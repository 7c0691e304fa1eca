"""Quantized .tflite files (weight-only and full integer) against TFLite's interpreter, through
the product path: the corpus (tests/tflite_quant_corpus.py; a few in CI, the rest `-m slow`),
per-op models in full int8, uint8 edges, and the checks that a broken port fails."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch

pytest.importorskip("tensorflow")

from tf2torch.conversion.convert import convert_source
from tf2torch.errors import UnsupportedError
from tf2torch.sources import open_source
from tf2torch.verification.checks import graph_reference, verify_graph
from tflite_models import OP_MODELS, cached
from tflite_quant_corpus import all_cases, figures, verify_case
from tflite_value_models import CORPUS

# On an all-zeros image, ConvNeXtLarge's int8 LayerNorms see zero variance: rsqrt(eps)
# amplifies the last bit, and TFLite's own runtimes (XNNPACK, builtin and reference kernels)
# disagree by 4 output steps there (2026-11-28). On that input the simulation is held to the
# runtimes' spread (it is 3 steps from the default runtime); on the random batch, to one step
# (it is bit-exact).
SPREAD_ON_ZEROS = {"q_convnextlarge_64"}


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=[pytest.mark.slow] if c.slow
                                               else []) for c in all_cases()])
def test_corpus_verifies_with_its_status(case, record_figures) -> None:
    start = time.perf_counter()
    report, conversion = verify_case(case)
    record_figures("tflite-quantized",
                   **figures(case, report, conversion, time.perf_counter() - start))
    assert report.passed, report.table()
    expected = {"simulate": "within-one-step", "float": "within-quantization-error"}
    if case.form.startswith("int8") and case.quantized == "simulate" and \
            case.name in SPREAD_ON_ZEROS:
        by_input = {c.case: c.status for c in report.comparisons}
        assert by_input.pop("zeros") in ("within-one-step", "within-runtime-spread")
        assert set(by_input.values()) == {"within-one-step"}, report.table()
    elif case.form.startswith("int8"):
        assert report.status == expected[case.quantized], report.table()
    elif case.form == "dynamic":  # a weight-only file is never reported as exact
        assert report.status in ("within-quantization-error", "match"), report.table()
        quantized = report.status == "within-quantization-error"
        assert quantized == bool(open_source(cached(case.name, case.build, case.form))
                                 .meta["quantization"]), report.table()
    twin_rows = [c for c in report.comparisons if c.against]
    assert bool(twin_rows) == (report.status == "within-quantization-error")
    assert all(c.status == "match" for c in twin_rows), report.table()


# Per-op int8 models: each kernel's simulation against the interpreter (every one of these
# is bit-exact here; the bound is one step).
QUANT_OPS = ["conv_2d_same_relu6", "conv_2d_valid_dilated", "conv_2d_grouped",
             "depthwise_multiplier", "transpose_conv_same", "transpose_conv_valid",
             "fully_connected_3d", "pools_same", "binary_ops", "broadcast_constants",
             "gelu_tanh_prelu", "mean_keepdims", "reshape_transpose", "resize_nearest",
             "strided_slice", "split_and_pack", "depth_to_space", "mirror_pad"]


def _verify(path, quantized: str = "simulate"):
    source = open_source(path)
    conversion = convert_source(source, quantized=quantized)
    return verify_graph(conversion, graph_reference(source)), conversion


_CI_OPS = {"conv_2d_same_relu6", "depthwise_multiplier", "transpose_conv_valid",
           "fully_connected_3d", "pools_same", "binary_ops", "mean_keepdims", "resize_nearest"}


@pytest.mark.parametrize("name", [pytest.param(n, marks=[] if n in _CI_OPS else [pytest.mark.slow])
                                  for n in QUANT_OPS])
def test_int8_op_simulation_within_one_step(name: str) -> None:
    report, _ = _verify(cached(name, OP_MODELS[name], "int8"))
    assert report.passed and report.status == "within-one-step", report.table()


@pytest.mark.parametrize("name", ["conv_2d_same_relu6", "pools_same", "softmax_axis"])
def test_uint8_edges(name: str) -> None:
    """uint8 input and output (the model quantizes at its edges): the interface stays
    real-valued, the interpreter is fed the quantized input."""
    path = cached(name, OP_MODELS[name], "int8-uint8io")
    source = open_source(path)
    edges = source.meta["quantization"]
    assert {e["dtype"] for e in edges["inputs"] + edges["outputs"]} == {"uint8"}
    for quantized, status in (("simulate", "within-one-step"),
                              ("float", "within-quantization-error")):
        report, _ = _verify(path, quantized)
        assert report.passed and report.status == status, report.table()


def _damage(conversion, pick: str) -> None:
    """Scale one weight tensor of the port by 3% (a wrong layout or epsilon does worse)."""
    with torch.no_grad():
        for name, tensor in conversion.net.named_parameters():
            if pick in name and name.endswith("weight"):
                tensor.mul_(1.03)
                return
    raise AssertionError(f"no parameter like {pick}")


def test_a_damaged_simulation_fails() -> None:
    path = cached("conv_2d_same_relu6", OP_MODELS["conv_2d_same_relu6"], "int8")
    source = open_source(path)
    conversion = convert_source(source)
    _damage(conversion, "conv")
    report = verify_graph(conversion, graph_reference(source))
    assert not report.passed, report.table()


def test_a_damaged_float_port_fails_against_the_twin() -> None:
    """The float form's bound against the file is the file's own quantization error; the
    twin holds it to the float32 bound, where a damaged weight is far out."""
    path = cached("conv_2d_same_relu6", OP_MODELS["conv_2d_same_relu6"], "int8")
    source = open_source(path)
    conversion = convert_source(source, quantized="float")
    _damage(conversion, "conv")
    report = verify_graph(conversion, graph_reference(source))
    assert not report.passed, report.table()
    twin_failures = [c for c in report.comparisons if c.against and not c.passed]
    assert twin_failures and max(c.max_abs / c.bound for c in twin_failures) > 10, \
        report.table()


def test_simulation_refuses_the_integer_lstm_in_one_line() -> None:
    source = open_source(cached("lstm_fused", CORPUS["lstm_fused"], "int8"))
    with pytest.raises(UnsupportedError) as info:
        convert_source(source)
    message = str(info.value)
    assert "UNIDIRECTIONAL_SEQUENCE_LSTM" in message and "--quantized float" in message
    assert "\n" not in message


def test_per_op_on_an_int8_model_names_the_first_op_beyond_one_step() -> None:
    from tf2torch.verification.layerwise.perop import compare_per_op, first_failure

    source = open_source(cached("q_mobilenetv2_96", _app("MobileNetV2", 96), "int8"))
    conversion = convert_source(source)
    x = np.random.default_rng(0).uniform(-1, 1, (1, 96, 96, 3)).astype(np.float32)
    diffs = compare_per_op(source, conversion.net, x)
    assert len(diffs) == len(source.graph.nodes) and first_failure(diffs) is None
    steps = {d.tensor: d.bound for d in diffs}
    assert steps[source.graph.nodes[5].outputs[0]] < 0.1  # one step, not a float bound
    target = [n for n in source.graph.nodes if n.op == "CONV_2D"][5]
    _damage(conversion, target.name + ".")
    first = first_failure(compare_per_op(source, conversion.net, x))
    assert first is not None and first.node == target.name


def _app(name: str, size: int):
    from tflite_models import keras_application

    return keras_application(name, size)


def test_cli_records_the_form_in_the_card(tmp_path) -> None:
    from tf2torch.cli import main

    path = cached("conv_2d_same_relu6", OP_MODELS["conv_2d_same_relu6"], "int8")
    for form in ("simulate", "float"):
        out = tmp_path / form
        assert main(["convert", str(path), "-o", str(out), "--quantized", form]) == 0
        card = json.loads((out / "card.json").read_text())
        assert card["quantization"]["form"] == form
        assert card["quantization"]["kind"] == "full-integer"
        assert card["verification"]["status"] != "match"
        table = card["config"]["graph"]["meta"]["quantization"]
        assert all(len(p["scale"]) == len(p["zero_point"]) for p in table.values())
        assert "## Quantization" in (out / "README.md").read_text()
