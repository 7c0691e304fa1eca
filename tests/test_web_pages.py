"""The web pages over HTTP (Starlette's test client): index, filter, model pages, downloads,
the JSON API, the static site and the `serve`/`site` commands."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

import pytest

from web_repository import KERAS, TENSOR, TFLITE, ZOO

pytest.importorskip("starlette")
from starlette.testclient import TestClient

from tf2torch.cli import main
from tf2torch.web.app import Settings, create_app


@pytest.fixture(scope="module")
def client(web_repo) -> TestClient:
    return TestClient(create_app(Settings(home=web_repo.home)), raise_server_exceptions=False)


def rows(html: str) -> dict[str, bool]:
    """Index rows: package name → shown (not hidden)."""
    found = re.findall(r'<tr data-search="[^"]*" data-format="[^"]*"( hidden)?>\s*<td><a href="'
                       r'models/([^/]+)/', html)
    return {name: not hidden for hidden, name in found}


def test_index_lists_every_package_with_its_figures(client) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert rows(page.text) == {ZOO: True, KERAS: True, TFLITE: True, TENSOR: True}
    html = page.text
    for text in ("TF-slim checkpoint", "Keras", "TFLite", "image classification (1001 classes)",
                 "image classification (3 classes)", "graph model (2 outputs)", "verified"):
        assert text in html, text
    assert client.get("/index.html").text == html


@pytest.mark.parametrize(("query", "expected"), [
    ("q=tiny", {KERAS, TFLITE, TENSOR}),
    ("format=tflite", {TFLITE, TENSOR}),
    ("q=classification&format=keras", {KERAS}),
    ("q=MOBILENET+0.35", {ZOO}),
    ("q=nothing-like-this", set()),
])
def test_index_filters_on_the_server(client, query: str, expected: set[str]) -> None:
    html = client.get(f"/?{query}").text
    assert {name for name, shown in rows(html).items() if shown} == expected
    assert len(rows(html)) == 4  # the others are on the page, hidden, for the script
    assert ('id="none-shown" hidden' in html) == bool(expected)


def test_zoo_page_shows_card_proofs_and_downloads(client, web_repo) -> None:
    html = client.get(f"/models/{ZOO}/").text
    card = json.loads((web_repo.models / ZOO / "card.json").read_text())
    comparisons = card["verification"]["comparisons"]
    assert len(comparisons) == 6  # zeros, random, the photo × logits, probabilities
    table = html.split('<table class="figures">', 1)[1].split("</table>", 1)[0]
    for row in comparisons:  # every comparison, with its figures as the card has them
        assert f"<td>{row['case']}</td><td>{row['output']}</td>" in table
        assert f"{row['max_abs']:.2e}" in table and f"{row['max_rel']:.2e}" in table
    assert "TensorFlow frozen graph" in html
    assert 'src="files/per_layer.png"' in html and "within tolerance" in html
    assert "crop the central 87.5% of the image, then resize it to 96×96" in html
    assert "index 0 is TF-slim&#39;s &#39;background&#39; class" in html
    assert f'tf2torch.load(&#34;{ZOO}&#34;)' in html
    assert card["source"]["sha256"] in html and card["weights_sha256"] in html
    for name in ("model.safetensors", "card.json", "README.md", "per_layer.json", "per_layer.png"):
        assert f'href="files/{name}"' in html
    assert 'action="try#try"' in html and 'value="astronaut.jpg"' in html
    assert client.get(f"/models/{ZOO}/index.html").text == html
    moved = client.get(f"/models/{ZOO}", follow_redirects=False)
    assert moved.status_code == 308 and moved.headers["location"] == f"/models/{ZOO}/"


def test_graph_pages_describe_inputs_outputs_and_codecs(client) -> None:
    keras = client.get(f"/models/{KERAS}/").text
    assert "classes: cat, dog, teapot" in keras and "pixels as 0–255" in keras
    assert "N × 48 × 48 × 3" in keras and "NHWC" in keras
    detector = client.get(f"/models/{TFLITE}/").text
    assert "graph model (2 outputs)" in detector.lower()
    assert "N × 16 × 16 × 2" in detector and "N × 5" in detector
    assert "none recorded: the outputs are returned as tensors" in detector
    tensor = client.get(f"/models/{TENSOR}/").text
    assert 'accept=".npy"' in tensor and "1 × 32 × 32 × 3" in tensor
    assert "none recorded: the module takes the tensor" in tensor
    assert "No per-layer comparison recorded" in tensor


def test_downloads_are_the_package_files(client, web_repo) -> None:
    folder = web_repo.models / ZOO
    for name in ("model.safetensors", "card.json", "README.md", "per_layer.png"):
        got = client.get(f"/models/{ZOO}/files/{name}")
        assert got.status_code == 200 and got.content == (folder / name).read_bytes(), name
    weights = client.get(f"/models/{ZOO}/files/model.safetensors")
    assert weights.headers["content-disposition"].startswith("attachment")
    assert client.get(f"/models/{ZOO}/files/per_layer.png").headers["content-type"] == "image/png"


def test_json_api(client, web_repo) -> None:
    listing = client.get("/api/models").json()
    assert [m["name"] for m in listing["models"]] == sorted([ZOO, KERAS, TFLITE, TENSOR])
    assert all(m["verification"] == "pass" for m in listing["models"])
    one = client.get(f"/api/models/{TFLITE}").json()
    assert one["card"]["config"]["graph"] == "…" and one["card"]["name"] == TFLITE
    assert {f["name"] for f in one["files"]} == {"model.safetensors", "card.json", "README.md",
                                                 "reference_outputs.safetensors"}


def test_security_headers(client) -> None:
    headers = client.get("/").headers
    assert "script-src 'self'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"


def test_models_load_once_and_reload_when_replaced(web_repo, tmp_path) -> None:
    import shutil

    home = tmp_path / "home"
    shutil.copytree(web_repo.home, home)
    app = create_app(Settings(home=home, cache_size=1))
    client, state = TestClient(app), app.state.tf2torch
    for _ in range(3):
        assert client.post(f"/models/{KERAS}/try", data={"sample": "chelsea.jpg"}).status_code == 200
    assert state.models.loads == 1
    client.post(f"/models/{TFLITE}/try", data={"sample": "chelsea.jpg"})   # evicts the first
    client.post(f"/models/{KERAS}/try", data={"sample": "chelsea.jpg"})
    assert state.models.loads == 3
    card = home / "models" / KERAS / "card.json"
    card.write_text(card.read_text())  # re-published: new mtime, so the copy in memory is stale
    client.post(f"/models/{KERAS}/try", data={"sample": "chelsea.jpg"})
    assert state.models.loads == 4


# --- the static site ------------------------------------------------------------------------

class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for key, value in attrs:
            if key in ("href", "src", "action") and value:
                self.links.append(value)


def test_site_is_static_with_relative_links_that_resolve(web_repo, tmp_path, capsys,
                                                         monkeypatch) -> None:
    monkeypatch.setenv("TF2TORCH_HOME", str(web_repo.home))
    out = tmp_path / "public"
    assert main(["site", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert len(report["pages"]) == 5 and report["files"] >= 14
    pages = sorted(out.rglob("*.html"))
    assert len(pages) == 5
    for page in pages:
        parser = _Links()
        parser.feed(page.read_text())
        for link in parser.links:
            assert not re.match(r"^(/|[a-z]+:)", link), f"{page}: absolute link {link}"
            target = link.split("#")[0]
            if target:
                assert (page.parent / target).resolve().is_file(), f"{page}: broken {link}"
        assert "<form class=\"try\"" not in page.read_text()
    model = (out / "models" / ZOO / "index.html").read_text()
    assert "tf2torch serve mobilenet_v2_0.35_96" in model and "per_layer.png" in model
    assert (out / "models" / ZOO / "files" / "model.safetensors").read_bytes() == \
        (web_repo.models / ZOO / "model.safetensors").read_bytes()

    # again, without weights and for one model: the old site is replaced whole
    assert main(["site", str(out), "--model", KERAS, "--no-weights"]) == 0
    assert sorted(p.name for p in (out / "models").iterdir()) == [KERAS]
    assert not (out / "models" / KERAS / "files" / "model.safetensors").exists()
    assert "files/model.safetensors" not in (out / "models" / KERAS / "index.html").read_text()


def test_site_refuses_a_folder_it_did_not_write_and_unknown_models(web_repo, tmp_path, capsys,
                                                                   monkeypatch) -> None:
    monkeypatch.setenv("TF2TORCH_HOME", str(web_repo.home))
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    assert main(["site", str(mine)]) != 0
    assert "is not a site tf2torch wrote" in capsys.readouterr().err
    assert (mine / "notes.txt").read_text() == "keep me"
    assert main(["site", str(tmp_path / "new"), "--model", "tiny_clasifier"]) != 0
    assert "did you mean tiny_classifier" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()


# --- the commands ---------------------------------------------------------------------------

def test_importing_tf2torch_does_not_import_the_web_stack() -> None:
    code = ("import sys, tf2torch, tf2torch.packages.package, tf2torch.packages.predict, "
            "tf2torch.cli, tf2torch.cli.commands\n"
            "from tf2torch.cli import build_parser; build_parser()\n"
            "heavy = {'starlette', 'jinja2', 'uvicorn', 'markdown_it', 'multipart'} & set(sys.modules)\n"
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_serve_command_listens_on_loopback_and_answers_loopback_names(web_repo) -> None:
    from browser import free_port

    port = free_port()
    env = {**__import__("os").environ, "TF2TORCH_HOME": str(web_repo.home)}
    server = subprocess.Popen([sys.executable, "-c", "from tf2torch.cli import main; main()",
                               "serve", ZOO, "--port", str(port)],
                              env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        line = server.stderr.readline()
        assert f"http://127.0.0.1:{port}/models/{ZOO}/" in line
        page = _get(f"http://127.0.0.1:{port}/models/{ZOO}/", deadline=time.monotonic() + 60)
        assert "<h1>mobilenet_v2_0.35_96" in page
        with pytest.raises(urllib.error.HTTPError) as refused:  # DNS rebinding: a foreign name
            urllib.request.urlopen(urllib.request.Request(
                f"http://127.0.0.1:{port}/", headers={"Host": f"evil.example:{port}"}))
        assert refused.value.code == 400
        assert "answers requests for" in refused.value.read().decode()
    finally:
        server.terminate()
        server.wait(20)


def _get(url: str, deadline: float) -> str:
    while True:
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                return response.read().decode()
        except (urllib.error.URLError, ConnectionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_serve_unknown_model_fails_with_suggestions(web_repo, capsys, monkeypatch) -> None:
    monkeypatch.setenv("TF2TORCH_HOME", str(web_repo.home))
    assert main(["serve", "mobilenet_v2_0.35", "--port", "1"]) != 0
    assert "did you mean mobilenet_v2_0.35_96" in capsys.readouterr().err


def test_web_extra_missing_is_one_clear_line(monkeypatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "starlette", None)  # import starlette → ImportError
    assert main(["site", "out"]) != 0
    err = capsys.readouterr().err
    assert "pip install 'tf2torch[web]'" in err and "Traceback" not in err


def test_per_layer_report_is_recorded_only_for_its_own_source(web_repo, tmp_path, capsys) -> None:
    assert (web_repo.models / ZOO / "per_layer.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    recorded = json.loads((web_repo.models / ZOO / "per_layer.json").read_text())
    assert recorded["passed"] and len(recorded["layers"]) > 50
    other = Path(tmp_path / "other.tflite")
    other.write_bytes(web_repo.tflite.read_bytes())
    code = main(["verify", str(other), "--per-layer", "--package", str(web_repo.models / ZOO)])
    assert code != 0 and "its per-layer report would not describe this package" in \
        capsys.readouterr().err


def test_emitted_code_is_kept_in_the_package_and_offered(web_repo, tmp_path, capsys) -> None:
    package = tmp_path / "home" / "models" / "detector_with_code"
    code = main(["convert", str(web_repo.tflite), "-o", str(package), "--emit-code",
                 str(tmp_path / "detector.py")])
    assert code == 0, capsys.readouterr().err
    assert (package / "model.py").read_text() == (tmp_path / "detector.py").read_text()
    client = TestClient(create_app(Settings(home=tmp_path / "home")))
    assert 'href="files/model.py"' in client.get("/models/detector_with_code/").text
    assert client.get("/models/detector_with_code/files/model.py").text.startswith("# ")


def test_serve_on_a_busy_port_is_one_clear_line(web_repo, capsys, monkeypatch) -> None:
    import socket

    monkeypatch.setenv("TF2TORCH_HOME", str(web_repo.home))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        code = main(["serve", "--port", str(busy.getsockname()[1])])
    err = capsys.readouterr().err
    assert code != 0 and "cannot listen on 127.0.0.1" in err and "--port" in err


def test_the_cached_onnx_export_is_offered_for_the_same_weights(web_repo, tmp_path) -> None:
    import shutil

    home = tmp_path / "home"
    shutil.copytree(web_repo.models / KERAS, home / "models" / KERAS)
    card = json.loads((home / "models" / KERAS / "card.json").read_text())
    (home / "exports").mkdir()
    stale = home / "exports" / f"{KERAS}-{'0' * 16}.onnx"   # another version's export
    stale.write_bytes(b"old")
    client = TestClient(create_app(Settings(home=home)))
    assert 'href="files/model.onnx"' not in client.get(f"/models/{KERAS}/").text
    export = home / "exports" / f"{KERAS}-{card['weights_sha256'][:16]}.onnx"
    export.write_bytes(b"onnx bytes")  # as `predict --backend onnxruntime` caches it
    assert 'href="files/model.onnx"' in client.get(f"/models/{KERAS}/").text
    download = client.get(f"/models/{KERAS}/files/model.onnx")
    assert download.content == b"onnx bytes"
    assert 'filename="model.onnx"' in download.headers["content-disposition"]
