"""Packages and the repository against hostile or damaged entries: wrong card types, FIFOs
and links where package files belong, weights whose dtype no longer fits, symlinked
repository entries. Each must give one clear error (or, for `list`, one note) and never
read or write through a link."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import tf2torch
from tf2torch.cli import main
from tf2torch.errors import PackageError
from tf2torch.packages.package import sha256_file
from tf2torch.packages.repository import models_dir

pytestmark = pytest.mark.usefixtures("no_hang")  # conftest.py: a FIFO fails, not hangs


@pytest.fixture(scope="module")
def package(standin, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pkg") / "mnv2"
    tf2torch.convert(standin(0.35, 96).archive, out, verify=False)
    return out


@pytest.fixture
def pkg(package: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "mnv2"
    shutil.copytree(package, copy)
    return copy


def _edit_card(pkg: Path, **fields) -> None:
    card = json.loads((pkg / "card.json").read_text())
    for key, value in fields.items():
        if "." in key:
            outer, inner = key.split(".")
            card[outer][inner] = value
        else:
            card[key] = value
    (pkg / "card.json").write_text(json.dumps(card))


@pytest.mark.parametrize(("fields", "message"), [
    ({"verification": "yes"}, "field 'verification' is a string, expected dict[str, Any] | None"),
    ({"encoder": [1, 2]}, "field 'encoder' is a list, expected dict[str, Any] | None"),
    ({"parameters": "many"}, "field 'parameters' is a string, expected int"),
    ({"parameters": True}, "field 'parameters' is a boolean, expected int"),
    ({"notes": ["ok", 3]}, "field 'notes' is a list, expected list[str]"),
    ({"input.shape": "96"}, "field 'input.shape' is a string, which tf2torch cannot use"),
    ({"decoder": {"kind": "imagenet"}}, "decoder: field 'kind' is unknown"),
    ({"decoder.label_set": 7}, "decoder"),
    ({"decoder.num_classes": "many"}, "field 'decoder.num_classes' is a string"),
    ({"config": {"depth_multiplier": "wide"}}, "field 'config' cannot be used"),
])
def test_card_field_of_the_wrong_type_is_named(pkg: Path, fields: dict, message: str,
                                               capsys) -> None:
    _edit_card(pkg, **fields)
    with pytest.raises(PackageError) as caught:
        tf2torch.load(pkg)
    assert str(pkg / "card.json") in str(caught.value) and message in str(caught.value)
    code, _, err = main(["predict", str(pkg), str(pkg / "README.md")]), *capsys.readouterr()
    assert code == 2 and err.count("\n") == 1 and message in err


def test_deeply_nested_card(pkg: Path) -> None:
    (pkg / "card.json").write_text("[" * 200_000)
    with pytest.raises(PackageError, match="nested too deeply"):
        tf2torch.load(pkg)


@pytest.mark.parametrize("victim", ["card.json", "model.safetensors"])
def test_fifo_or_device_link_as_package_file(pkg: Path, victim: str) -> None:
    (pkg / victim).unlink()
    os.mkfifo(pkg / victim)
    with pytest.raises(PackageError, match=rf"{victim}: .* is a FIFO, not a regular file"):
        tf2torch.load(pkg)
    (pkg / victim).unlink()
    (pkg / victim).symlink_to("/dev/zero")
    with pytest.raises(PackageError, match=rf"{victim}: .* is a symbolic link"):
        tf2torch.load(pkg)


def test_weights_whose_dtype_changed_are_refused(pkg: Path) -> None:
    state = load_file(pkg / "model.safetensors")
    key = next(k for k, v in state.items() if v.dtype == torch.float32)
    state[key] = state[key].double()  # same values, another dtype: torch would cast silently
    save_file(state, pkg / "model.safetensors")
    _edit_card(pkg, weights_sha256=sha256_file(pkg / "model.safetensors"))  # sha "repaired"
    with pytest.raises(PackageError, match=rf"tensor '{key}' is float64 \[.*\], the card's "
                       r"architecture expects float32"):
        tf2torch.load(pkg)


def test_show_does_not_follow_a_readme_link(pkg: Path, tmp_path: Path, capsys) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("the user's private notes")
    (pkg / "README.md").unlink()
    (pkg / "README.md").symlink_to(secret)
    code = main(["show", str(pkg)])
    out, err = capsys.readouterr()
    assert code == 2 and "private" not in out + err and "symbolic link" in err


def test_symlinked_repository_entry(package: Path, tmp_path: Path, capsys) -> None:
    target = tmp_path / "elsewhere"
    shutil.copytree(package, target)
    models_dir().mkdir(parents=True, exist_ok=True)
    (models_dir() / "linked").symlink_to(target)
    code = main(["show", "linked"])
    assert code == 2 and "symbolic link" in capsys.readouterr().err
    with pytest.raises(PackageError, match="refusing to write through it"):
        tf2torch.load(package).save(models_dir() / "linked", overwrite=True)
    assert sorted(os.listdir(target)) == sorted(os.listdir(package))  # untouched
    assert main(["remove", "linked"]) == 0
    assert not (models_dir() / "linked").is_symlink() and (target / "card.json").is_file()


def test_remove_refuses_a_folder_that_is_not_a_package(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "precious"
    folder.mkdir()
    (folder / "data.txt").write_text("keep me")
    assert main(["remove", str(folder)]) == 2
    assert "not a tf2torch package" in capsys.readouterr().err
    assert (folder / "data.txt").is_file()


def test_list_notes_bad_entries_and_lists_the_rest(package: Path, tmp_path: Path,
                                                   capsys) -> None:
    root = models_dir()
    root.mkdir(parents=True, exist_ok=True)
    shutil.copytree(package, root / "good")
    shutil.copytree(package, root / "wrong-type")
    _edit_card(root / "wrong-type", parameters="many")
    (root / "no-card").mkdir()
    (root / "link").symlink_to(package)
    code = main(["list"])
    out, err = capsys.readouterr()
    assert code == 0 and "good" in out and "wrong-type" not in out
    notes = err.strip().splitlines()
    assert [n.split(":")[1].strip() for n in notes] == ["link", "no-card", "wrong-type"]
    assert "field 'parameters' is a string" in notes[2]
    assert main(["list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["name"], "error" in r) for r in rows] == [
        ("good", False), ("link", True), ("no-card", True), ("wrong-type", True)]


def test_oversized_card_string_refused_at_writing(package: Path, tmp_path: Path) -> None:
    model = tf2torch.load(package)
    with pytest.raises(PackageError, match=r"card field notes\[\d+\] is a string of 2,097,152 "
                       r"characters, more than the 1,048,576"):
        model.save(tmp_path / "out", note="x" * (2 << 20))
    assert not (tmp_path / "out").exists()
