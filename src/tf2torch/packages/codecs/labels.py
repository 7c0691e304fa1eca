"""Label sets shipped with tf2torch (tf2torch/data), read and checked once.
"""

from __future__ import annotations

import functools
import importlib.resources

from tf2torch.errors import PackageError

LABEL_FILES: dict[str, tuple[str, int]] = {
    # label set name -> (file in tf2torch/data, number of classes)
    "imagenet-1k": ("imagenet1k_labels.tsv", 1000),
}


@functools.cache
def load_label_set(name: str) -> tuple[tuple[str, str], ...]:
    """(wnid, readable name) per class of a label set shipped with tf2torch."""
    if name not in LABEL_FILES:
        raise PackageError(f"unknown label set {name!r}; known: {sorted(LABEL_FILES)}")
    filename, count = LABEL_FILES[name]
    rows = _read_label_file(filename)
    if len(rows) != count:
        raise PackageError(f"label file {filename} has {len(rows)} classes, expected {count}")
    return rows


def _read_label_file(filename: str) -> tuple[tuple[str, str], ...]:
    resource = importlib.resources.files("tf2torch") / "data" / filename
    try:
        text = resource.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        raise PackageError(
            f"label file tf2torch/data/{filename} is missing; reinstall tf2torch"
        ) from None
    rows = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        wnid, tab, label = line.partition("\t")
        if not tab or not wnid or not label.strip():
            raise PackageError(f"{filename}:{lineno}: expected 'wnid<TAB>name', got {line!r}")
        rows.append((wnid, label.strip()))
    return tuple(rows)
