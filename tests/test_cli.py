"""The command line on TF-written stand-in releases: convert, verify, inspect, repository, predict.

Bad inputs must give one clear line naming the culprit, a non-zero exit, and nothing at the
output path.
"""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest

from tf2torch.cli import main

tf = pytest.importorskip("tensorflow")


def run(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def small_release(standin):
    return standin(0.35, 96)  # with .tflite and .tgz


def test_convert_release_archive_verifies_against_frozen_graph(small_release, capsys) -> None:
    code, out, err = run(capsys, "convert", small_release.archive, "--json")
    assert code == 0, err
    report = json.loads(out)
    ver = report["verification"]
    assert ver["passed"] and ver["reference"].startswith("TensorFlow frozen graph")
    assert {(c["case"], c["output"]) for c in ver["comparisons"]} == {
        (case, out) for case in ("zeros", "random") for out in ("logits", "probabilities")}
    assert all(c["max_abs"] <= 1e-4 for c in ver["comparisons"])
    assert report["mapping"]["used"] == 262 and report["mapping"]["missing"] == []
    assert Path(report["path"]).name == "mobilenet_v2_0.35_96"

    code, out, _ = run(capsys, "list", "--json")
    assert [r["name"] for r in json.loads(out)] == ["mobilenet_v2_0.35_96"]
    code, out, _ = run(capsys, "show", "mobilenet_v2_0.35_96")
    assert "## Verification" in out and "PASS" in out
    # publishing again is refused unless asked
    code, _, err = run(capsys, "convert", small_release.archive)
    assert code != 0 and "already exists" in err and "--overwrite" in err
    code, _, _ = run(capsys, "remove", "mobilenet_v2_0.35_96")
    assert code == 0
    code, out, _ = run(capsys, "list", "--json")
    assert json.loads(out) == []


def test_verify_against_the_release_tflite(small_release, capsys) -> None:
    code, out, _ = run(capsys, "verify", small_release.archive, "--json", "--reference",
                       small_release.tflite)
    report = json.loads(out)
    assert code == 0 and report["reference"].startswith("TFLite interpreter")
    assert all(c["max_abs"] <= 1e-5 for c in report["comparisons"])


def test_verify_command_table_and_json(small_release, capsys, tmp_path) -> None:
    code, out, _ = run(capsys, "verify", small_release.prefix, "--reference",
                       small_release.tests_h5, "--output", tmp_path / "r.json")
    assert code == 0
    assert "logits" in out and "probabilities" in out and "verdict: PASS" in out
    saved = json.loads((tmp_path / "r.json").read_text())
    assert saved["passed"] and len(saved["comparisons"]) == 4


def test_verify_fails_when_weights_are_wrong(standin, capsys) -> None:
    release = standin(1.0, 128, tflite=False, pack=False, ema=True)
    code, out, _ = run(capsys, "verify", release.prefix, "--no-ema", "--reference",
                       release.tests_h5)
    assert code == 1 and "FAIL" in out


def test_inspect_groups_by_scope(small_release, capsys) -> None:
    code, out, _ = run(capsys, "inspect", small_release.prefix, "--json")
    assert code == 0
    data = json.loads(out)
    scopes = {g["scope"]: g for g in data["scopes"]}
    assert "MobilenetV2/expanded_conv_1/expand" in scopes
    assert len(scopes["MobilenetV2/Conv"]["tensors"]) == 5  # weights + 4 BatchNorm
    assert sum(len(g["tensors"]) for g in data["scopes"]) == 262
    code, out, _ = run(capsys, "inspect", small_release.prefix)
    assert "MobilenetV2/Logits/Conv2d_1c_1x1" in out


# --- bad inputs --------------------------------------------------------------------------------

def _copy_checkpoint(release, tmp_path: Path) -> Path:
    folder = tmp_path / "ckpt"
    shutil.copytree(release.prefix.parent, folder)
    return folder / release.prefix.name


def _truncate_data(prefix: Path) -> str:
    data = next(prefix.parent.glob(prefix.name + ".data-*"))
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    return data.name


def _corrupt_index(prefix: Path) -> str:
    index = prefix.with_name(prefix.name + ".index")
    raw = bytearray(index.read_bytes())
    raw[len(raw) // 3] ^= 0xFF
    index.write_bytes(bytes(raw))
    return index.name


def _flip_data_byte(prefix: Path) -> str:
    data = next(prefix.parent.glob(prefix.name + ".data-*"))
    raw = bytearray(data.read_bytes())
    raw[1000] ^= 0x01
    data.write_bytes(bytes(raw))
    return data.name


def _rewrite(prefix: Path, edit) -> str:
    from tf2torch.sources import open_source

    model = open_source(prefix)
    tensors = {n: model.tensors[n] for n in model.tensors}
    culprit = edit(tensors)
    for f in prefix.parent.glob(prefix.name + ".*"):
        f.unlink()
    names = sorted(tensors)
    tf.raw_ops.SaveV2(prefix=str(prefix), tensor_names=names, shape_and_slices=[""] * len(names),
                      tensors=[tf.constant(tensors[n]) for n in names])
    return culprit


def _drop_tensor(prefix: Path) -> str:
    def edit(tensors):
        del tensors["MobilenetV2/expanded_conv_5/project/weights"]
        return "features.expanded_conv_5.project.conv.weight"

    return _rewrite(prefix, edit)


def _wrong_shape(prefix: Path) -> str:
    def edit(tensors):
        name = "MobilenetV2/expanded_conv_2/depthwise/BatchNorm/gamma"
        tensors[name] = np.concatenate([tensors[name], tensors[name][:1]])
        return name

    return _rewrite(prefix, edit)


@pytest.mark.parametrize("damage", [_truncate_data, _corrupt_index, _flip_data_byte, _drop_tensor,
                                    _wrong_shape])
def test_damaged_checkpoint_is_refused_by_name(small_release, capsys, tmp_path, damage) -> None:
    prefix = _copy_checkpoint(small_release, tmp_path)
    culprit = damage(prefix)
    out_dir = tmp_path / "out"
    code, _, err = run(capsys, "convert", prefix, "-o", out_dir, "--no-verify")
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tf2torch: error:"), err
    assert culprit in lines[0]
    assert not out_dir.exists()


def test_archive_escaping_member_is_refused(small_release, capsys, tmp_path) -> None:
    evil = tmp_path / "mobilenet_v2_0.35_96.tgz"
    with tarfile.open(evil, "w:gz") as tar:
        tar.add(small_release.prefix.with_name(small_release.prefix.name + ".index"),
                arcname="../escape.ckpt.index")
    out_dir = tmp_path / "out"
    code, _, err = run(capsys, "convert", evil, "-o", out_dir)
    assert code != 0 and "../escape.ckpt.index" in err and len(err.strip().splitlines()) == 1
    assert not out_dir.exists() and not (tmp_path.parent / "escape.ckpt.index").exists()


def test_unknown_model_name_suggests_close_ones(small_release, capsys) -> None:
    assert run(capsys, "convert", small_release.archive)[0] == 0
    code, _, err = run(capsys, "show", "mobilenet_v2_0.35_69")
    assert code != 0 and "did you mean mobilenet_v2_0.35_96" in err


def test_verify_per_layer_with_plot(small_release, capsys, tmp_path) -> None:
    code, out, _ = run(capsys, "verify", small_release.archive, "--per-layer", "--json",
                       "--plot", tmp_path / "layers.png")
    assert code == 0
    report = json.loads(out)
    assert report["passed"] and report["first_failure"] is None
    assert report["reference"].startswith("TensorFlow frozen graph")  # the release's own
    assert len(report["layers"]) > 100
    assert (tmp_path / "layers.png").stat().st_size > 10_000


def test_verify_per_layer_against_the_release_tflite(small_release, capsys) -> None:
    code, out, _ = run(capsys, "verify", small_release.archive, "--per-layer", "--json",
                       "--reference", small_release.tflite)
    report = json.loads(out)
    assert code == 0 and report["reference"].startswith("TFLite interpreter")
    assert 20 < len(report["layers"]) < 100  # fused ops: unit and block outputs only


def test_verify_per_layer_refuses_an_unknown_reference_kind(small_release, capsys) -> None:
    info = next(small_release.prefix.parent.glob("*_info.txt"))
    code, _, err = run(capsys, "verify", small_release.archive, "--per-layer", "--reference", info)
    assert code != 0 and "frozen .pb, .keras or .tflite" in err


def test_demo_runs_end_to_end(small_release, capsys, tmp_path) -> None:
    """`tf2torch demo` (README's first command), on the small stand-in: the release is the
    cached one, so this checks the convert → verify → publish → list → classify steps."""
    workdir = tmp_path / "demo"
    workdir.mkdir()
    shutil.copy(small_release.archive, workdir)
    code, out, _ = run(capsys, "demo", "--multiplier", "0.35", "--size", "96",
                       "--workdir", workdir)
    assert code == 0
    assert "verdict: PASS" in out and "image:astronaut.jpg" in out
    assert "tf2torch list\n      mobilenet_v2_0.35_96" in out
    assert "layers within tolerance; verdict PASS" in out
    assert out.count("  0.") >= 3  # three classes with their probabilities
    assert "serve mobilenet_v2_0.35_96 --open" in out


@pytest.mark.parametrize("kind", ["archive", "keras", "tflite"])
def test_convert_without_tensorflow(small_release, tmp_path, kind) -> None:
    """Reading and converting never import TensorFlow: run the CLI in a fresh interpreter in
    which `import tensorflow` (and keras) fails, then load the package there too."""
    import subprocess
    import sys

    if kind == "archive":
        source = small_release.archive
    else:
        model = tf.keras.Sequential([tf.keras.Input((8, 8, 3)), tf.keras.layers.Conv2D(4, 3),
                                     tf.keras.layers.GlobalAveragePooling2D()])
        source = tmp_path / f"m.{kind}"
        if kind == "keras":
            model.save(source)
        else:
            source.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    script = (
        "import sys\n"
        "for name in ('tensorflow', 'keras', 'tf_keras'): sys.modules[name] = None\n"
        "from tf2torch.cli import main\n"
        f"code = main(['convert', {str(source)!r}, '-o', {str(tmp_path / 'pkg')!r}, "
        "'--no-verify'])\n"
        "import tf2torch\n"
        f"tf2torch.load({str(tmp_path / 'pkg')!r})\n"
        "sys.exit(code)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "pkg" / "model.safetensors").exists()
