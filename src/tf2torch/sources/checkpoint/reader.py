"""Read TensorFlow V2 checkpoints (tensor bundles) without TensorFlow.

A checkpoint `<prefix>` is an index `<prefix>.index` (`table.py`) plus data shards
`<prefix>.data-NNNNN-of-MMMMM` (`bundle.py`). The index is parsed once; each tensor is read
from its shard only when asked for. This module finds the prefix a user means (a prefix, its
`.index`, a shard, or a folder) and what lies beside it (a release's reference files).
"""

from __future__ import annotations

import re
from pathlib import Path

from tf2torch.errors import SourceError
from tf2torch.sources.checkpoint.bundle import read_bundle
from tf2torch.sources.model import SourceModel
from tf2torch.util.files import read_regular

__all__ = ["RUNNABLE_PATTERNS", "find_runnables", "read_checkpoint", "release_meta"]

FORMAT = "tf-checkpoint"

_SHARD_RE = re.compile(r"\.data-\d{5}-of-\d{5}$")
# Published release names: `<arch>_<multiplier>_<input size>[_quant]`, e.g. mobilenet_v2_1.4_224.
_RELEASE_RE = re.compile(r"[a-z][a-z0-9_]*?_\d+\.\d+_(?P<size>\d{2,4})(?:_quant)?")
_CHECKPOINT_LINE_RE = re.compile(r'^\s*model_checkpoint_path:\s*"((?:[^"\\]|\\.)*)"', re.M)




def _prefix_from_checkpoint_file(folder: Path) -> Path | None:
    """The `model_checkpoint_path` of a folder's `checkpoint` state file, if any."""
    state = folder / "checkpoint"
    if not (state.exists() or state.is_symlink()):
        return None
    text = read_regular(state, "checkpoint state file", SourceError, within=folder,
                        limit=1 << 20).decode("utf-8", "replace")
    match = _CHECKPOINT_LINE_RE.search(text)
    if not match:
        raise SourceError(f"{state}: no model_checkpoint_path line")
    prefix = folder / match.group(1).replace('\\"', '"').replace("\\\\", "\\")
    # Folders are often moved after training; TF then falls back to the name beside the file.
    if not _index_path(prefix).exists() and _index_path(folder / prefix.name).exists():
        prefix = folder / prefix.name
    return prefix


def _index_path(prefix: Path) -> Path:
    return prefix.with_name(prefix.name + ".index")


def _prefix_in_folder(folder: Path) -> Path:
    from_state = _prefix_from_checkpoint_file(folder)
    if from_state is not None:
        return from_state
    indexes = sorted(folder.glob("*.index"))
    if len(indexes) != 1:
        found = ", ".join(p.name for p in indexes) or "none"
        raise SourceError(
            f"{folder}: not a SavedModel (no saved_model.pb) and not a checkpoint folder "
            f"(expected a 'checkpoint' file or exactly one *.index, found {found})"
        )
    return indexes[0].with_suffix("")


def _resolve_prefix(path: Path) -> Path:
    """Accept a prefix, its `.index`, one of its data shards, or a folder holding one."""
    if path.is_dir():
        return _prefix_in_folder(path)
    if path.name.endswith(".index"):
        return path.with_suffix("")
    if _SHARD_RE.search(path.name):
        return path.with_name(_SHARD_RE.sub("", path.name))
    if path.name.endswith(".meta") and not _index_path(path).exists():
        return path.with_suffix("")
    return path


def release_meta(name: str) -> dict[str, object]:
    """`release` and `input_size` when `name` looks like a published release name."""
    match = _RELEASE_RE.fullmatch(name)
    if not match:
        return {}
    return {"release": name, "input_size": int(match.group("size"))}


def _stem(prefix: Path) -> str:
    """`mobilenet_v2_1.4_224` of `mobilenet_v2_1.4_224.ckpt` (or `.ckpt-1000`)."""
    return re.sub(r"\.ckpt(-\d+)?$", "", prefix.name)


def _release_from(prefix: Path) -> dict[str, object]:
    return release_meta(_stem(prefix)) or release_meta(prefix.parent.name)


def _pick(candidates: list[Path], stem: str) -> Path | None:
    """The candidate named after the checkpoint if any, else the first by name."""
    if not candidates:
        return None
    ranked = sorted(candidates, key=lambda p: (not p.name.startswith(stem), len(p.name), p))
    return ranked[0]


# Reference files beside a checkpoint, by kind.
RUNNABLE_PATTERNS: dict[str, tuple[str, ...]] = {
    "tflite": ("*.tflite",),
    "frozen_pb": ("*_frozen.pb", "frozen_graph.pb"),
    "tests_h5": ("tests.h5",),
    "keras": ("*.keras",),
}


def find_runnables(folder: Path, stem: str, recursive: bool = False) -> dict[str, Path]:
    """Reference files beside a checkpoint: `tflite`, `frozen_pb`, `tests_h5`, `keras` paths.
    FIFOs, devices and links are not reference files (the reader never opens them)."""
    glob = folder.rglob if recursive else folder.glob
    found: dict[str, Path] = {}
    for kind, globs in RUNNABLE_PATTERNS.items():
        candidates = [p for pattern in globs for p in glob(pattern)
                      if p.is_file() and not p.is_symlink()]
        chosen = _pick(candidates, stem)
        if chosen is not None:
            found[kind] = chosen
    return found


def read_checkpoint(path: str | Path, confine: Path | None = None) -> SourceModel:
    """Open a TF V2 checkpoint; tensors are read (and crc-checked) lazily, one per access.

    `path` may be the prefix (`dir/model.ckpt`), its `.index`, a data shard, or a folder with
    a `checkpoint` state file or exactly one `*.index`. Index and shards must be regular
    files inside `confine` (default: the checkpoint's folder); links may point within it.
    """
    prefix = _resolve_prefix(Path(path))
    store, num_shards = read_bundle(prefix, confine or prefix.parent)
    meta: dict[str, object] = {"num_shards": num_shards, **_release_from(prefix)}
    runnable = find_runnables(prefix.parent, _stem(prefix))
    meta_graph = prefix.with_name(prefix.name + ".meta")
    if meta_graph.is_file():  # the TF1 graph the checkpoint was saved from
        runnable["meta_graph"] = meta_graph
    return SourceModel(
        format=FORMAT,
        path=prefix,
        tensors=store,
        meta=meta,
        runnable=runnable,
    )
