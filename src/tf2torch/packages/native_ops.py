"""tf2torch's own C++ ops, `torch.ops.tf2torch.conv` and its blocked-layout twins
(`conv_blocked`, `to_blocked`, `from_blocked`): oneDNN convolutions whose primitives are kept
between calls (`native/onednn_conv.cpp` says why), and their shared mode for single images
under load (`share_rows`, `native/onednn_helpers.cpp`).

It is built from the source shipped in this package, never from anything in a model file,
against the oneDNN of the `[native]` extra (`onednn-cpu-gomp`, `onednn-devel-cpu-gomp`: the
oneDNN inside torch exports no symbols), with the C++ compiler AOTInductor already needs. The
build (about 10 s) lands in `$TF2TORCH_NATIVE_DIR/<key>/` (default
`~/.cache/tf2torch/native`), keyed by the source, torch's version, oneDNN's and the folder
oneDNN lies in, and is reused by every later process of that environment. Its libgomp is
torch's own: the loader matches the already-loaded `libgomp.so.1`, so both share one OpenMP
pool.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import shutil
import site
import subprocess
import sysconfig
import tempfile
from collections.abc import Sequence
from pathlib import Path

import torch

log = logging.getLogger(__name__)

NATIVE = Path(__file__).parent / "native"
SOURCES = tuple(NATIVE / f"onednn_{name}.cpp"
                for name in ("conv", "describe", "bands", "helpers", "layout"))
HEADERS = (NATIVE / "onednn_common.h", NATIVE / "onednn_bands.h")
LIBRARY_NAME = "libtf2torch_onednn.so"
ONEDNN_SONAME = "libdnnl.so.3"


class NativeUnavailable(RuntimeError):
    """The op cannot be built or loaded here; the message says what is missing."""


def onednn_dirs() -> tuple[Path, Path]:
    """oneDNN's include and lib folders from the `[native]` extra (installed into the
    environment, or with `pip install --user`), or NativeUnavailable."""
    prefixes = [Path(sysconfig.get_paths()["data"])]
    if site.ENABLE_USER_SITE and site.USER_BASE:
        prefixes.append(Path(site.USER_BASE))
    for prefix in prefixes:
        include, lib = prefix / "include", prefix / "lib"
        if (include / "oneapi" / "dnnl" / "dnnl.hpp").is_file() and (lib / ONEDNN_SONAME).is_file():
            return include, lib
    where = " or ".join(str(p) for p in prefixes)
    raise NativeUnavailable(f"oneDNN's headers and {ONEDNN_SONAME} are not under {where} "
                            "(pip install 'tf2torch[native]': onednn-cpu-gomp and "
                            "onednn-devel-cpu-gomp, Linux x86-64)")


def _compiler() -> str:
    for name in (os.environ.get("CXX"), "g++", "c++"):
        if name and shutil.which(name):
            return name
    raise NativeUnavailable("no C++ compiler (g++) on PATH")


def _key(include: Path, lib: Path) -> str:
    """The source, oneDNN's version, torch's, and where oneDNN lies: the library finds
    libdnnl through an rpath to that folder, so each environment builds its own."""
    version = (include / "oneapi" / "dnnl" / "dnnl_version.h").read_bytes()
    code = b"".join(path.read_bytes() for path in SOURCES + HEADERS)
    digest = hashlib.sha256(code + version + torch.__version__.encode()
                            + str(lib.resolve()).encode())
    return digest.hexdigest()[:16]


def build() -> Path:
    """The op's shared library, built here first if this key has none yet."""
    include, lib = onednn_dirs()
    root = os.environ.get("TF2TORCH_NATIVE_DIR") or Path.home() / ".cache" / "tf2torch" / "native"
    folder = Path(root) / _key(include, lib)
    target = folder / LIBRARY_NAME
    if target.is_file():
        return target
    torch_dir = Path(torch.__file__).parent
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder, prefix=".build-") as scratch:
        built = Path(scratch) / LIBRARY_NAME
        command = [
            _compiler(), "-O2", "-std=c++17", "-fPIC", "-shared", "-fopenmp",
            f"-D_GLIBCXX_USE_CXX11_ABI={int(torch.compiled_with_cxx11_abi())}",
            f"-I{include}", "-isystem", str(torch_dir / "include"), *map(str, SOURCES),
            "-o", str(built),
            f"-L{lib}", f"-l:{ONEDNN_SONAME}", f"-Wl,-rpath,{lib}",
            f"-L{torch_dir / 'lib'}", "-ltorch", "-ltorch_cpu", "-lc10"]
        log.info("building %s", target)
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            tail = "\n".join(done.stderr.strip().splitlines()[-15:])
            raise NativeUnavailable(f"building {NATIVE.name}/*.cpp failed:\n{tail}")
        os.replace(built, target)  # atomic: a process racing us loads one whole file
    return target


def load() -> None:
    """Register `torch.ops.tf2torch.conv` in this process (building it if needed), or raise
    NativeUnavailable saying why not."""
    missing = unavailable()
    if missing is not None:
        raise NativeUnavailable(missing)


@functools.cache
def unavailable() -> str | None:
    """Why the op cannot be used here, or None once it is loaded. Tried once per process:
    a failed build is not retried on every lookup."""
    try:
        path = build()
        torch.ops.load_library(str(path))
    except NativeUnavailable as exc:
        log.info("tf2torch's oneDNN op is unavailable: %s", exc)
        return str(exc)
    except OSError as exc:
        return f"cannot load tf2torch's oneDNN op: {exc}"
    return None


OPS = ("conv", "conv_blocked", "to_blocked", "from_blocked")


def share_rows(cpus: Sequence[int], bands: int) -> None:
    """The op's shared mode (`native/onednn_helpers.cpp`): single images' layers cut into
    `bands` bands per thread, with a helper thread kept to each of `cpus`; none turns it
    off. Process-wide; the thread rule sets it (`util/threads.py`, rule 3)."""
    torch.ops.tf2torch.share_rows(list(cpus), bands)


def schema() -> str:
    """The loaded ops' schemas, as a program compiled against them records them."""
    return "; ".join(str(getattr(torch.ops.tf2torch, name).default._schema) for name in OPS)


def missing_for(plan: dict | None) -> str | None:
    """Why programs compiled to `plan` (the manifest's `one_image_plan`) cannot run here, or
    None: those of the `onednn-cached` plan call these ops, by the schemas they were built
    with (the single-image program; the any-batch one too where `any_batch_block` is set)."""
    if not plan or plan.get("plan") != "onednn-cached":
        return None
    missing = unavailable()
    if missing is not None:
        return f"its program calls tf2torch's oneDNN op: {missing}"
    if plan.get("op_schema") != schema():
        return ("its program calls tf2torch's oneDNN ops by other schemas than this "
                "tf2torch's (built by an older version): run tf2torch compile again")
    return None
