"""Compiled forms in packages (`tf2torch compile`): verified against TensorFlow, sealed, and
ignored, never loaded, wherever they do not belong."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

import tf2torch
from tf2torch.cli import main
from tf2torch.errors import VerificationError
from tf2torch.packages import compiled


@pytest.fixture(scope="module")
def release(standin):
    return standin(0.35, 96)


@pytest.fixture(scope="module")
def built(release, tmp_path_factory):
    """The small stand-in converted (verified against its frozen graph) and compiled once;
    the module's tests get copies, along with the tf2torch home that holds the seal's key."""
    import os

    home = tmp_path_factory.mktemp("home")
    before = os.environ.get("TF2TORCH_HOME")
    os.environ["TF2TORCH_HOME"] = str(home)
    try:
        out = tmp_path_factory.mktemp("pkg") / "mnv2"
        tf2torch.convert(release.archive, out, compile=True)
    finally:
        os.environ["TF2TORCH_HOME"] = before or ""
    return out, home


@pytest.fixture
def package(built, tmp_path, monkeypatch) -> Path:
    """A copy of the package, and of the home that holds the seal's key: a test that damages
    either (another user's key, say) leaves the next test's alone."""
    out, home = built
    own_home = tmp_path / "home"
    shutil.copytree(home, own_home)
    monkeypatch.setenv("TF2TORCH_HOME", str(own_home))
    copy = tmp_path / "mnv2"
    shutil.copytree(out, copy)
    return copy


def tensorflow_logits(release) -> tuple[np.ndarray, np.ndarray]:
    """TensorFlow's own inputs and logits, stored with the release (tests.h5)."""
    with h5py.File(release.tests_h5) as f:
        return f["RandomInput"][()].transpose(0, 3, 1, 2), f["LogitsForRandom"][()]


def test_compiled_form_matches_tensorflow_and_loads_without_compiling(package, release):
    manifest = json.loads(next((package / "compiled").glob("*.json")).read_text())
    assert manifest["verification"]["passed"]
    assert "frozen graph" in manifest["checked_against"]  # the original, not our own module
    model = tf2torch.load(package, inference=True)
    assert model.form.startswith("compiled"), model.form
    x, expected = tensorflow_logits(release)
    with torch.inference_mode():
        for batch in (x[:1], x, np.concatenate([x] * 3)):  # any batch size
            got = model.net(torch.from_numpy(np.ascontiguousarray(batch))).numpy()
            reference = np.concatenate([expected] * 3)[:len(batch)]
            assert np.abs(got - reference).max() < 1e-4


def test_single_images_run_their_own_program_proved_on_every_image(package, release):
    """The single-image program (1.3-1.4x faster at batch 1) is verified image by image
    against the original, serves batch 1, and the any-batch program loads only when a
    batch of two arrives."""
    manifest = json.loads(next((package / "compiled").glob("*.json")).read_text())
    assert manifest["one_image_sha256"] and manifest["one_image_verification"]["passed"]
    assert isinstance(manifest["one_image_repacked"], dict)  # checked (tests/test_packing.py)
    model = tf2torch.load(package, inference=True)
    net = model.net.net
    x, expected = tensorflow_logits(release)
    with torch.inference_mode():
        for i in range(len(x)):
            got = net(torch.from_numpy(np.ascontiguousarray(x[i:i + 1]))).numpy()
            assert np.abs(got - expected[i:i + 1]).max() < 1e-4
        assert net._runner._library is None
        net(torch.from_numpy(np.ascontiguousarray(x)))
    assert net._runner._library is not None


@pytest.mark.parametrize("when", ["before loading", "after loading"])
def test_an_any_batch_program_changed_is_never_loaded_and_batches_run_eager(
        package, release, caplog, monkeypatch, when):
    """A pair's any-batch file is hashed when a batch first needs it, not at load (0.13 s of
    a 100 MB program's ready time): changed before or after loading, its bytes never reach
    the loader, single images keep their program, batches run the eager inference form
    (with a warning) and still give TensorFlow's numbers."""
    from tf2torch.packages import aoti

    if when == "before loading":
        _flip_a_byte_of_the_any_batch_program(package)
    model = tf2torch.load(package, inference=True)
    assert model.form.startswith("compiled"), model.form
    if when == "after loading":
        _flip_a_byte_of_the_any_batch_program(package)
    loaded = []
    monkeypatch.setattr(aoti, "load_library", lambda data: loaded.append(data))
    x, expected = tensorflow_logits(release)
    with torch.inference_mode():
        got = model.net(torch.from_numpy(np.ascontiguousarray(x))).numpy()
        assert np.abs(got - expected).max() < 1e-4
        assert model.net.net.batch == (1, 1)  # single images still run compiled
    assert loaded == []
    assert "changed since it was compiled" in caplog.text and "eager" in caplog.text


def test_a_single_image_program_that_disagrees_is_not_stored(package, monkeypatch):
    class Off(compiled.ImageByImage):
        def forward(self, *inputs):
            return super().forward(*inputs) + 1e-3

    monkeypatch.setattr(compiled, "ImageByImage", Off)
    shutil.rmtree(package / "compiled")
    with pytest.raises(VerificationError, match="disagrees"):
        tf2torch.api.compile_package(package)
    assert not any((package / "compiled").glob("*.pt2"))


def test_the_compiled_form_needs_no_eager_module_until_a_batch_falls_outside(
        package, release, monkeypatch):
    """`load(..., inference=True)` with a compiled form does not rebuild the eager module
    (for a graph package that rebuild is most of the load time); a batch outside the
    library's range builds it then, from the package's checked weights, and matches too."""
    from tf2torch.packages import package as package_module

    built = []
    real = package_module.build_module
    monkeypatch.setattr(package_module, "build_module", lambda card: built.append(1) or real(card))
    model = tf2torch.load(package, inference=True)
    x, expected = tensorflow_logits(release)
    with torch.inference_mode():
        got = model.net(torch.from_numpy(np.ascontiguousarray(x))).numpy()
    assert np.abs(got - expected).max() < 1e-4
    assert built == []
    model.net.net.batch = (1, 1)  # as a batch-1 library would take
    with torch.inference_mode():
        got = model.net(torch.from_numpy(np.ascontiguousarray(x))).numpy()
    assert np.abs(got - expected).max() < 1e-4
    assert built == [1]


def _flip_a_byte(package: Path) -> None:  # of the single-image program, the one loaded first
    library = next((package / "compiled").glob(f"*{compiled.ONE_IMAGE_SUFFIX}"))
    data = bytearray(library.read_bytes())
    data[len(data) // 2] ^= 0xFF
    library.write_bytes(bytes(data))


def _another_users_build(package: Path) -> None:
    home = Path(__import__("os").environ["TF2TORCH_HOME"])
    (home / compiled.KEY_FILE).write_text("00" * 32)


def _other_weights(package: Path) -> None:
    card = json.loads((package / "card.json").read_text())
    manifest_path = next((package / "compiled").glob("*.json"))
    manifest = json.loads(manifest_path.read_text())
    manifest["weights_sha256"] = "0" * 64
    manifest_path.write_text(json.dumps(manifest))
    assert card["weights_sha256"] != manifest["weights_sha256"]


def _other_machine(package: Path) -> None:
    for path in (package / "compiled").iterdir():
        key = compiled.this_machine().key
        path.rename(path.with_name(path.name.replace(key, "torch-2.0.0-aarch64-neon")))


HERE = compiled.this_machine()
OTHER_VENDOR_KEY = replace(HERE, vendor="intel" if HERE.vendor != "intel" else "amd").key


def _other_vendor(package: Path) -> None:
    """Built on a CPU of another vendor with the same instructions: its plan and oneDNN's
    packing were chosen for that CPU."""
    for path in (package / "compiled").iterdir():
        path.rename(path.with_name(path.name.replace(HERE.key, OTHER_VENDOR_KEY)))


def _flip_a_byte_of_the_any_batch_program(package: Path) -> None:
    library = next(p for p in (package / "compiled").glob("*.pt2")
                   if not p.name.endswith(compiled.ONE_IMAGE_SUFFIX))
    data = bytearray(library.read_bytes())
    data[len(data) // 3] ^= 0xFF
    library.write_bytes(bytes(data))


@pytest.mark.parametrize("damage, note", [
    (_flip_a_byte, "never loaded"), (_another_users_build, "never loaded"),
    (_other_weights, "other weights"), (_other_machine, "built for torch-2.0.0-aarch64-neon"),
    (_other_vendor, f"built for {OTHER_VENDOR_KEY}, this machine is"),
])
def test_a_compiled_form_that_does_not_belong_is_ignored(package, release, damage, note,
                                                          caplog):
    damage(package)
    loaded = []
    monkey = pytest.MonkeyPatch()
    monkey.setattr(compiled, "load_library", lambda data: loaded.append(data))
    try:
        model = tf2torch.load(package, inference=True)
    finally:
        monkey.undo()
    assert loaded == []  # its bytes never reach the loader
    assert model.form.startswith("inference form") and note in model.form
    assert note in caplog.text
    x, expected = tensorflow_logits(release)  # and the eager form still gives TF's numbers
    with torch.inference_mode():
        assert np.abs(model.net(torch.from_numpy(np.ascontiguousarray(x))).numpy()
                      - expected).max() < 1e-4


def test_a_compiled_form_that_disagrees_with_the_original_is_not_stored(package, capsys,
                                                                        monkeypatch, tmp_path):
    """The stored original outputs are moved off: the compiled form must fail against them.
    (The library built before is reused rather than compiled again; the check is the same.)"""
    from safetensors import safe_open
    from safetensors.numpy import load_file, save_file

    library = shutil.copy(package / "compiled" / f"{compiled.this_machine().key}.pt2",
                          tmp_path / "lib.pt2")
    monkeypatch.setattr(compiled, "_compile",
                        lambda form, shapes, layout, plan, path, _: (
                            shutil.copy(library, path), ((1, 1024), False, {}, [], None))[1])
    shutil.rmtree(package / "compiled")
    stored = package / "reference_outputs.safetensors"
    with safe_open(str(stored), "np") as f:
        meta = f.metadata()
    tensors = load_file(str(stored))
    tensors["1/output/logits"] = tensors["1/output/logits"] + 1e-3
    save_file(tensors, str(stored), metadata=meta)
    with pytest.raises(VerificationError, match="disagrees with the original's outputs"):
        tf2torch.api.compile_package(package)
    assert not any((package / "compiled").glob("*.pt2"))
    assert main(["compile", str(package)]) == 1
    assert "the compiled form disagrees" in capsys.readouterr().err


def test_under_load_single_images_are_shared_out_and_match_tensorflow(package, release,
                                                                      monkeypatch):
    """Rule 3 of `util/threads.py`: with another process busy, the program runs on one
    thread and the op is told to keep a helper on the other CPU (`native_ops.share_rows`);
    the logits are still TensorFlow's. (This stand-in's layers are below a band's minimum
    work and run whole; tests/test_shared_bands.py runs bands against Keras.)"""
    from tf2torch.packages import native_ops
    from tf2torch.util import threads

    told = []
    monkeypatch.setattr(threads, "busy_elsewhere", lambda before, after: 1.0)
    monkeypatch.setattr(native_ops, "share_rows",
                        lambda cpus, bands: told.append((list(cpus), bands)))
    monkeypatch.delenv("TF2TORCH_THREADS", raising=False)
    monkeypatch.delenv("TF2TORCH_BANDS", raising=False)
    model = tf2torch.load(package, inference=True)
    x, expected = tensorflow_logits(release)
    own = torch.get_num_threads()
    try:
        with torch.inference_mode():
            for i in range(len(x)):
                got = model.net(torch.from_numpy(np.ascontiguousarray(x[i:i + 1]))).numpy()
                assert np.abs(got - expected[i:i + 1]).max() < 1e-4
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(own)
    # told at the first call, and again only where a later look found this thread moved
    assert told and all(len(cpus) == 1 and bands == 1 for cpus, bands in told)
    assert all(cpus[0] in threads.allowed_cpus() for cpus, _ in told)
