"""`predict --engine ray`: the same rows as local predict, exactly once, written whole.

One local Ray (2 CPUs) serves the module; one test starts its own through the CLI, as a
user's first run does. The model is a small classifier built with TensorFlow and converted here.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import tf2torch
from tf2torch.cli import main
from tf2torch.packages.predict import collect_images, predict_files

ray = pytest.importorskip("ray")
pq = pytest.importorskip("pyarrow.parquet")
skimage_data = pytest.importorskip("skimage.data")

CORRUPT = {"truncated.jpg", "text.jpg", "empty.png"}
GENERATED = 240
# The actor's process title while it runs a batch (Ray names it after the operator).
ACTOR_TITLE = "MapBatches(PackagePredictor)"


@pytest.fixture(scope="module")
def classifier(tmp_path_factory) -> tuple[Path, object]:
    """A small seeded Keras ImageNet classifier built with TensorFlow, converted here.

    Flatten after the convolutions keeps where things are in the picture: its logits move
    with every pixel, so a mistake in decoding, encoding or batching changes the answers.
    """
    tf = pytest.importorskip("tensorflow")
    from keras_models import randomize_statistics

    tf.keras.utils.set_random_seed(15)
    inp = tf.keras.Input((40, 40, 3))
    x = tf.keras.layers.Rescaling(1 / 127.5, offset=-1)(inp)
    x = tf.keras.layers.Conv2D(12, 3, strides=2, padding="same")(x)
    x = tf.keras.layers.BatchNormalization()(x)
    x = tf.keras.layers.ReLU(6.0)(x)
    x = tf.keras.layers.DepthwiseConv2D(3, strides=2, padding="same", activation="relu")(x)
    x = tf.keras.layers.Flatten()(x)
    model = tf.keras.Model(inp, tf.keras.layers.Dense(1000)(x), name="ray_classifier")
    randomize_statistics(model, seed=15)
    head = model.layers[-1]
    head.kernel.assign(head.kernel * 10.0)  # logits spread over a few units, not near-uniform
    folder = tmp_path_factory.mktemp("keras")
    model.save(folder / "classifier.keras")
    tf2torch.convert(folder / "classifier.keras", folder / "pkg", labels="imagenet")
    return folder / "pkg", model


@pytest.fixture(scope="module")
def package(classifier) -> Path:
    return classifier[0]


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    """A few hundred generated images of mixed sizes and modes, a real photo, 3 corrupt files."""
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for i in range(GENERATED):
        h, w = rng.integers(48, 160, 2)
        ramp = np.linspace(0, 255, w, dtype=np.float32)[None, :, None]
        pixels = np.clip(rng.normal(ramp, 40, (h, w, 3)), 0, 255).astype(np.uint8)
        image = Image.fromarray(pixels)
        image = [image, image.convert("L"), image.convert("RGBA"), image][i % 4]
        image.save(folder / f"gen{i:03d}.{'jpg' if i % 4 == 3 else 'png'}")
    Image.fromarray(skimage_data.chelsea()).save(folder / "chelsea.jpg")
    photo = (folder / "chelsea.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(photo[: len(photo) // 2])
    (folder / "text.jpg").write_text("not an image")
    (folder / "empty.png").write_bytes(b"")
    return folder


@pytest.fixture(scope="module")
def cluster():
    """One local Ray for the module; predict_dataset uses it and leaves it running."""
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield
    ray.shutdown()


def _rows(path: Path) -> list[dict]:
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text().splitlines()]
    return pq.read_table(path).to_pylist()


def _assert_same_answers(local: list, rows: list[dict]) -> None:
    assert [r["path"] for r in rows] == [r.path for r in local]  # exactly once, same order
    for want, got in zip(local, rows, strict=True):
        assert (got["error"] is None) == (want.error is None), want.path
        assert got["indices"] == [p.index for p in want.predictions], want.path
        assert got["labels"] == [p.label for p in want.predictions], want.path
        np.testing.assert_allclose(got["scores"], [p.probability for p in want.predictions],
                                   rtol=1e-5, atol=1e-7, err_msg=want.path)


def test_same_answers_as_local_predict(classifier, images, cluster, tmp_path) -> None:
    package, keras_model = classifier
    missing = images / "missing.jpg"  # named explicitly: reported, as locally
    inputs = [images, missing]
    local = predict_files(tf2torch.load(package), collect_images(inputs), batch_size=16)
    job = tf2torch.predict_dataset(package, inputs, tmp_path / "labels.parquet", batch_size=16,
                                   concurrency=2)
    rows = _rows(tmp_path / "labels.parquet")
    _assert_same_answers(local, rows)
    errors = {Path(r["path"]).name: r["error"] for r in rows if r["error"] is not None}
    assert set(errors) == CORRUPT | {"missing.jpg"}
    assert all(name in message for name, message in errors.items())
    assert (job.images, job.errors) == (GENERATED + 5, 4)
    assert job.cpus_per_actor == 0.5  # two actors on 2 CPUs leave one for decoding
    # and both are Keras's answers on the same pixels
    model = tf2torch.load(package)
    ok = [r for r in rows if r["error"] is None][::25]
    pixels = model.encoder([r["path"] for r in ok]).numpy()
    keras_top = np.argsort(-keras_model(pixels, training=False).numpy(), axis=1)[:, :5]
    assert [r["indices"] for r in ok] == keras_top.tolist()
    chelsea = next(r for r in rows if r["path"].endswith("chelsea.jpg"))
    assert len(chelsea["labels"]) == 5 and chelsea["wnids"][0].startswith("n")
    assert [p.name for p in tmp_path.iterdir()] == ["labels.parquet"]  # no partial left


def test_killed_actor_is_restarted_and_every_input_appears_once(package, images, cluster,
                                                                 tmp_path) -> None:
    killer = _ActorKiller()
    killer.start()
    try:
        tf2torch.predict_dataset(package, [images], tmp_path / "labels.jsonl", batch_size=8)
    finally:
        killer.stop.set()
        killer.join()
    assert killer.killed is not None, "no model actor was seen running a batch"
    assert killer.restarted, "Ray did not start the model actor again"
    rows = _rows(tmp_path / "labels.jsonl")
    local = predict_files(tf2torch.load(package), collect_images([images]), batch_size=8)
    _assert_same_answers(local, rows)


class _ActorKiller(threading.Thread):
    """SIGKILLs the first model actor seen running a batch; then watches for its successor."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.stop, self.killed, self.restarted = threading.Event(), None, set()

    def run(self) -> None:
        while not self.stop.wait(0.005):
            actors = _processes_titled(ACTOR_TITLE)
            if self.killed is None:
                busy = [pid for pid, title in actors.items() if title.endswith(".submit")]
                if busy:
                    os.kill(busy[0], signal.SIGKILL)
                    self.killed = busy[0]
            else:
                self.restarted |= set(actors) - {self.killed}


def _processes_titled(fragment: str) -> dict[int, str]:
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
            except (OSError, UnicodeDecodeError):
                continue
            if title.startswith("ray::") and fragment in title:
                found[int(entry.name)] = title
    return found


def test_failed_job_leaves_no_output(package, images, cluster, tmp_path) -> None:
    def interrupt(done: int, total: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        tf2torch.predict_dataset(package, [images], tmp_path / "labels.parquet",
                                 on_progress=interrupt)
    assert list(tmp_path.iterdir()) == []


def test_cli_refuses_an_existing_output_and_overwrites_whole(package, images, cluster, tmp_path,
                                                             capsys) -> None:
    out = tmp_path / "labels.jsonl"
    args = ["predict", str(package), str(images), "--output", str(out), "--top", "3"]
    assert main(args) == 0  # the local engine writes the same rows
    local = out.read_bytes()
    assert main([*args, "--engine", "ray"]) == 2
    assert "already exists (use --overwrite" in capsys.readouterr().err
    assert out.read_bytes() == local
    assert main([*args, "--engine", "ray", "--overwrite", "--batch-size", "32", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["images"], summary["errors"]) == (GENERATED + 4, 3)
    rows = _rows(out)  # replaced whole, not appended to
    assert len(rows) == GENERATED + 4 and len({r["path"] for r in rows}) == len(rows)
    for a, b in zip([json.loads(line) for line in local.decode().splitlines()], rows, strict=True):
        assert (a["path"], a["labels"], a["error"]) == (b["path"], b["labels"], b["error"])
        np.testing.assert_allclose(a["scores"], b["scores"], rtol=1e-5, atol=1e-7)


def _cli(*argv: str) -> subprocess.CompletedProcess:
    tf2torch_cli = Path(sys.executable).with_name("tf2torch")
    return subprocess.run([str(tf2torch_cli), *argv], capture_output=True, text=True,
                          timeout=300, check=False)


def test_cli_starts_its_own_local_ray(package, images, tmp_path) -> None:
    """The default: no --address, no Ray in the process → a local Ray for the job."""
    out = tmp_path / "labels.parquet"
    done = _cli("predict", str(package), str(images / "chelsea.jpg"), str(images / "text.jpg"),
                "--engine", "ray", "--output", str(out), "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    assert summary["cluster_start_seconds"] > 0 and summary["errors"] == 1
    assert [Path(r["path"]).name for r in _rows(out)] == ["chelsea.jpg", "text.jpg"]
    assert summary["package_routes"] == ["shared path"]  # the actors loaded it from disk


def test_cli_joins_a_running_cluster(package, images, cluster, tmp_path, capsys) -> None:
    out = tmp_path / "labels.jsonl"
    done = _cli("predict", str(package), str(images / "chelsea.jpg"), "--engine", "ray",
                "--address", ray.get_runtime_context().gcs_address, "--output", str(out), "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout)["cluster_start_seconds"] == 0  # joined, not started
    # Without --output the rows print as local predict prints them.
    assert main(["predict", str(package), str(images / "chelsea.jpg"), "--engine", "ray",
                 "--json", "--top", "2"]) == 0
    [result] = json.loads(capsys.readouterr().out)
    assert [p["index"] for p in result["predictions"]] == _rows(out)[0]["indices"][:2]


def test_package_reaches_actors_through_the_object_store(package, cluster, tmp_path) -> None:
    from tf2torch.packages.scale.shipping import Shipment, receive, ship

    shipment = ship(package)
    _, route = receive(shipment)
    assert route == "shared path"
    elsewhere = Shipment(str(tmp_path / "not-on-this-node"), shipment.weights_sha256,
                         shipment.files)
    model, route = receive(elsewhere)
    assert route == "object store"
    want = tf2torch.load(package).net.state_dict()
    got = model.net.state_dict()
    assert all(np.array_equal(got[k].numpy(), want[k].numpy()) for k in want)


def test_an_actor_runs_float32_without_tf32(package) -> None:
    """PyTorch lets cuDNN use TF32 by default, which moved logits by 1e-2 on an H200: a GPU
    actor must give local predict's rows, so the actor (a process of ours) turns it off."""
    import torch

    from tf2torch.packages.card import Card
    from tf2torch.packages.package import CARD
    from tf2torch.packages.scale.shipping import Shipment
    from tf2torch.packages.scale.workers import PackagePredictor

    before = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = True
    try:
        shipment = Shipment(str(package), Card.read(package / CARD).weights_sha256, None)
        PackagePredictor(shipment, top=1, backend="torch", num_gpus=0,
                         threads=torch.get_num_threads())
        assert not torch.backends.cudnn.allow_tf32
        assert not torch.backends.cuda.matmul.allow_tf32
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before


def test_ray_options_are_checked_before_any_work(package, images, tmp_path, capsys) -> None:
    cases = {("--concurrency", "2"): "add --engine ray",
             ("--engine", "ray", "--annotate", str(tmp_path)): "without --annotate",
             ("--output", str(tmp_path / "labels.csv")): "unknown results format"}
    for extra, message in cases.items():
        assert main(["predict", str(package), str(images), *extra]) == 2
        assert message in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["predict", str(package), str(images), "--engine", "ray", "--concurrency", "3-1"])


def test_engine_ray_without_ray_says_how_to_install(package, images, monkeypatch, capsys) -> None:
    for name in ("ray", "ray.data"):
        monkeypatch.setitem(sys.modules, name, None)
    assert main(["predict", str(package), str(images), "--engine", "ray"]) == 2
    assert "pip install 'tf2torch[ray]'" in capsys.readouterr().err


def test_core_imports_neither_ray_nor_pyarrow() -> None:
    code = ("import sys, tf2torch, tf2torch.api, tf2torch.cli.commands, tf2torch.packages.predict;"
            "print([m for m in ('ray', 'pyarrow', 'pandas') if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
