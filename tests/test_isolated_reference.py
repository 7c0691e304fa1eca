"""The TFLite interpreter runs in a worker process: what kills or fails it there is one clear
error here, naming the file, and this process goes on."""

from __future__ import annotations

import os
import shutil
import signal

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from tf2torch.errors import SourceError
from tf2torch.references import isolated_tflite
from tf2torch.references.tflite import tflite_runner
from tflite_models import OP_MODELS, _set_fused_activation, cached

SMALL = "conv_2d_same_relu6"


def _worker_pid() -> int:
    return isolated_tflite._shared[0]._proc.pid


def test_runs_outside_this_process_and_matches_twice() -> None:
    path = cached(SMALL, OP_MODELS[SMALL])
    run = tflite_runner(path)
    assert _worker_pid() != os.getpid()
    x = np.random.default_rng(0).uniform(-1, 1, (2, 17, 17, 3)).astype(np.float32)
    first, again = run(x), tflite_runner(path)(x)  # two interpreters, one worker
    assert np.array_equal(first["output_0"], again["output_0"])
    assert first["output_0"].shape == (2, 9, 9, 8)


def test_a_crash_in_the_interpreter_is_an_error_naming_the_file() -> None:
    """A signal in TFLite's kernels (sent here to the worker, as a malformed file would
    cause) ends the worker, not this process; the next interpreter gets a fresh worker."""
    path = cached(SMALL, OP_MODELS[SMALL])
    run = tflite_runner(path)
    os.kill(_worker_pid(), signal.SIGSEGV)
    with pytest.raises(SourceError, match=rf"{path.name} \(.*\): TensorFlow's TFLite "
                                          r"interpreter crashed with SIGSEGV") as info:
        run(np.zeros((1, 17, 17, 3), np.float32))
    assert "\n" not in str(info.value)
    with pytest.raises(SourceError, match="stopped earlier"):
        run(np.zeros((1, 17, 17, 3), np.float32))
    fresh = tflite_runner(path)(np.zeros((1, 17, 17, 3), np.float32))
    assert np.isfinite(fresh["output_0"]).all()


def test_a_runtime_error_of_the_interpreter_is_a_source_error(tmp_path) -> None:
    """TFLite refuses a FULLY_CONNECTED with a fused TANH when it first prepares it (at the
    first invoke): a `RuntimeError` there is an `InterpreterError` here, a `SourceError`
    naming the file and the step."""
    path = tmp_path / "fc_tanh.tflite"
    shutil.copy(cached("fully_connected_3d", OP_MODELS["fully_connected_3d"]), path)
    _set_fused_activation("TANH", ("FULLY_CONNECTED",))(path)
    with pytest.raises(SourceError, match=rf"{path.name}: TensorFlow's TFLite interpreter "
                                          r"cannot run it \(invoke\): .*FULLY_CONNECTED") as info:
        tflite_runner(path)(np.ones((1, 5, 6), np.float32))
    assert isinstance(info.value, RuntimeError)


def test_a_file_the_reader_refuses_never_reaches_the_interpreter(tmp_path) -> None:
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model(str(cached(SMALL, OP_MODELS[SMALL])))
    model.subgraphs[0].operators[0].builtinOptions.padding = 7
    path = tmp_path / "padding7.tflite"
    flatbuffer_utils.write_model(model, str(path))
    isolated_tflite.close_worker()
    with pytest.raises(SourceError, match="padding 7"):
        tflite_runner(path)
    assert not isolated_tflite._shared  # no worker was started for it


def test_a_crash_in_tensorflow_running_a_graph_is_an_error_naming_the_file() -> None:
    """TensorFlow graphs run in a worker too: an abort there (a CHECK failure in a kernel,
    sent here as the signal) is one SourceError naming the file; the next graph runs."""
    from tf2torch.references import isolated_graph
    from tf2torch.references.isolated_graph import tf_graph_runner
    from tf2torch.sources import open_source
    from tf_graph_models import tf1_graph

    source = open_source(tf1_graph() / "frozen.pb")
    x = np.random.default_rng(0).uniform(-1, 1, (1, 24, 24, 3)).astype(np.float32)
    run = tf_graph_runner(source)
    assert run(x)["probabilities"].shape == (1, 10)
    os.kill(isolated_graph._shared[0]._proc.pid, signal.SIGABRT)
    with pytest.raises(SourceError, match=r"frozen.pb \(run\): TensorFlow crashed with "
                                          "SIGABRT"):
        run(x)
    assert np.isfinite(tf_graph_runner(source)(x)["probabilities"]).all()
