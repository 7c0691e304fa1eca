"""Reader of TensorFlow graphs: SavedModels, frozen GraphDefs and TF1 meta graphs."""

from __future__ import annotations

from pathlib import Path


def is_saved_model(path: Path) -> bool:
    """A SavedModel folder or its `saved_model.pb(txt)`; here, not in `reader.py`, so that
    `open_source` can tell without importing the graph reader (a checkpoint never needs it)."""
    return (path.is_dir() and any((path / n).is_file() for n in ("saved_model.pb",
                                                                 "saved_model.pbtxt"))) \
        or path.name in ("saved_model.pb", "saved_model.pbtxt")
