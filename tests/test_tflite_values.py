"""The value ops (comparisons, logic, selection, run-time shapes, fills, gathers, scatters,
signal ops) and the fused LSTMs against TFLite's interpreter, at the file's batch and at
another, plus the op files TensorFlow's converter never writes (rewritten with its tools)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("tensorflow")

from tf2torch.conversion.graph import convert_graph
from tf2torch.errors import UnsupportedError
from tf2torch.references.tflite import tflite_runner
from tf2torch.sources.tflite.reader import read_tflite
from tflite_models import cache_dir, cached, net_runner, verify_tflite
from tflite_value_models import CORPUS, VALUE_MODELS, bidirectional_lstm_file, embedding_lookup_file


@pytest.mark.parametrize("name", sorted(VALUE_MODELS))
def test_value_op_matches_interpreter(name: str) -> None:
    report = verify_tflite(cached(name, VALUE_MODELS[name]))
    assert report.passed, report.table()


@pytest.mark.parametrize("name", ["fill_shape_range", "scatter_nd", "static_where"])
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


def test_embedding_lookup_and_bidirectional_lstm_files() -> None:
    for path in (embedding_lookup_file(cache_dir()), bidirectional_lstm_file(cache_dir())):
        source = read_tflite(path)
        assert {"EMBEDDING_LOOKUP", "BIDIRECTIONAL_SEQUENCE_LSTM"} & set(source.graph.op_counts())
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
