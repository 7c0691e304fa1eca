"""The TFLite reader: structure, lazy weights, fp16 folding, buffer forms, and refusals."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from tf2torch.conversion.graph import convert_graph
from tf2torch.errors import SourceError, UnsupportedError
from tf2torch.sources import open_source
from tf2torch.sources.tflite.reader import read_tflite
from tflite_models import OP_MODELS, cache_dir, cached, verify_tflite, write_tflite

SMALL = "conv_2d_same_relu6"


def test_reader_yields_graph_weights_and_signature() -> None:
    source = open_source(cached(SMALL, OP_MODELS[SMALL]))
    assert source.format == "tflite"
    graph = source.graph
    assert graph.op_counts() == {"CONV_2D": 1}
    assert graph.inputs[0].shape == (17, 17, 3)
    assert graph.output_names == ["output_0"]  # the serving signature's name
    assert source.meta["signatures"] == ["serving_default"]
    node = graph.nodes[0]
    assert node.attrs["activation"] == "relu6" and node.attrs["padding"] == "same"
    shapes = {tuple(source.tensors.info(n).shape) for n in source.tensors}
    assert shapes == {(8, 3, 3, 3), (8,)}
    assert all(source.tensors[n].dtype == np.float32 for n in source.tensors)


def test_reader_imports_no_tensorflow() -> None:
    path = cached(SMALL, OP_MODELS[SMALL])
    code = ("import sys; from tf2torch.sources.tflite.reader import read_tflite; "
            f"s = read_tflite({str(path)!r}); [s.tensors[n] for n in s.tensors]; "
            "assert 'tensorflow' not in sys.modules, 'tensorflow imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_float16_weights_are_folded_to_float32() -> None:
    source = read_tflite(cached(SMALL, OP_MODELS[SMALL], "float16"))
    assert "DEQUANTIZE" not in source.graph.op_counts()
    weights = [source.tensors[n] for n in source.tensors]
    assert weights and all(w.dtype == np.float32 for w in weights)


def test_buffer_offset_form_reads_the_same_weights() -> None:
    """Large models keep weights after the flatbuffer (Buffer.offset/size)."""
    import keras
    import tensorflow as tf

    path = cache_dir() / "buffer_offset.tflite"
    if not path.exists():
        keras.utils.set_random_seed(0)
        converter = tf.lite.TFLiteConverter.from_keras_model(OP_MODELS[SMALL]())
        converter._experimental_use_buffer_offset = True
        path.write_bytes(converter.convert())
    report = verify_tflite(path)
    assert report.passed, report.table()


@pytest.mark.parametrize("cut", [0, 7, 100, -200])
def test_truncated_or_corrupt_file_is_refused(tmp_path, cut: int) -> None:
    data = cached(SMALL, OP_MODELS[SMALL]).read_bytes()
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(data[:cut] if cut >= 0 else data[:cut // 10] + b"\xff" * 64)
    with pytest.raises(SourceError):
        source = read_tflite(bad)
        [source.tensors[n] for n in source.tensors]


def test_not_a_tflite_file_is_refused(tmp_path) -> None:
    bad = tmp_path / "model.tflite"
    bad.write_bytes(b"\x00" * 4 + b"NOPE" + b"\x00" * 64)
    with pytest.raises(SourceError, match="TFL3"):
        read_tflite(bad)


def test_quantized_weights_are_served_dequantized_with_their_parameters() -> None:
    """Every int8 constant reads as scale · (q − zero point), checked against the values and
    parameters TensorFlow's interpreter reports for the same tensor."""
    from tf2torch.references.tensorflow import tflite_interpreter

    path = cached(SMALL, OP_MODELS[SMALL], "int8")
    source = read_tflite(path)
    summary = source.meta["quantization"]
    assert summary["kind"] == "full-integer" and summary["activations"] == ["int8"]
    assert summary["weights"] == {"int8": 1, "int32": 1} and summary["per_channel_weights"] == 2
    table = source.graph.meta["quantization"]
    interpreter = tflite_interpreter(path)
    checked = 0
    for detail in interpreter.get_tensor_details():
        if detail["name"] not in source.tensors:
            continue
        params = detail["quantization_parameters"]
        q = interpreter.get_tensor(detail["index"]).astype(np.float64)
        axis = params["quantized_dimension"]
        shape = [1] * q.ndim
        shape[axis] = -1
        expected = params["scales"].reshape(shape) * (q - params["zero_points"].reshape(shape))
        np.testing.assert_allclose(source.tensors[detail["name"]], expected, rtol=1e-6)
        assert table[detail["name"]]["scale"] == pytest.approx(list(params["scales"]))
        checked += 1
    assert checked == 2
    # the edges: real-valued interface, QUANTIZE/DEQUANTIZE nodes recorded in the IR
    ops = [n.op for n in source.graph.nodes]
    assert ops[0] == "QUANTIZE" and ops[-1] == "DEQUANTIZE"


def _unsupported_model():
    import keras
    import tensorflow as tf

    inp = keras.Input((6, 3), batch_size=2)

    def reverse(t):
        return tf.reverse_sequence(t, [3, 5], seq_axis=1, batch_axis=0)

    noisy = keras.layers.Lambda(lambda t: t + tf.random.normal(tf.shape(t)))(inp)
    return keras.Model(inp, [keras.layers.Lambda(reverse)(inp),
                             keras.layers.Lambda(reverse)(noisy)])


def test_unsupported_ops_are_listed_with_counts_and_reasons_before_any_work() -> None:
    source = read_tflite(cached("unsupported_ops_v3", _unsupported_model))
    with pytest.raises(UnsupportedError) as info:
        convert_graph(source)
    message = str(info.value)
    assert "REVERSE_SEQUENCE ×2" in message and "RANDOM_STANDARD_NORMAL ×1" in message
    assert "not converted yet" in message and "random sampling" in message
    assert "\n" not in message


def test_write_tflite_roundtrip_helper(tmp_path) -> None:
    """The fixture writer leaves no partial file behind."""
    path = write_tflite(OP_MODELS[SMALL](), tmp_path / "m.tflite")
    assert path.exists() and not path.with_suffix(".part").exists()


def test_module_rebuilds_from_ir_alone() -> None:
    """A package reloads without the .tflite: the converters need only the IR."""
    import json

    import torch

    from tf2torch.conversion.graph import build_from_ir

    source = read_tflite(cached("broadcast_constants", OP_MODELS["broadcast_constants"]))
    conversion = convert_graph(source)
    rebuilt = build_from_ir(json.loads(json.dumps(conversion.ir_json)))
    rebuilt.load_state_dict(conversion.net.state_dict())
    x = torch.randn(2, *source.graph.inputs[0].shape)
    assert torch.equal(rebuilt(x), conversion.net(x))


def test_per_op_comparison_covers_every_op() -> None:
    from tf2torch.verification.layerwise.perop import compare_isolated, compare_per_op, first_failure

    path = cached("pools_same", OP_MODELS["pools_same"])
    source = read_tflite(path)
    net = convert_graph(source).net
    x = np.random.default_rng(0).uniform(-1, 1, (2, *source.graph.inputs[0].shape))
    x = x.astype(np.float32)
    for diffs in (compare_per_op(source, net, x),
                  compare_isolated(source, net, x)):
        assert [d.node for d in diffs] == [n.name for n in source.graph.nodes]
        assert first_failure(diffs) is None


def test_fused_activation_tflite_refuses_is_refused_by_name(tmp_path) -> None:
    """FULLY_CONNECTED with a fused TANH or SIGN_BIT: TFLite's kernel refuses the file, and
    so do we, naming the op (conv and pooling kernels ignore them: see conv_fused_* models)."""
    import shutil

    from tf2torch.references.tflite import tflite_runner
    from tflite_models import _set_fused_activation

    base = cached("fully_connected_3d", OP_MODELS["fully_connected_3d"])
    for code in ("TANH", "SIGN_BIT"):
        path = tmp_path / f"fc_{code}.tflite"
        shutil.copy(base, path)
        _set_fused_activation(code, ("FULLY_CONNECTED",))(path)
        with pytest.raises(RuntimeError, match=r"FULLY_CONNECTED.*failed to prepare"):
            tflite_runner(path)(np.ones((1, 5, 6), np.float32))  # the interpreter's verdict
        with pytest.raises(UnsupportedError, match=rf"fully_connected_\d+ .*{code}"):
            read_tflite(path)


def test_unknown_fused_activation_code_is_a_corrupt_file(tmp_path) -> None:
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model(str(cached(SMALL, OP_MODELS[SMALL])))
    model.subgraphs[0].operators[0].builtinOptions.fusedActivationFunction = 42
    path = tmp_path / "bad_activation.tflite"
    flatbuffer_utils.write_model(model, str(path))
    with pytest.raises(SourceError, match=r"bad_activation.tflite: .*conv_2d_0 \(CONV_2D\): fused activation "
                       r"function 42 is not one"):
        read_tflite(path)


def test_inspect_lists_the_signatures_of_a_tflite(capsys) -> None:
    """A .tflite lists its signatures by key only (a TF graph describes each): `inspect`
    printed a TypeError on every Keras-converted file until the fuzzing of the commands
    found it."""
    from tf2torch.cli import main

    assert main(["inspect", str(cached(SMALL, OP_MODELS[SMALL]))]) == 0
    assert "signature serving_default" in capsys.readouterr().out
