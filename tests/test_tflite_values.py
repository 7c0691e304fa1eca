"""The value ops (comparisons, logic, selection, run-time shapes, fills, gathers, scatters,
signal ops) and the fused LSTMs against TFLite's interpreter, at the file's batch and at
another, plus the op files TensorFlow's converter never writes (rewritten with its tools)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("tensorflow")

from tf2torch.conversion.convert import convert_source
from tf2torch.conversion.graph import convert_graph
from tf2torch.errors import UnsupportedError
from tf2torch.references.tflite import tflite_runner
from tf2torch.sources.tflite.reader import read_tflite
from tf2torch.verification.checks import graph_reference, verify_graph
from tflite_models import cache_dir, cached, net_runner, verify_tflite
from tflite_value_models import (
    CORPUS,
    VALUE_MODELS,
    bidirectional_lstm_file,
    embedding_lookup_file,
    l2_pool_file,
)


@pytest.mark.parametrize("name", sorted(VALUE_MODELS))
def test_value_op_matches_interpreter(name: str) -> None:
    report = verify_tflite(cached(name, VALUE_MODELS[name]))
    assert report.passed, report.table()


@pytest.mark.parametrize("name", ["fill_shape_range_gather", "scatter_nd", "static_where"])
def test_any_batch_runs(name: str) -> None:
    """Shapes computed at run time: a batch of 5 (the file was never run at 5) matches."""
    path = cached(name, VALUE_MODELS[name])
    source = read_tflite(path)
    x = np.random.default_rng(1).uniform(-1, 1, (5, *source.graph.inputs[0].shape))
    x = x.astype(np.float32)
    ours = net_runner(convert_graph(source))(x)
    ref = tflite_runner(source)(x)
    for key, value in ref.items():
        np.testing.assert_allclose(ours[key], value, atol=1e-5)


def test_ops_only_rewritten_files_hold() -> None:
    wanted = {"EMBEDDING_LOOKUP", "BIDIRECTIONAL_SEQUENCE_LSTM", "L2_POOL_2D"}
    for path in (embedding_lookup_file(cache_dir()), bidirectional_lstm_file(cache_dir()),
                 l2_pool_file(cache_dir())):
        source = read_tflite(path)
        assert wanted & set(source.graph.op_counts())
        report = verify_tflite(path)
        assert report.passed, report.table()


def test_fused_lstm_is_an_nn_lstm() -> None:
    source = read_tflite(cached("lstm_fused", CORPUS["lstm_fused"]))
    net = convert_graph(source).net
    assert any(isinstance(m, torch.nn.LSTM) for m in net.modules())


def test_data_dependent_where_is_refused_naming_it() -> None:
    def build():
        import keras
        import tensorflow as tf

        inp = keras.Input((6,))
        out = keras.layers.Lambda(lambda t: tf.cast(tf.shape(tf.where(t > 0.0))[0:1],
                                                    tf.float32) + t)(inp)
        return keras.Model(inp, out)

    source = read_tflite(cached("data_dependent_where", build))
    with pytest.raises(UnsupportedError, match=r"WHERE.*only a shape-derived one converts"):
        convert_graph(source)


def test_keras_3_recurrent_loops_unroll_into_shared_modules() -> None:
    """A Keras 3 GRU is a WHILE loop in TFLite: unrolled at read time, its 12 iterations
    share the body's weight-bearing modules (one parameter set, as in the file)."""
    source = read_tflite(cached("gru_loop", CORPUS["gru_loop"]))
    assert "WHILE" not in source.graph.op_counts()
    modules = {n.module for n in source.graph.nodes if n.op == "FULLY_CONNECTED"}
    assert len(modules) == 3  # two in the body (input and recurrent kernels), the head
    conversion = convert_source(source)
    stored = sum(int(np.prod(spec.shape)) for spec in source.graph.weights.values())
    assert sum(p.numel() for p in conversion.net.parameters()) <= stored
    report = verify_graph(conversion, graph_reference(source))  # batch fixed at 1: per sample
    assert report.passed and report.status == "match", report.table()


def test_a_loop_whose_condition_reads_data_is_refused_naming_it() -> None:
    def build():
        import keras
        import tensorflow as tf

        def halve_until_small(t):
            return tf.while_loop(lambda x: tf.reduce_max(tf.abs(x)) > 0.1, lambda x: [x / 2.0],
                                 [t])[0]

        inp = keras.Input((4,), batch_size=1)
        return keras.Model(inp, keras.layers.Lambda(halve_until_small)(inp))

    with pytest.raises(UnsupportedError, match=r"WHILE .*condition depends on the model's data"):
        read_tflite(cached("data_loop", build))
