"""Try it, against the original frameworks: what the page shows for an upload is what
TensorFlow / Keras / the TFLite interpreter compute on the same encoded input."""

from __future__ import annotations

import io
import re
import threading
from html import unescape

import anyio
import numpy as np
import pytest
import torch
from PIL import Image

from web_repository import KERAS, LABELS, TENSOR, TFLITE, ZOO

pytest.importorskip("starlette")
from starlette.testclient import TestClient

import tf2torch
from tf2torch.web.app import Settings, create_app

tf = pytest.importorskip("tensorflow")


@pytest.fixture(scope="module")
def client(web_repo) -> TestClient:
    return TestClient(create_app(Settings(home=web_repo.home)))


def page_labels(html: str) -> list[str]:
    return [unescape(label) for label in re.findall(r'<td class="label">([^<]*)</td>', html)]


def test_the_demo_photo_on_the_slim_model_matches_tensorflow(client, web_repo) -> None:
    """The whole path (upload, encoder, inference form, decoder) against the frozen graph.
    The random-weight stand-in barely depends on its input, so the Keras and TFLite tests
    below are the ones that catch a wrong encoding (they fail on a mirrored image)."""
    from tf2torch.references.tensorflow import frozen_graph_reference

    photo = web_repo.photo.read_bytes()
    html = client.post(f"/models/{ZOO}/try", files={"file": ("astronaut.jpg", photo)}).text
    api = client.post(f"/api/models/{ZOO}/predict", files={"file": ("astronaut.jpg", photo)}).json()

    encoded = tf2torch.load(web_repo.models / ZOO).encoder([web_repo.photo]).numpy()
    name = web_repo.release.prefix.name.removesuffix(".ckpt")
    frozen = frozen_graph_reference(web_repo.release.prefix.parent / f"{name}_frozen.pb")
    probs = frozen.run(encoded.transpose(0, 2, 3, 1))["probabilities"][0]
    top = np.argsort(-probs, kind="stable")[:5]
    assert [p["index"] for p in api["predictions"]] == top.tolist()
    # log-probabilities differ as the logits do: compare at the logits' bound (1e-4), which a
    # random-weight stand-in's flat probabilities alone would not resolve
    ours = np.log([p["probability"] for p in api["predictions"]])
    assert np.abs(ours - np.log(probs[top])).max() <= 1e-4
    assert page_labels(html) == [p["label"] for p in api["predictions"]]
    assert api["input"] == "astronaut.jpg"

    annotated = client.get("/" + api["annotated"])
    assert annotated.headers["content-type"] == "image/jpeg"
    image = Image.open(io.BytesIO(annotated.content))
    assert image.size == (512, 512)  # the 512×512 photo, under the 640-pixel cap


def test_a_sample_on_the_keras_classifier_matches_keras(client, web_repo) -> None:
    api = client.post(f"/api/models/{KERAS}/predict", data={"sample": "chelsea.jpg"}).json()
    model = tf2torch.load(web_repo.models / KERAS)
    from tf2torch.web.app import _sample_bytes

    image = Image.open(io.BytesIO(_sample_bytes("chelsea.jpg")))
    logits = web_repo.keras_model(model.encoder([image]).numpy(), training=False).numpy()[0]
    probs = torch.softmax(torch.from_numpy(logits).double(), 0).numpy()
    top = np.argsort(-probs, kind="stable")[:3]
    assert [p["label"] for p in api["predictions"]] == [LABELS[i] for i in top]
    assert np.allclose([p["probability"] for p in api["predictions"]], probs[top], atol=1e-5)
    html = client.post(f"/models/{KERAS}/try", data={"sample": "chelsea.jpg"}).text
    assert page_labels(html) == [LABELS[i] for i in top]
    assert 'value="chelsea.jpg" checked' in html  # the form keeps the sample that was run


def tflite_outputs(path, batch: np.ndarray, package) -> dict[str, np.ndarray]:
    """The interpreter's outputs, under the names the package gives them (the signature's)."""
    from tf2torch.references.tensorflow import tflite_interpreter

    interpreter = tflite_interpreter(path)
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], batch)
    interpreter.invoke()
    by_tensor = {d["name"]: interpreter.get_tensor(d["index"])
                 for d in interpreter.get_output_details()}
    graph = tf2torch.load(package).card.config["graph"]
    return {name: by_tensor[tensor]
            for tensor, name in zip(graph["outputs"], graph["output_names"], strict=True)}


def downloaded_outputs(client: TestClient, api: dict) -> dict[str, np.ndarray]:
    return {o["name"]: np.load(io.BytesIO(client.get("/" + o["download"]).content),
                               allow_pickle=False) for o in api["outputs"]}


def assert_close_to(ours: dict[str, np.ndarray], theirs: dict[str, np.ndarray]) -> None:
    assert sorted(ours) == sorted(theirs)
    for name, ref in theirs.items():
        assert ours[name].shape == ref.shape, name
        assert np.abs(ours[name] - ref).max() <= 1e-4 * max(1.0, np.abs(ref).max()), name


def test_an_image_on_a_graph_model_gives_its_outputs_as_tflite_does(client, web_repo) -> None:
    api = client.post(f"/api/models/{TFLITE}/predict",
                      files={"file": ("astronaut.jpg", web_repo.photo.read_bytes())}).json()
    assert api["predictions"] == [] and api["annotated"] is None
    encoded = tf2torch.load(web_repo.models / TFLITE).encoder([web_repo.photo]).numpy()
    ours = downloaded_outputs(client, api)
    theirs = tflite_outputs(web_repo.tflite, encoded, web_repo.models / TFLITE)
    assert_close_to(ours, theirs)
    for summary in api["outputs"]:  # the figures the page prints are those of the array
        array = ours[summary["name"]]
        assert summary["shape"] == list(array.shape)
        assert np.isclose(summary["min"], array.min()) and np.isclose(summary["max"], array.max())
    html = client.post(f"/models/{TFLITE}/try", data={"sample": "coffee.jpg"}).text
    assert html.count(".npy</a>") == 2 and "1×16×16×2" in html and "1×5" in html


def test_a_npy_input_on_a_model_without_encoder(client, web_repo) -> None:
    batch = np.random.default_rng(5).uniform(0, 255, (1, 32, 32, 3)).astype(np.float32)
    buffer = io.BytesIO()
    np.save(buffer, batch[0])  # one sample without its batch axis is accepted too
    api = client.post(f"/api/models/{TENSOR}/predict",
                      files={"file": ("input.npy", buffer.getvalue())}).json()
    assert_close_to(downloaded_outputs(client, api),
                    tflite_outputs(web_repo.tflite, batch, web_repo.models / TENSOR))


def test_inference_runs_off_the_event_loop(web_repo) -> None:
    """While one try-it request computes, the index still answers."""
    import httpx2

    app = create_app(Settings(home=web_repo.home))
    state = app.state.tf2torch
    started, release = threading.Event(), threading.Event()
    real_run = state.run

    def slow_run(*args):
        started.set()
        assert release.wait(30)
        return real_run(*args)

    state.run = slow_run

    async def scenario() -> None:
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://test") as http, \
                anyio.create_task_group() as group:
            answers = {}

            async def try_it() -> None:
                answers["try"] = await http.post(f"/api/models/{KERAS}/predict",
                                                 data={"sample": "coffee.jpg"})

            group.start_soon(try_it)
            await anyio.to_thread.run_sync(started.wait, 30)
            index = await http.get("/")  # the try request is still inside the model
            assert index.status_code == 200 and not release.is_set()
            release.set()
        assert answers["try"].status_code == 200 and answers["try"].json()["predictions"]

    anyio.run(scenario)
