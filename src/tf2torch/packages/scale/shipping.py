"""How a package reaches Ray's workers: from its folder where they can see it, else by value.

The driver always puts the package's files (weights, card, README: a few MB to a few hundred)
into Ray's object store once, by reference. Each model actor first looks at the package's
path: on a single machine, or where the repository is on shared storage (NFS, a mounted
bucket), the folder is there with the same weights and is loaded from disk, and the
object-store copy is never fetched. Otherwise the actor fetches the copy, writes it to a
temporary folder and loads it from there, with the same checks (card schema, weights
sha256) as any package load. Nothing is downloaded from anywhere else.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tf2torch.errors import PackageError
from tf2torch.packages.card import Card
from tf2torch.packages.package import CARD, LoadedModel, load_package

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Shipment:
    """A package as the actors receive it: where it lives on the driver, and a copy."""

    path: str
    weights_sha256: str
    files: Any  # ray.ObjectRef to {file name: bytes}


def ship(package: Path) -> Shipment:
    """Put `package`'s files into the object store (needs a connected Ray)."""
    import ray

    card = Card.read(package / CARD)
    files = {p.name: p.read_bytes() for p in sorted(package.iterdir()) if p.is_file()}
    return Shipment(str(package.resolve()), card.weights_sha256, ray.put(files))


def receive(shipment: Shipment) -> tuple[LoadedModel, str]:
    """The package on this worker, and the route it came by ("shared path" or "object store")."""
    here = Path(shipment.path)
    if _same_package(here, shipment.weights_sha256):
        return load_package(here), "shared path"
    import ray

    with tempfile.TemporaryDirectory(prefix="tf2torch-package-") as tmp:
        for name, data in ray.get(shipment.files).items():
            (Path(tmp) / name).write_bytes(data)
        model = load_package(Path(tmp))  # reads everything into memory; the folder can go
    model.path = here
    return model, "object store"


def _same_package(folder: Path, weights_sha256: str) -> bool:
    """The driver's package is visible here, with the same weights."""
    try:
        return Card.read(folder / CARD).weights_sha256 == weights_sha256
    except (PackageError, OSError):
        return False
