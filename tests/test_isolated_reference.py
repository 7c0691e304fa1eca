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
    return isolated_tflite.WORKER.current.pid


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
    isolated_tflite.WORKER.close()
    with pytest.raises(SourceError, match="padding 7"):
        tflite_runner(path)
    assert isolated_tflite.WORKER.current is None  # no worker was started for it


def test_a_crash_in_tensorflow_running_a_graph_is_an_error_naming_the_file() -> None:
    """TensorFlow graphs run in a worker too: an abort there (a CHECK failure in a kernel,
    sent here as the signal) is one SourceError naming the file; the next graph runs."""
    from tf2torch.references import isolated
    from tf2torch.references.isolated_graph import tf_graph_runner
    from tf2torch.sources import open_source
    from tf_graph_models import tf1_graph

    source = open_source(tf1_graph() / "frozen.pb")
    x = np.random.default_rng(0).uniform(-1, 1, (1, 24, 24, 3)).astype(np.float32)
    run = tf_graph_runner(source)
    assert run(x)["probabilities"].shape == (1, 10)
    os.kill(isolated.WORKER.current.pid, signal.SIGABRT)
    with pytest.raises(SourceError, match=r"frozen.pb \(run\): TensorFlow crashed with "
                                          "SIGABRT"):
        run(x)
    assert np.isfinite(tf_graph_runner(source)(x)["probabilities"]).all()


def test_a_worker_past_its_memory_cap_is_stopped_with_an_error_naming_the_file(
        monkeypatch) -> None:
    """A file that makes the runtime allocate without end must not take the machine's memory:
    past TF2TORCH_REFERENCE_MEMORY the worker is stopped (here the cap is below what importing
    TensorFlow takes, so the first request trips it), the error names the file, and the next
    worker, under the default cap, runs."""
    path = cached(SMALL, OP_MODELS[SMALL])
    isolated_tflite.WORKER.close()
    monkeypatch.setenv("TF2TORCH_REFERENCE_MEMORY", "64M")
    with pytest.raises(SourceError, match=rf"{path.name} \(load\): TensorFlow's TFLite "
                                          r"interpreter used .* GiB, over the 0.1 GiB allowed "
                                          r"\(TF2TORCH_REFERENCE_MEMORY\); stopped it"):
        tflite_runner(path)
    monkeypatch.delenv("TF2TORCH_REFERENCE_MEMORY")
    assert tflite_runner(path)(np.zeros((1, 17, 17, 3), np.float32))["output_0"].shape == \
        (1, 9, 9, 8)


def test_a_silent_worker_is_stopped_after_the_timeout(monkeypatch) -> None:
    """Past TF2TORCH_REFERENCE_TIMEOUT without an answer (here 1 s, less than importing
    TensorFlow takes) the worker is stopped and the error names the file and the variable."""
    path = cached(SMALL, OP_MODELS[SMALL])
    isolated_tflite.WORKER.close()
    monkeypatch.setenv("TF2TORCH_REFERENCE_TIMEOUT", "1")
    with pytest.raises(SourceError, match=rf"{path.name} \(load\): .* did not answer in 1 s "
                                          r"\(TF2TORCH_REFERENCE_TIMEOUT\); stopped it"):
        tflite_runner(path)
    monkeypatch.delenv("TF2TORCH_REFERENCE_TIMEOUT")
    isolated_tflite.WORKER.close()


def test_keras_runs_in_the_worker_and_its_crash_names_the_file(tmp_path) -> None:
    """Keras's own loader and model run in the reference worker: a signal there (sent here,
    as a file that crashes Keras or TensorFlow would cause) is one SourceError naming the
    file, and the next run gets a fresh worker."""
    import keras

    from tf2torch.references import isolated
    from tf2torch.references.keras import keras_runner
    from tf2torch.sources import open_source

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((5, 5, 3)), keras.layers.Conv2D(4, 3),
                              keras.layers.GlobalAveragePooling2D()])
    path = tmp_path / "small.keras"
    model.save(path)
    source = open_source(path)
    x = np.random.default_rng(0).uniform(-1, 1, (2, 5, 5, 3)).astype(np.float32)
    run = keras_runner(source)
    want = np.asarray(model(x))
    assert np.allclose(next(iter(run(x).values())), want, atol=1e-6)
    assert isolated.WORKER.current.pid != os.getpid()
    os.kill(isolated.WORKER.current.pid, signal.SIGSEGV)
    with pytest.raises(SourceError, match=r"small.keras \(run\): TensorFlow crashed with "
                                          "SIGSEGV"):
        run(x)
    assert np.allclose(next(iter(keras_runner(source)(x).values())), want, atol=1e-6)
