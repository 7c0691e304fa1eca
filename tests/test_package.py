"""Packages and the repository: publish, load by name, classify, predict, fine-tune, refuse damage."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import tf2torch
from tf2torch.cli import main
from tf2torch.errors import PackageError

skimage_data = pytest.importorskip("skimage.data")


@pytest.fixture(scope="module")
def release(standin):
    return standin(0.35, 96)


@pytest.fixture(scope="module")
def converted(release, tmp_path_factory):
    """A stand-in 0.35/96 release converted into a package folder (module-wide, read-only)."""
    out = tmp_path_factory.mktemp("pkg") / "mnv2"
    tf2torch.convert(release.archive, out)
    return out


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    """Real photos that scikit-image ships, plus one corrupt JPEG."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("astronaut", "chelsea", "coffee"):
        Image.fromarray(getattr(skimage_data, name)()).save(folder / f"{name}.jpg")
    Image.fromarray(skimage_data.camera()).save(folder / "camera.png")  # grayscale
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return folder


def test_card_and_files(converted: Path) -> None:
    assert sorted(p.name for p in converted.iterdir()) == [
        "README.md", "card.json", "model.safetensors", "reference_outputs.safetensors"]
    card = json.loads((converted / "card.json").read_text())
    assert card["schema_version"] == 1 and card["architecture"] == "mobilenet_v2"
    assert card["encoder"]["interpolation"] == "bilinear_tf_legacy"
    assert card["decoder"]["background_offset"] == 1 and card["decoder"]["num_classes"] == 1001
    assert card["verification"]["passed"] and card["multiply_adds"] > 0
    assert len(card["source"]["sha256"]) == 64


def test_classify_matches_tensorflow_on_the_encoded_image(converted: Path, release) -> None:
    """`classify` (encoder → net → decoder) against the release's frozen graph run by
    TensorFlow on the same encoded image: same top-5 classes, same probabilities."""
    from tf2torch.references.tensorflow import frozen_graph_reference

    model = tf2torch.load(converted)
    assert not model.net.training
    image = skimage_data.chelsea()
    preds = model.classify(image, top=5)[0]
    frozen = release.prefix.parent / f"{release.prefix.stem}_frozen.pb"
    nhwc = model.encoder(image).permute(0, 2, 3, 1).numpy()
    probs = frozen_graph_reference(frozen).run(nhwc)["probabilities"][0].astype(np.float64)
    top = np.argsort(-probs, kind="stable")[:5]
    assert [p.index for p in preds] == top.tolist()
    assert np.allclose([p.probability for p in preds], probs[top], atol=1e-6)
    assert preds[0].label != "background" and preds[0].wnid is not None


def test_convert_verifies_the_users_images(release, tmp_path: Path) -> None:
    """`images=` (CLI `--images`): each image becomes a verification case of its own."""
    photo = tmp_path / "coffee.jpg"
    Image.fromarray(skimage_data.coffee()).save(photo)
    result = tf2torch.convert(release.archive, tmp_path / "pkg", images=[photo])
    cases = {c.case for c in result.verification.comparisons}
    assert cases == {"zeros", "random", "image:coffee.jpg"}
    assert result.verification.passed
    image_logits = next(c for c in result.verification.comparisons
                        if c.case == "image:coffee.jpg" and c.output == "logits")
    assert 0 <= image_logits.max_abs <= image_logits.bound


def test_overwrite_replaces_the_package_and_dead_writers_leftovers_are_swept(
        release, tmp_path: Path, monkeypatch) -> None:
    from tf2torch.packages import repository

    tf2torch.convert(release.archive)
    package = repository.publish_path("mobilenet_v2_0.35_96")
    (package / "stray.txt").write_text("left by hand")
    with pytest.raises(PackageError, match="already exists"):
        tf2torch.convert(release.archive)
    assert (package / "stray.txt").exists()  # refused: untouched
    # a writer killed mid-write left a staging folder; a live writer's stays
    dead = repository.models_dir() / ".mobilenet_v2_0.35_96.partial-999999999-abc"
    dead.mkdir()
    live = repository.models_dir() / f".other.partial-{__import__('os').getppid()}-xyz"
    live.mkdir()
    result = tf2torch.convert(release.archive, overwrite=True, use_ema=False)
    assert not (package / "stray.txt").exists()
    assert sorted(p.name for p in package.iterdir()) == [
        "README.md", "card.json", "model.safetensors", "reference_outputs.safetensors"]
    assert tf2torch.load("mobilenet_v2_0.35_96").card.created == result.card.created
    assert not dead.exists() and live.exists()
    assert [p.name for p in repository.models_dir().iterdir() if ".old-" in p.name] == []


def test_load_by_name_from_repository(standin, capsys) -> None:
    tf2torch.convert(standin(0.35, 96).archive)
    model = tf2torch.load("mobilenet_v2_0.35_96")
    assert model.card.name == "mobilenet_v2_0.35_96"


def test_predict_real_photos_with_a_corrupt_file(converted: Path, photos: Path, capsys,
                                                 tmp_path: Path) -> None:
    code = main(["predict", str(converted), str(photos), "--top", "3", "--json",
                 "--annotate", str(tmp_path / "annotated")])
    out, err = capsys.readouterr()
    assert code == 0
    results = {Path(r["path"]).name: r for r in json.loads(out)}
    assert set(results) == {"astronaut.jpg", "chelsea.jpg", "coffee.jpg", "camera.png",
                            "broken.jpg"}
    assert results["broken.jpg"]["error"] and "broken.jpg" in results["broken.jpg"]["error"]
    for name in ("astronaut.jpg", "chelsea.jpg", "coffee.jpg", "camera.png"):
        assert results[name]["error"] is None and len(results[name]["predictions"]) == 3
    assert "1 of 5 image(s) could not be read" in err
    assert (tmp_path / "annotated" / "chelsea.png").exists()
    # glob form
    assert main(["predict", str(converted), str(photos / "*.jpg")]) == 0
    assert "chelsea.jpg" in capsys.readouterr().out


def _copy(converted: Path, tmp_path: Path) -> Path:
    import shutil

    dest = tmp_path / "copy"
    shutil.copytree(converted, dest)
    return dest


def _tamper_weights(pkg: Path) -> str:
    raw = bytearray((pkg / "model.safetensors").read_bytes())
    raw[-10] ^= 0xFF
    (pkg / "model.safetensors").write_bytes(bytes(raw))
    return "does not match the card"


def _truncate_weights(pkg: Path) -> str:
    path = pkg / "model.safetensors"
    path.write_bytes(path.read_bytes()[:1000])
    return "does not match the card"


def _edit_card_field(pkg: Path) -> str:
    card = json.loads((pkg / "card.json").read_text())
    card["colour"] = "blue"
    (pkg / "card.json").write_text(json.dumps(card))
    return "unknown field(s) ['colour']"


def _drop_card_field(pkg: Path) -> str:
    card = json.loads((pkg / "card.json").read_text())
    del card["encoder"]
    (pkg / "card.json").write_text(json.dumps(card))
    return "missing field(s) ['encoder']"


def _break_encoder(pkg: Path) -> str:
    card = json.loads((pkg / "card.json").read_text())
    card["encoder"]["interpolation"] = "magic"
    (pkg / "card.json").write_text(json.dumps(card))
    return "interpolation"


def _remove_weights(pkg: Path) -> str:
    (pkg / "model.safetensors").unlink()
    return "model.safetensors is missing"


@pytest.mark.parametrize("damage", [_tamper_weights, _truncate_weights, _edit_card_field,
                                    _drop_card_field, _break_encoder, _remove_weights])
def test_damaged_package_gives_one_clear_error(converted, tmp_path, capsys, damage) -> None:
    pkg = _copy(converted, tmp_path)
    expected = damage(pkg)
    with pytest.raises(PackageError, match=re.escape(expected)):
        tf2torch.load(pkg)
    code = main(["show", str(pkg), "--json"]) if damage in (_edit_card_field, _drop_card_field) \
        else main(["predict", str(pkg), __file__])
    err = capsys.readouterr().err
    assert code != 0 and err.startswith("tf2torch: error:") and len(err.strip().splitlines()) == 1


def test_missing_label_file_is_named(converted, monkeypatch) -> None:
    from tf2torch.packages.codecs import labels as labels_module

    if hasattr(labels_module.load_label_set, "cache_clear"):
        labels_module.load_label_set.cache_clear()
    monkeypatch.setitem(labels_module.LABEL_FILES, "imagenet-1k", ("no_such_labels.tsv", 1000))
    with pytest.raises(PackageError, match=re.escape("no_such_labels.tsv")):
        tf2torch.load(converted)


def test_unknown_name_lists_repository(capsys) -> None:
    with pytest.raises(PackageError, match="no model named 'nothing'"):
        tf2torch.load("nothing")


def test_interrupted_write_leaves_nothing(converted, tmp_path, monkeypatch) -> None:
    model = tf2torch.load(converted)

    def crash(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("tf2torch.packages.modelcard.render_readme", crash)
    dest = tmp_path / "repo" / "new"
    with pytest.raises(KeyboardInterrupt):
        model.save(dest)
    assert not dest.exists()
    assert list((tmp_path / "repo").iterdir()) == []


def test_fine_tuning_lowers_loss_and_saves_new_labels(converted, tmp_path) -> None:
    model = tf2torch.load(converted)
    labels = ["cat", "dog", "teapot"]
    model.replace_head(labels)
    net = model.net.train()
    assert any(isinstance(m, torch.nn.Dropout) for m in net.modules())
    torch.manual_seed(0)
    images = torch.randn(12, 3, 96, 96)
    targets = torch.arange(12) % 3
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)

    losses = []
    for _ in range(6):  # train mode: batch statistics, dropout active
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(images), targets)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    net.eval()
    saved = model.save(tmp_path / "finetuned", name="mnv2-pets")
    again = tf2torch.load(tmp_path / "finetuned")
    assert again.decoder.labels == tuple(labels) and again.decoder.background_offset == 0
    assert again.encoder == model.encoder
    assert saved.config["num_classes"] == 3
    assert any("head replaced" in n for n in again.card.notes)
    with torch.inference_mode():
        assert torch.equal(again.net(images[:2]), net(images[:2]))
    preds = again.classify(skimage_data.chelsea(), top=3)[0]  # the new head's own labels
    assert sorted(p.label for p in preds) == sorted(labels)
    assert abs(sum(p.probability for p in preds) - 1.0) < 1e-6


def test_export_cli_and_onnxruntime_backend(converted, photos, tmp_path, capsys) -> None:
    pytest.importorskip("onnxruntime")
    onnx_file = tmp_path / "mnv2.onnx"
    assert main(["export", str(converted), "--onnx", str(onnx_file), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)[0]
    assert report["passed"] and onnx_file.stat().st_size > 1_000_000
    torch_preds = tf2torch.load(converted).classify(photos / "chelsea.jpg", top=3)[0]
    for backend in ("onnxruntime", "torch-fast"):
        assert main(["predict", str(converted), str(photos / "chelsea.jpg"), "--json",
                     "--backend", backend, "--top", "3"]) == 0
        result = json.loads(capsys.readouterr().out)[0]
        assert [p["index"] for p in result["predictions"]] == [p.index for p in torch_preds]
        assert np.allclose([p["probability"] for p in result["predictions"]],
                           [p.probability for p in torch_preds], atol=1e-5)
