"""Crafted `.keras`/`.h5` files (and what the fuzz tests found): each is refused in one
`SourceError` naming the file and the dataset, member or layer, before anything is read from
outside the file, decompressed blindly or built. Seeds are models Keras wrote."""

from __future__ import annotations

import json
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest

from keras_models import save_small_keras
from tf2torch.conversion.graph import build_from_ir
from tf2torch.errors import SourceError, UnsupportedError
from tf2torch.sources import open_source

pytest.importorskip("tensorflow")

KERNEL = "model_weights/conv/conv/kernel"


@pytest.fixture(scope="module")
def seeds(tmp_path_factory) -> dict[str, Path]:
    return save_small_keras(tmp_path_factory.mktemp("keras-seeds"), 13)


def _replace_dataset(path: Path, name: str, **create) -> None:
    with h5py.File(path, "r+") as h5:
        old = h5[name]
        shape, dtype = create.pop("shape", old.shape), old.dtype
        del h5[name]
        h5.create_dataset(name, shape=shape, dtype=dtype, **create)


def _external_storage(path: Path, tmp: Path) -> None:  # data "stored" in /dev/zero
    _replace_dataset(path, KERNEL, external=[("/dev/zero", 0, h5py.h5f.UNLIMITED)])


def _external_link(path: Path, tmp: Path) -> None:  # weights read from another file
    other = tmp / "elsewhere.h5"
    with h5py.File(path, "r") as h5, h5py.File(other, "w") as out:
        out["kernel"] = np.asarray(h5[KERNEL])
    with h5py.File(path, "r+") as h5:
        del h5[KERNEL]
        h5[KERNEL] = h5py.ExternalLink(str(other), "/kernel")


def _swapped_kernel(path: Path, tmp: Path) -> None:
    with h5py.File(path, "r+") as h5:
        kernel = np.asarray(h5[KERNEL])
        del h5[KERNEL]
        h5[KERNEL] = kernel.transpose(0, 1, 3, 2).copy()  # (3, 3, 4, 3): in and out swapped


def _absurd_width(path: Path, tmp: Path) -> None:  # declared, never written
    _replace_dataset(path, "model_weights/dense/dense/kernel", shape=(64, 10**9))


def _non_utf8_name(path: Path, tmp: Path) -> None:  # fuzz finding: h5py's SystemError
    with h5py.File(path, "r+") as h5:
        h5.id.links.create_hard(b"model_weights/\xff\xfe", h5.id, b"model_weights/flat")


def _config(edit: Callable[[dict], None]) -> Callable[[Path, Path], None]:
    def patch(path: Path, tmp: Path) -> None:
        with h5py.File(path, "r+") as h5:
            config = json.loads(h5.attrs["model_config"])
            edit(config)
            h5.attrs["model_config"] = json.dumps(config)

    return patch


def _layer(config: dict, name: str) -> dict:
    return next(layer for layer in config["config"]["layers"] if layer["name"] == name)


def _set(name: str, key: str, value) -> Callable[[dict], None]:
    return lambda config: _layer(config, name)["config"].__setitem__(key, value)


def _negative_input(config: dict) -> None:  # fuzz finding: torch's "negative dimension"
    layer = next(x for x in config["config"]["layers"] if x["class_name"] == "InputLayer")
    layer["config"]["batch_shape"] = [None, 8, -1, 3]


def _called_on_nothing(config: dict) -> None:  # fuzz finding: "forward() missing x"
    _layer(config, "flat")["inbound_nodes"][0]["args"] = []


def _name_not_text(config: dict) -> None:  # fuzz finding: re.sub on a list
    _layer(config, "dense")["name"] = [["x"]]


H5_CASES: dict[str, tuple[Callable, str]] = {
    "external_storage_dev_zero": (_external_storage, r"'model_weights/conv/conv/kernel' keeps "
                                                     r"its data in HDF5 external storage"),
    "external_link": (_external_link, r"external link, to a file outside the model"),
    "swapped_kernel": (_swapped_kernel, r"layer 'conv' \(Conv2D\): kernel of shape "
                                        r"\[3, 3, 4, 3\] does not fit its config"),
    "absurd_dense_width": (_absurd_width, r"dense/kernel'.*64,000,000,000 elements"),
    "filters_a_string": (_config(_set("conv", "filters", "x")),
                         r"layer 'conv' \(Conv2D\): filters is 'x'"),
    "kernel_size_nested": (_config(_set("conv", "kernel_size", [[3, 3], [3]])),
                           r"layer 'conv' \(Conv2D\): kernel_size is \[\[3, 3\], \[3\]\]"),
    "units_huge": (_config(_set("dense", "units", 10**12)), r"layer 'dense' \(Dense\): units"),
    "negative_input": (_config(_negative_input), r"not a positive integer"),
    "called_on_nothing": (_config(_called_on_nothing), r"layer 'flat' .* called on no tensor"),
    "name_not_text": (_config(_name_not_text), r"not a text|not laid out"),
}


@pytest.mark.parametrize("case", list(H5_CASES))
def test_crafted_h5_is_refused(seeds, tmp_path, case: str) -> None:
    edit, message = H5_CASES[case]
    path = tmp_path / f"{case}.h5"
    shutil.copy(seeds["h5"], path)
    edit(path, tmp_path)
    with pytest.raises(SourceError, match=message) as info:
        open_source(path)
    assert str(info.value).startswith(str(path)) and "\n" not in str(info.value)


def _rezip(seed: Path, path: Path, edit: Callable[[str, bytes], bytes | None],
           extra: dict[str, tuple[bytes, int]] | None = None) -> None:
    with zipfile.ZipFile(seed) as src, zipfile.ZipFile(path, "w") as dst:
        for info in src.infolist():
            data = edit(info.filename, src.read(info))
            if data is not None:
                dst.writestr(info, data)
        for name, (data, method) in (extra or {}).items():
            dst.writestr(zipfile.ZipInfo(name), data, compress_type=method)


def _json_edit(member: str, edit: Callable[[dict], None]):
    def patch(name: str, data: bytes) -> bytes:
        if name != member:
            return data
        document = json.loads(data)
        edit(document)
        return json.dumps(document).encode()

    return patch


KERAS_CASES: dict[str, tuple[Callable, dict, str]] = {
    "version_not_a_number": (_json_edit("metadata.json",
                                        lambda d: d.__setitem__("keras_version", "x")), {},
                             r"metadata.json: Keras version 'x' is not a version number"),
    "traversal_member": (lambda n, d: d, {"../../evil.txt": (b"x", zipfile.ZIP_STORED)},
                         r"archive member '../../evil.txt' points outside the archive"),
    "inflating_member": (lambda n, d: d, {"padding.bin": (bytes(20 << 20),
                                                          zipfile.ZIP_DEFLATED)},
                         r"archive member 'padding.bin' inflates [\d,]+×"),
    "deep_json": (lambda n, d: b"[" * 5000 + b"]" * 5000 if n == "config.json" else d, {},
                  r"config.json: declares 5,000 levels of JSON nesting"),
    "strides_a_list_of_strings": (_json_edit("config.json", lambda d: _layer(d, "conv")[
        "config"].__setitem__("strides", ["2", "2"])), {}, r"layer 'conv' \(Conv2D\): strides"),
}


@pytest.mark.parametrize("case", list(KERAS_CASES))
def test_crafted_keras_archive_is_refused(seeds, tmp_path, case: str) -> None:
    edit, extra, message = KERAS_CASES[case]
    path = tmp_path / f"{case}.keras"
    _rezip(seeds["keras"], path, edit, extra)
    with pytest.raises(SourceError, match=message) as info:
        open_source(path)
    assert str(info.value).startswith(str(path)) and "\n" not in str(info.value)


def test_a_link_name_that_is_not_utf8_is_walked(seeds, tmp_path) -> None:
    """Fuzz finding: h5py's high-level visitors failed on such a name with a SystemError
    from inside HDF5's callback; the walk on raw names reads the file."""
    path = tmp_path / "name.h5"
    shutil.copy(seeds["h5"], path)
    _non_utf8_name(path, tmp_path)
    assert open_source(path).graph.nodes


def test_the_seeds_read(seeds) -> None:
    for path in seeds.values():
        assert open_source(path).graph.nodes


def test_card_graph_of_another_structure_is_a_source_error(seeds) -> None:
    """Fuzz finding: a package card whose graph holds a list where a name belongs."""
    graph = open_source(seeds["keras"]).graph.to_json()
    graph["nodes"][1]["inputs"] = [["x"]]
    with pytest.raises(SourceError, match="graph IR of another structure"):
        build_from_ir(graph)
    graph = open_source(seeds["keras"]).graph.to_json()
    graph["nodes"][1]["inputs"] = ["nowhere:0"]
    with pytest.raises(SourceError, match="tensor 'nowhere:0' is no input and no node's output"):
        build_from_ir(graph)


def test_card_graph_attribute_a_converter_cannot_use_names_the_node(seeds) -> None:
    """Fuzz finding (slow budget): a stride of 0 in a card's graph divided by zero in the
    conv converter; any such failure is one error naming the node."""
    graph = open_source(seeds["keras"]).graph.to_json()
    conv = next(n for n in graph["nodes"] if n["op"] == "Conv2D")
    conv["attrs"]["strides"] = [0, 0]
    with pytest.raises(UnsupportedError, match=r"^conv \(Conv2D\): cannot convert: .*zero"):
        build_from_ir(graph)


def test_stored_reference_with_external_storage_is_refused(tmp_path) -> None:
    """A release's `tests.h5` is HDF5 too: a dataset kept in /dev/zero is not read."""
    from tf2torch.references.tensorflow import stored_reference

    path = tmp_path / "tests.h5"
    with h5py.File(path, "w") as h5:
        h5["RandomInput"] = np.zeros((1, 4, 4, 3), np.float32)
        h5["OutputForZeros"] = np.zeros((1, 5), np.float32)
        h5.create_dataset("OutputForRandom", shape=(1, 5), dtype="f4",
                          external=[("/dev/zero", 0, h5py.h5f.UNLIMITED)])
    with pytest.raises(SourceError, match=r"tests.h5: dataset 'OutputForRandom' keeps its "
                                          "data in HDF5 external storage"):
        stored_reference(path)
