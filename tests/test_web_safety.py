"""Every refusal of the web app, route by route: a 4xx with one readable line, never a
traceback, and nothing in the repository written."""

from __future__ import annotations

import io
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from web_repository import KERAS, TENSOR, ZOO

pytest.importorskip("starlette")
from starlette.testclient import TestClient

from tf2torch.web.app import Settings, create_app
from tf2torch.web.uploads import Limits


@pytest.fixture(scope="module")
def home(web_repo, tmp_path_factory) -> Path:
    """A copy of the repository with hostile additions: links out, a stray file."""
    home = tmp_path_factory.mktemp("hostile") / "home"
    shutil.copytree(web_repo.home, home, symlinks=True)
    outside = home.parent / "outside"
    shutil.copytree(web_repo.models / KERAS, outside)          # a valid package, elsewhere
    (outside / "secret.txt").write_text("not repository content")
    (home / "models" / "linked_out").symlink_to(outside, target_is_directory=True)
    leaky = home / "models" / "leaky"
    shutil.copytree(web_repo.models / KERAS, leaky)
    (leaky / "per_layer.png").symlink_to(outside / "secret.txt")  # a file link out
    (home / "models" / ZOO / "notes.txt").write_text("not a file packages hold")
    return home


@pytest.fixture(scope="module")
def client(home) -> TestClient:
    app = create_app(Settings(home=home, limits=Limits(max_upload_bytes=256 << 10,
                                                       max_pixels=4_000_000)))
    return TestClient(app, raise_server_exceptions=False)


def refused(response, status: int, *words: str) -> str:
    assert response.status_code == status, (response.status_code, response.text[:500])
    text = response.text
    assert "Traceback" not in text and 'File "' not in text
    for word in words:
        assert word in text, (word, text[:800])
    return text


@pytest.mark.parametrize("path", [
    "/models/nope/", "/models/nope/files/card.json", "/models/nope/try", "/api/models/nope",
])
def test_unknown_package_is_404_with_a_suggestion(client, path: str) -> None:
    method = client.post if path.endswith("try") else client.get
    refused(method(path), 404, "no package named &#39;nope&#39;" if "/api/" not in path
            else "no package named 'nope'")
    refused(client.get("/models/tiny_clasifier/"), 404, "did you mean tiny_classifier")


@pytest.mark.parametrize("path", [
    "/models/../card.json", "/models/..%2F..%2Fetc/", "/models/%2E%2E/", "/models/.hidden/",
    f"/models/{ZOO}%2F..%2F{KERAS}/", "/models/a%00b/",
])
def test_traversal_through_names_is_refused(client, path: str) -> None:
    assert client.get(path).status_code == 404


@pytest.mark.parametrize("name", [
    "..%2Fcard.json", "%2E%2E%2F%2E%2E%2Fetc%2Fpasswd", "notes.txt", "%2E%2E", "card.json%00.png",
    "model.safetensors%2F..%2F..%2Fcard.json",
])
def test_traversal_and_stray_files_are_refused(client, name: str) -> None:
    response = client.get(f"/models/{ZOO}/files/{name}")
    assert response.status_code == 404
    assert "Traceback" not in response.text


def test_links_out_of_the_repository_are_not_served(client) -> None:
    refused(client.get("/models/linked_out/"), 403, "links outside the repository")
    refused(client.get("/models/linked_out/files/card.json"), 403)
    refused(client.get("/models/leaky/"), 403, "links outside the repository")
    refused(client.get("/models/leaky/files/per_layer.png"), 403)
    refused(client.post("/models/linked_out/try", data={"sample": "chelsea.jpg"}), 403)
    index = client.get("/").text
    assert "Not served" in index and "linked_out" in index and 'href="models/linked_out/' not in index


@pytest.mark.parametrize("path", ["/static/../app.py", "/static/%2E%2E/app.py",
                                  "/static/..%2F..%2Fcatalog.py", "/static/nope.css"])
def test_static_files_stay_in_their_folder(client, path: str) -> None:
    assert client.get(path).status_code == 404


@pytest.mark.parametrize(("method", "path"), [
    ("put", f"/models/{ZOO}/files/card.json"), ("delete", f"/models/{ZOO}/files/card.json"),
    ("post", f"/models/{ZOO}/files/model.safetensors"), ("delete", f"/models/{ZOO}/"),
    ("patch", "/"), ("post", "/"), ("put", "/api/models"), ("delete", f"/api/models/{ZOO}"),
])
def test_nothing_is_writable(client, method: str, path: str) -> None:
    refused(getattr(client, method)(path), 405)


def test_oversized_upload_declared_or_streamed(client) -> None:
    big = b"\xff\xd8" + b"\0" * (300 << 10)
    refused(client.post(f"/models/{KERAS}/try", files={"file": ("big.jpg", big, "image/jpeg")}),
            413, "larger than this server&#39;s limit")

    def chunks():  # no Content-Length: the limit applies while the body streams in
        for _ in range(40):
            yield b"x" * (16 << 10)

    response = client.post(f"/api/models/{KERAS}/predict", content=chunks(),
                           headers={"content-type": "multipart/form-data; boundary=b"})
    assert response.status_code == 413 and "limit" in response.json()["error"]


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims width × height pixels and holds almost none (a decompression bomb)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + chunk(b"IEND", b""))


def test_decompression_bombs_are_refused_before_decoding(client) -> None:
    refused(client.post(f"/models/{KERAS}/try", files={"file": ("wide.png", png_header_only(
        3000, 3000), "image/png")}), 413, "9,000,000 pixels", "at most 4,000,000")
    refused(client.post(f"/models/{KERAS}/try", files={"file": ("bomb.png", png_header_only(
        30000, 30000), "image/png")}), 413, "decompression-bomb guard")


@pytest.mark.parametrize(("filename", "data", "status", "words"), [
    ("notes.txt", b"just some text", 415, "not an image this server reads"),
    ("page.pdf", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj", 415, "not an image"),
    ("drawing.eps", b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n", 415, "not an image"),
    ("broken.jpg", b"\xff\xd8\xff\xe0 not really a jpeg", 422, "damaged or truncated"),
    ("truncated.jpg", None, 422, "damaged or truncated"),
    ("empty.png", b"", 415, "not an image"),
])
def test_non_images_are_refused(client, filename: str, data: bytes | None, status: int,
                                words: str) -> None:
    if data is None:  # a real JPEG cut in half: the header reads, the pixels do not
        buffer = io.BytesIO()
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(
            buffer, format="JPEG")
        data = buffer.getvalue()[: len(buffer.getvalue()) // 2]
    html = refused(client.post(f"/models/{KERAS}/try", files={"file": (filename, data)}), status,
                   words)
    assert 'action="try#try"' in html  # the page again, the reason above the form
    api = client.post(f"/api/models/{KERAS}/predict", files={"file": (filename, data)})
    assert api.status_code == status and filename in api.json()["error"]


def npy(array: np.ndarray, allow_pickle: bool = False) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=allow_pickle)
    return buffer.getvalue()


@pytest.mark.parametrize(("data", "words"), [
    (npy(np.zeros((2, 32, 32, 3), np.float32)), "this model takes 32×32×3"),
    (npy(np.array([{"a": 1}], dtype=object), allow_pickle=True), "not a readable .npy"),
    (npy(np.array(["a", "b"])), "is not numeric"),
    (b"\x93NUMPY\x01\x00garbage", "not a readable .npy"),
])
def test_bad_arrays_are_refused(client, data: bytes, words: str) -> None:
    response = client.post(f"/api/models/{TENSOR}/predict", files={"file": ("x.npy", data)})
    assert response.status_code == 422 and words in response.json()["error"]


def test_missing_or_unknown_inputs(client) -> None:
    refused(client.post(f"/models/{KERAS}/try", data={}), 422, "no input")
    refused(client.post(f"/models/{KERAS}/try", data={"sample": "../../card.json"}), 422,
            "no sample named")
    refused(client.post(f"/models/{TENSOR}/try", files={"file": ("cat.jpg", b"\xff\xd8")}), 415,
            "records no encoder")
    refused(client.post(f"/models/{ZOO}/try", content=b"a=1",
                        headers={"content-type": "text/plain"}), 422, "no input")
    moved = client.get(f"/models/{ZOO}/try", follow_redirects=False)
    assert moved.status_code == 303 and moved.headers["location"] == "./#try"
    refused(client.get("/results/nope/annotated.jpg"), 404, "no such result")


def test_a_tampered_package_is_a_readable_refusal(home, tmp_path) -> None:
    copy = tmp_path / "home"
    shutil.copytree(home / "models" / KERAS, copy / "models" / KERAS)
    weights = copy / "models" / KERAS / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    client = TestClient(create_app(Settings(home=copy)), raise_server_exceptions=False)
    refused(client.post(f"/models/{KERAS}/try", data={"sample": "chelsea.jpg"}), 422,
            "does not match the card")


def test_a_server_error_shows_no_traceback(home, monkeypatch) -> None:
    app = create_app(Settings(home=home))

    def broken(*_args, **_kwargs):
        raise RuntimeError("a bug, deep inside")

    monkeypatch.setattr(app.state.tf2torch, "run", broken)
    client = TestClient(app, raise_server_exceptions=False)
    html = refused(client.post(f"/models/{KERAS}/try", data={"sample": "chelsea.jpg"}), 500,
                   "unexpected error")
    assert "a bug, deep inside" not in html and "RuntimeError" not in html
    api = client.post(f"/api/models/{KERAS}/predict", data={"sample": "chelsea.jpg"})
    assert api.status_code == 500 and "RuntimeError" not in api.text


def test_foreign_host_names_are_refused_when_asked(home) -> None:
    client = TestClient(create_app(Settings(home=home, hosts=("127.0.0.1", "localhost"))),
                        base_url="http://127.0.0.1:8000")
    assert client.get("/").status_code == 200
    refused(client.get("/", headers={"host": "evil.example"}), 400, "answers requests for")


def test_markup_in_a_card_is_shown_as_text(home, tmp_path) -> None:
    import json

    copy = tmp_path / "home"
    shutil.copytree(home / "models" / KERAS, copy / "models" / KERAS)
    card_path = copy / "models" / KERAS / "card.json"
    card = json.loads(card_path.read_text())
    card["notes"] = ["<script>alert('card')</script>"]
    card["license"] = "<img src=x onerror=alert(1)>"
    card_path.write_text(json.dumps(card))
    readme = copy / "models" / KERAS / "README.md"
    readme.write_text("# hi\n\n<script>alert('readme')</script>\n\n[x](javascript:alert(1))\n")
    html = TestClient(create_app(Settings(home=copy))).get(f"/models/{KERAS}/").text
    assert "<script>alert" not in html and "<img src=x" not in html
    assert 'href="javascript:' not in html
    assert "&lt;script&gt;alert(&#39;card&#39;)&lt;/script&gt;" in html


def test_the_web_app_writes_nothing_in_the_repository(web_repo) -> None:
    client = TestClient(create_app(Settings(home=web_repo.home)), raise_server_exceptions=False)
    before = web_repo.snapshot()
    client.put(f"/models/{KERAS}/files/card.json", content=b"{}")
    client.post(f"/models/{KERAS}/try", data={"sample": "coffee.jpg"})
    client.post(f"/api/models/{TENSOR}/predict",
                files={"file": ("x.npy", npy(np.zeros((32, 32, 3), np.float32)))})
    client.get(f"/models/{ZOO}/")
    assert web_repo.snapshot() == before
    assert sorted(p.name for p in web_repo.home.iterdir()) == ["models"]  # no exports, no cache
