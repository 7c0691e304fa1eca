"""AOTInductor programs loaded from bytes already checked against their seal (`compiled.py`
checks them): `Library` calls one like the module it was compiled from, `Deferred` loads a
pair's any-batch program on its first batch, hashing its bytes again first."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
import torch.utils._pytree as pytree

from tf2torch.errors import PackageError


def load_library(data: bytes) -> Library:
    """Load an AOTInductor package from bytes already checked, via a private copy (in
    memory where /dev/shm is: a 100 MB copy to /tmp took 0.03-0.28 s here, 0.04-0.05 there)."""
    shm = "/dev/shm" if os.access("/dev/shm", os.W_OK | os.X_OK) else None
    with tempfile.TemporaryDirectory(prefix="tf2torch-compiled-", dir=shm) as scratch:
        path = Path(scratch) / "model.pt2"
        path.write_bytes(data)
        return Library(path)


class Unsealed(PackageError):
    """A compiled program whose bytes no longer match the sealed hash."""


class Deferred:
    """The any-batch program, loaded on its first call where single images have their own
    (a process that only sees single images never reads, loads or holds it); its bytes are
    checked against the sealed hash then."""

    def __init__(self, path: Path, sha256: str) -> None:
        self._path, self._sha256 = path, sha256
        self._library: Library | None = None

    def __call__(self, *inputs: torch.Tensor) -> Any:
        if self._library is None:
            data = self._path.read_bytes()
            if hashlib.sha256(data).hexdigest() != self._sha256:
                raise Unsealed(f"{self._path}: changed since it was compiled and sealed; "
                                "it is never loaded")
            self._library = load_library(data)
        return self._library(*inputs)


class Library:
    """A loaded AOTInductor package, called like the module it was compiled from.

    torch's own `aoti_load_package` imports Inductor and dynamo first (1.8 s here) and
    re-reads the call spec on every call; the C++ loader needs neither.
    """

    def __init__(self, path: Path) -> None:
        self._loader = torch._C._aoti.AOTIModelPackageLoader(str(path), "model", False, 1, -1)
        self._out_spec = pytree.treespec_loads(self._loader.get_call_spec()[1])

    def __call__(self, *inputs: torch.Tensor) -> Any:
        return pytree.tree_unflatten(self._loader.boxed_run(list(inputs)), self._out_spec)
