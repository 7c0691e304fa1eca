"""The frozen-graph worker (`references/_tensorflow_worker.py`) imports TensorFlow's graph
runtime without its public API and feeds the graph's weights with each run: its answers must
still be TensorFlow's own, as `import tensorflow` gives them in this process with the
constants left in the graph."""

from __future__ import annotations

import numpy as np
import pytest

from tf2torch.errors import MissingDependencyError, SourceError

pytest.importorskip("tensorflow")


@pytest.fixture(scope="module")
def frozen(standin):
    release = standin(0.35, 96)
    return next(release.prefix.parent.glob("*_frozen.pb"))


def test_the_worker_answers_as_tensorflow_does_in_this_process(frozen) -> None:
    from tf2torch.references.tensorflow import frozen_graph_reference
    from tf2torch.references.tensorflow_worker import TensorFlowWorker

    x = np.random.default_rng(3).uniform(-1, 1, (2, 96, 96, 3)).astype(np.float32)
    with TensorFlowWorker() as worker:
        got = worker.frozen_graph(frozen).run(x)
        # the full import works too, but costs 2.3 s and 135 MiB (issue 13): a TensorFlow
        # that moved the runtime's modules must show here, not only in the benchmark
        assert worker.imported == "graph runtime only"
    want = frozen_graph_reference(frozen).run(x)
    assert np.abs(want["logits"]).max() > 1  # logits, not a saturated or flat output
    for name in ("logits", "probabilities"):
        np.testing.assert_allclose(got[name], want[name], rtol=1e-5, atol=1e-5, err_msg=name)


def test_weights_become_placeholders_and_shape_constants_stay(frozen) -> None:
    import tensorflow as tf

    from tf2torch.references.tensorflow import (
        FED_CONSTANT_BYTES,
        constants_as_placeholders,
        load_graph_def,
    )

    graph_def = load_graph_def(frozen)
    before = {n.name: (tf.make_ndarray(n.attr["value"].tensor), n.attr["value"].tensor.ByteSize())
              for n in graph_def.node if n.op == "Const"}
    fed = constants_as_placeholders(tf, graph_def)
    nodes = {n.name: n for n in graph_def.node}
    assert fed and len(fed) < len(before)  # weights fed; small constants (shapes, axes) kept
    for name, (value, size) in before.items():
        node = nodes[name]
        if f"{name}:0" in fed:
            assert size > FED_CONSTANT_BYTES
            assert node.op == "Placeholder" and set(node.attr) == {"dtype", "shape"}
            assert tf.as_dtype(node.attr["dtype"].type) == tf.as_dtype(value.dtype)
            assert [d.size for d in node.attr["shape"].shape.dim] == list(value.shape)
            np.testing.assert_array_equal(fed[f"{name}:0"], value)
        else:
            assert node.op == "Const" and size <= FED_CONSTANT_BYTES


def test_a_graph_loaded_ahead_answers_as_tensorflow_does(frozen, tmp_path) -> None:
    """`load_ahead` sends the load before the worker's import is done (convert goes on
    meanwhile); `frozen_graph` takes that answer, and a different graph is still loaded."""
    from tf2torch.references.tensorflow import frozen_graph_reference
    from tf2torch.references.tensorflow_worker import TensorFlowWorker

    x = np.random.default_rng(4).uniform(-1, 1, (1, 96, 96, 3)).astype(np.float32)
    want = frozen_graph_reference(frozen).run(x)["logits"]
    with TensorFlowWorker() as worker:
        worker.load_ahead(frozen)
        np.testing.assert_allclose(worker.frozen_graph(frozen).run(x)["logits"], want,
                                   rtol=1e-5, atol=1e-5)
    other = tmp_path / "other_frozen.pb"
    other.write_bytes(frozen.read_bytes())
    broken = tmp_path / "broken_frozen.pb"
    broken.write_bytes(b"\x0a\xff\xff\xff\xff\x0f not a graph")
    with TensorFlowWorker() as worker:
        worker.load_ahead(broken)  # not the graph asked for: its failure is not raised
        np.testing.assert_allclose(worker.frozen_graph(other).run(x)["logits"], want,
                                   rtol=1e-5, atol=1e-5)
    with TensorFlowWorker() as worker:
        worker.load_ahead(broken)  # the one asked for: raised when asked, naming the file
        with pytest.raises(SourceError, match=r"TensorFlow could not load .*broken_frozen\.pb"):
            worker.frozen_graph(broken)


def test_a_worker_without_tensorflow_says_so_after_a_load_ahead(frozen, tmp_path,
                                                                monkeypatch) -> None:
    """A worker that ended before `load_ahead` wrote to it (no TensorFlow there) is
    reported when the graph is asked for as a missing dependency, which `convert` turns
    into "not verified", not as a crash."""
    import time

    from tf2torch.references.tensorflow_worker import TensorFlowWorker

    fake = tmp_path / "tensorflow"
    fake.mkdir()
    (fake / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'tensorflow'\")\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    worker = TensorFlowWorker()
    deadline = time.monotonic() + 60
    while worker._process._proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    worker.load_ahead(frozen)
    with pytest.raises(MissingDependencyError, match=r"needs TensorFlow"):
        worker.frozen_graph(frozen)
    worker.close()
