"""Property tests: every reader, on mutations of a valid file, refuses it with a
`Tf2TorchError` or reads it, and never raises anything else, dies of a signal, runs past the
timeout or past the memory cap (`fuzzing.py`).

Seeds are files TensorFlow wrote: a `.tflite` (one conv; a chain of ops), a `.keras` and an
`.h5` (conv, BN, dense), a TF1 checkpoint bundle and its frozen `.pb`, and a package
tf2torch wrote from the `.keras`. The default run is a small derandomized budget (CI);
`-m slow` runs a large random one. Every finding is kept as a crafted-file regression test in
`test_hostile_files.py`.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("hypothesis")

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tf_graph_models
from fuzzing import Child, byte_mutations, findings, json_mutations, mutate_bytes, mutate_json
from keras_models import save_small_keras
from tflite_models import OP_MODELS, cached

SMALL = settings(max_examples=25, deadline=None, derandomize=True, database=None,
                 suppress_health_check=list(HealthCheck))
LARGE = settings(max_examples=400, deadline=None, database=None,
                 suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def child():
    process = Child()
    yield process
    process.close()
    print(f"\nfuzz outcomes: {dict(process.outcomes)}")


@pytest.fixture(scope="module")
def seeds(tmp_path_factory) -> dict[str, Path]:
    import tf2torch

    folder = tmp_path_factory.mktemp("seeds")
    save_small_keras(folder, 11)
    tf1 = tf_graph_models.tf1_graph()
    tf2torch.convert(folder / "seed.keras", folder / "package", verify=False)
    return {"tflite": cached("conv_2d_same_relu6", OP_MODELS["conv_2d_same_relu6"]),
            "tflite_chain": cached("unary_math", OP_MODELS["unary_math"]),
            "keras": folder / "seed.keras", "h5": folder / "seed.h5",
            "checkpoint": tf1 / "model.ckpt", "pb": tf1 / "frozen.pb",
            "package": folder / "package"}


def _check(child: Child, kind: str, path: Path, case: str) -> None:
    reply = child.ask(kind, path)
    assert not findings([(case, reply)]), findings([(case, reply)])


def _fresh(tmp: Path) -> Path:
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    return tmp


# ---- single files: bytes -------------------------------------------------------------------

FILES = {"tflite": ".tflite", "tflite_chain": ".tflite", "keras": ".keras", "h5": ".h5",
         "pb": ".pb"}


def _bytes_case(child, seeds, tmp_path_factory, fmt: str, mutations: list,
                kind: str = "read") -> None:
    folder = _fresh(tmp_path_factory.getbasetemp() / f"fuzz-{fmt}")
    path = folder / f"mutant{FILES[fmt]}"
    path.write_bytes(mutate_bytes(seeds[fmt].read_bytes(), mutations))
    _check(child, kind, path, f"{fmt} {kind} {mutations}")


@pytest.mark.parametrize("fmt", list(FILES))
@SMALL
@given(mutations=byte_mutations)
def test_mutated_file_is_read_or_refused(child, seeds, tmp_path_factory, fmt, mutations):
    _bytes_case(child, seeds, tmp_path_factory, fmt, mutations)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", list(FILES))
@LARGE
@given(mutations=byte_mutations)
def test_mutated_file_is_read_or_refused_large(child, seeds, tmp_path_factory, fmt, mutations):
    _bytes_case(child, seeds, tmp_path_factory, fmt, mutations)


# ---- the commands themselves: inspect, convert, verify ---------------------------------------

CLI = settings(max_examples=4, deadline=None, derandomize=True, database=None,
               suppress_health_check=list(HealthCheck))
CLI_LARGE = settings(max_examples=60, deadline=None, database=None,
                     suppress_health_check=list(HealthCheck))


@pytest.mark.parametrize("fmt", list(FILES))
@CLI
@given(mutations=byte_mutations)
def test_mutated_file_through_the_commands(child, seeds, tmp_path_factory, fmt, mutations):
    """`tf2torch inspect` and `convert --no-verify` on a mutant: exit 0 or an input error's
    code, never an internal error; a failed convert leaves no folder."""
    _bytes_case(child, seeds, tmp_path_factory, fmt, mutations, kind="cli")


@pytest.mark.slow
@pytest.mark.parametrize("fmt", list(FILES))
@CLI_LARGE
@given(mutations=byte_mutations)
def test_mutated_file_through_the_commands_with_verify(child, seeds, tmp_path_factory, fmt,
                                                       mutations):
    """... and `tf2torch verify`, which runs the original in a reference worker."""
    _bytes_case(child, seeds, tmp_path_factory, fmt, mutations, kind="cli_verify")


# ---- structured: Keras configs, checkpoint bundles, packages --------------------------------

def _keras_config_case(child, seeds, tmp_path_factory, container: str, mutations) -> None:
    folder = _fresh(tmp_path_factory.getbasetemp() / f"fuzz-config-{container}")
    if container == "keras":
        path = folder / "mutant.keras"
        with zipfile.ZipFile(seeds["keras"]) as src, zipfile.ZipFile(path, "w") as dst:
            for info in src.infolist():
                data = src.read(info)
                if info.filename in ("config.json", "metadata.json"):
                    data = json.dumps(mutate_json(json.loads(data), mutations)).encode()
                dst.writestr(info, data)
    else:
        import h5py

        path = folder / "mutant.h5"
        shutil.copy(seeds["h5"], path)
        with h5py.File(path, "r+") as h5:
            config = json.loads(h5.attrs["model_config"])
            h5.attrs["model_config"] = json.dumps(mutate_json(config, mutations))
    _check(child, "read", path, f"{container} config {mutations}")


def _checkpoint_case(child, seeds, tmp_path_factory, part: str, mutations) -> None:
    folder = _fresh(tmp_path_factory.getbasetemp() / "fuzz-ckpt")
    prefix = seeds["checkpoint"]
    for file in prefix.parent.glob(prefix.name + ".*"):
        data = file.read_bytes()
        if file.name.endswith(part):
            data = mutate_bytes(data, mutations)
        (folder / file.name).write_bytes(data)
    _check(child, "read", folder / prefix.name, f"checkpoint {part} {mutations}")


def _package_case(child, seeds, tmp_path_factory, member: str, mutations) -> None:
    """`card.json`: its graph (what tf2torch builds the module from); `card.json*`: any
    field of it (the card's own schema checks, issue 16 part A)."""
    folder = _fresh(tmp_path_factory.getbasetemp() / "fuzz-package") / "package"
    shutil.copytree(seeds["package"], folder)
    path = folder / member.rstrip("*")
    if member == "card.json":
        card = json.loads(path.read_text())
        card["config"]["graph"] = mutate_json(card["config"]["graph"], mutations[1])
        path.write_text(json.dumps(card))
    elif member == "card.json*":
        path.write_text(json.dumps(mutate_json(json.loads(path.read_text()), mutations[1])))
    else:
        path.write_bytes(mutate_bytes(path.read_bytes(), mutations[0]))
    _check(child, "package", folder, f"package {member} {mutations}")


CONTAINERS = ["keras", "h5"]
CHECKPOINT_PARTS = [".index", ".data-00000-of-00001"]
PACKAGE_MEMBERS = ["card.json", "model.safetensors"]
_both = st.tuples(byte_mutations, json_mutations)


@pytest.mark.parametrize("container", CONTAINERS)
@SMALL
@given(mutations=json_mutations)
def test_mutated_keras_config_is_read_or_refused(child, seeds, tmp_path_factory, container,
                                                 mutations):
    _keras_config_case(child, seeds, tmp_path_factory, container, mutations)


@pytest.mark.parametrize("part", CHECKPOINT_PARTS)
@SMALL
@given(mutations=byte_mutations)
def test_mutated_checkpoint_is_read_or_refused(child, seeds, tmp_path_factory, part, mutations):
    _checkpoint_case(child, seeds, tmp_path_factory, part, mutations)


@pytest.mark.parametrize("member", PACKAGE_MEMBERS)
@SMALL
@given(mutations=_both)
def test_mutated_package_is_loaded_or_refused(child, seeds, tmp_path_factory, member,
                                              mutations):
    _package_case(child, seeds, tmp_path_factory, member, mutations)


@pytest.mark.slow
@pytest.mark.parametrize("target", [*(("config", c) for c in CONTAINERS),
                                    *(("checkpoint", p) for p in CHECKPOINT_PARTS),
                                    *(("package", m) for m in [*PACKAGE_MEMBERS,
                                                               "card.json*"])])
@LARGE
@given(data=st.data())
def test_structured_mutations_large(child, seeds, tmp_path_factory, target, data):
    kind, what = target
    if kind == "config":
        _keras_config_case(child, seeds, tmp_path_factory, what, data.draw(json_mutations))
    elif kind == "checkpoint":
        _checkpoint_case(child, seeds, tmp_path_factory, what, data.draw(byte_mutations))
    else:
        _package_case(child, seeds, tmp_path_factory, what, data.draw(_both))


def test_the_seeds_themselves_read(child, seeds) -> None:
    """The harness can tell success: every unmutated seed reads (or loads) cleanly."""
    for fmt in FILES:
        assert child.ask("read", seeds[fmt])["outcome"] == "ok", fmt
    assert child.ask("read", seeds["checkpoint"])["outcome"] == "ok"
    assert child.ask("package", seeds["package"])["outcome"] == "ok"


def test_the_harness_sees_a_crash_and_a_non_tf2torch_error(child, tmp_path) -> None:
    """It can fail: a reply that is no Tf2TorchError is a finding."""
    missing = child.ask("nonexistent-kind", tmp_path)
    assert not missing["tf2torch"] and missing["outcome"] == "KeyError"
    assert findings([("x", missing)])
