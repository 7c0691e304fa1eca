"""Ahead-of-time compiled forms kept in a package: built here, trusted only here.

`tf2torch compile NAME` (or `convert --compile`) exports the inference form (BatchNorm
folded, channels-last) with `torch.export`, compiles it with AOTInductor — weights frozen
into the program so Inductor folds them and hands oneDNN prepacked convolutions, thread
count read at run time — and stores the result in the package under `compiled/`:

    compiled/<key>.pt2          the AOTInductor package (library, constants): any batch
    compiled/<key>.one-image.pt2  the same, specialised to a single image
    compiled/<key>.json         what they were built from and for, their proof, their seal

Why two: with the batch left open, Inductor's loops parallelise over the batch only (one
thread at batch 1) and oneDNN cannot prepack for the shape; the single-image program (its
kernels planned per CPU, `single_image.py`: on Intel 1×1 convolutions as MKL matmuls,
depthwise ones as fused sums, channel gates folded into the weights they feed) was 1.3-1.6x
faster at batch 1 (BENCHMARKS.md). It loads first; the any-batch file at the first batch.

`key` names what the library depends on: torch's version, the machine, the CPU's vector
instructions and its vendor (`torch-2.13.0-x86_64-avx512-amd`: the kernels are planned per
vendor, `single_image.py`). Loading one takes well under a second and compiles nothing. A
compiled form is used only when all of these hold, and is otherwise ignored with a note
saying why (the package then runs its eager inference form):

- it was built for this torch, machine, instruction set and CPU vendor;
- it was built from the weights the package holds now (their sha256, as the card records);
- its seal checks: an HMAC of the files' sha256 under a key that only this user's tf2torch
  home holds (`compile.key`). A shared library runs native code when loaded, so one that
  came with a package from elsewhere, or was changed after it was built, is never loaded.
  Each file is hashed when it is about to be loaded: the any-batch file of a pair at its
  first batch (`aoti.Deferred`; changed, it is refused and batches run the eager form).

Before anything is stored, the compiled form is verified like any port: against the
original's own outputs (`reference_outputs.safetensors`, recorded by `convert`), or, for a
package converted without verification, against the package's eager module (said so).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import platform
import secrets
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.utils._pytree as pytree
from torch import nn

from tf2torch.errors import PackageError
from tf2torch.packages import native_ops
from tf2torch.packages.aoti import Deferred, Unsealed, load_library
from tf2torch.packages.inference import Governed, configure_allocator, inference_form, input_shapes
from tf2torch.packages.package import LoadedModel, build_net, sha256_file
from tf2torch.packages.repository import home
from tf2torch.packages.single_image import any_batch_rewrites, chosen_plan, cpu_vendor, planned_program
from tf2torch.util.threads import ThreadGovernor, fixed_threads

log = logging.getLogger(__name__)

COMPILED_DIR = "compiled"
KEY_FILE = "compile.key"
MAX_BATCH = 1024
ONE_IMAGE_SUFFIX = ".one-image.pt2"
_VENDORS = {"GenuineIntel": "intel", "AuthenticAMD": "amd", "unknown": ""}


@dataclass(frozen=True)
class Target:
    """What a compiled library depends on."""

    torch: str
    machine: str
    isa: str
    # the CPU's vendor: the plan (`single_image.py`) and oneDNN's weight packing were chosen
    # for it, so another vendor's CPU with the same instructions gets a build of its own
    vendor: str = ""

    @property
    def key(self) -> str:
        parts = [f"torch-{self.torch}", self.machine, self.isa, *filter(None, [self.vendor])]
        return "-".join(parts).replace("+", "_").lower()

    def files(self, folder: Path) -> tuple[Path, Path, Path]:
        """In `folder`: the any-batch program, the single-image one, the manifest."""
        return (folder / f"{self.key}.pt2", folder / f"{self.key}{ONE_IMAGE_SUFFIX}",
                folder / f"{self.key}.json")


def this_machine() -> Target:
    named = cpu_vendor()
    vendor = _VENDORS.get(named, "".join(c for c in named if c.isalnum()))
    return Target(torch.__version__, platform.machine(),
                  torch.backends.cpu.get_cpu_capability().lower(), vendor.lower())


@dataclass(frozen=True)
class Manifest:
    """`compiled/<key>.json`: the build, its inputs and proof, and its seal."""

    target: Target
    weights_sha256: str
    artifact_sha256: str
    seal: str
    input_shapes: list[list[int]]
    batch: tuple[int, int]
    checked_against: str
    verification: dict | None
    compile_seconds: float
    created: str
    # the program specialised to one image: its file's sha256 and verification (else none)
    one_image_sha256: str | None = None
    one_image_verification: dict | None = None
    # thread count -> the single-image program's convolutions oneDNN repacks per call there
    one_image_repacked: dict[str, list[str]] | None = None
    # the plan (`single_image.py`): its name, why, layers taken from oneDNN, any_batch_block
    one_image_plan: dict[str, Any] | None = None

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "target": asdict(self.target)}, indent=2)

    @classmethod
    def read(cls, path: Path) -> Manifest:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(**{**data, "target": Target(**data["target"]),
                          "batch": tuple(data["batch"])})
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise PackageError(f"{path}: unreadable compiled-form manifest ({exc})") from exc


def _seal_key(create: bool) -> bytes | None:
    path = home() / KEY_FILE
    if path.is_file():
        try:
            return bytes.fromhex(path.read_text().strip())
        except ValueError:  # not a key this code wrote: trust nothing sealed with it
            if create:
                raise PackageError(f"{path}: not a compile key; remove it to make a new "
                                   "one") from None
            return None
    if not create:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # this user's alone
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32))
    return _seal_key(create=False)


def _seal(key: bytes, artifact_sha: str, weights_sha: str, target: Target,
          one_image_sha: str | None = None) -> str:
    artifacts = artifact_sha if one_image_sha is None else f"{artifact_sha}+{one_image_sha}"
    message = f"{artifacts}:{weights_sha}:{target.key}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


# --- building ---------------------------------------------------------------------------

def build(model: LoadedModel, check: Callable[[nn.Module], tuple[dict | None, str]],
          plan: str | None = None) -> tuple[Manifest, Path]:
    """Compile `model`'s inference form and store it in the package, if `check` passes.

    `check` runs a candidate module through verification and returns (report dict, what it
    was checked against); it raises when the compiled form disagrees, and nothing is stored.
    `plan` picks the single-image program's kernels (`single_image.PLANS`; else this
    machine's default).
    """
    target = this_machine()
    plan, why = chosen_plan(plan)
    shapes = input_shapes(model.card)
    form = inference_form(model.net, shapes[0], governed=False,
                          input_layout=model.card.input.get("layout", "nchw"))
    started = time.perf_counter()
    folder = model.path / COMPILED_DIR
    folder.mkdir(exist_ok=True)
    scratch = [_scratch_file(folder, target) for _ in range(2)]
    try:
        batch, one_image, repacked, taken, block = _compile(
            form, shapes, model.card.input.get("layout", "nchw"), plan, *scratch)
        seconds = time.perf_counter() - started
        report, against = check(CompiledNet(load_library(scratch[0].read_bytes()), None,
                                            batch))
        one_sha = one_report = None
        if one_image:  # the single-image program is proved on every image of every case
            one_report, _ = check(ImageByImage(load_library(scratch[1].read_bytes())))
            one_sha = sha256_file(scratch[1])
        artifact_sha = sha256_file(scratch[0])
        key = _seal_key(create=True)
        manifest = Manifest(target, model.card.weights_sha256, artifact_sha,
                            _seal(key, artifact_sha, model.card.weights_sha256, target,
                                  one_sha),
                            [list(s) for s in shapes], batch, against, report,
                            round(seconds, 1), time.strftime("%Y-%m-%d"), one_sha, one_report,
                            repacked,
                            {"plan": plan, "why": why, "taken_from_onednn": taken,
                             "any_batch_block": block,
                             **({"op_schema": native_ops.schema()}
                                if plan == "onednn-cached" else {})})
        library, one_path, manifest_path = target.files(folder)
        one_path.unlink(missing_ok=True)  # an older build's
        if one_image:
            os.replace(scratch[1], one_path)
        os.replace(scratch[0], library)
    finally:
        for path in scratch:
            path.unlink(missing_ok=True)
    manifest_path.write_text(manifest.to_json(), encoding="utf-8")
    return manifest, library


def _scratch_file(folder: Path, target: Target) -> Path:
    fd, path = tempfile.mkstemp(prefix=f".{target.key}.partial-", suffix=".pt2", dir=folder)
    os.close(fd)
    return Path(path)


def _compile(form: nn.Module, shapes: list[tuple[int, ...]], layout: str, plan: str,
             path: Path, one_image_path: Path,
             ) -> tuple[tuple[int, int], bool, dict[str, list[str]], list[str], int | None]:
    """AOTInductor with frozen weights: at `path` a program for any batch size where the
    network allows it (else the card's own batch of one), at `one_image_path` one
    specialised to a single image, built to `plan` (`single_image.py`); both mirrored where
    that saves padding (`mirror.py`). Returns the batch range of the first, whether the
    second was built, the thread counts at which it would repack convolution weights
    (`packing.py`), the layers its plan took from oneDNN for that reason, and the channel
    block the first's convolutions run in (None: ATen's, channels-last)."""
    from torch._inductor import aot_compile
    from torch._inductor.package import package_aoti
    # Inductor freezes weights only with gradients off: compiled with them on, every
    # convolution reordered its weights on every call and no BatchNorm was folded.
    options = {"freezing": True, "cpp.dynamic_threads": True, "aot_inductor.package": True}
    one = tuple(torch.zeros(1, *s) for s in shapes)
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    programs: dict[Path, Any] = {}
    with torch.no_grad(), fixed_threads():  # TF2TORCH_THREADS: pack for the count it runs at
        try:
            programs[path] = torch.export.export(
                form, tuple(torch.zeros(2, *s) for s in shapes),
                dynamic_shapes=(tuple({0: batch} for _ in shapes),))
            span = (1, MAX_BATCH)
        except Exception as exc:  # a reshape to a fixed batch, say: compile for one image
            log.info("no dynamic batch (%s); compiling for batch 1", str(exc).splitlines()[0])
            span = (1, 1)
        single_path = one_image_path if programs else path
        programs[single_path], single, taken, repacked = planned_program(form, one, layout, plan)
        block = None
        for out, program in programs.items():
            chosen = dict(options)
            if out == single_path:
                module = single
                # a value read more than once is written once, not recomputed per read (each
                # depthwise tap re-ran the 1×1 layer's bias and ReLU6): 5-13% (BENCHMARKS.md)
                chosen["realize_reads_threshold"] = 1
            else:
                module, block = any_batch_rewrites(program, layout, plan)
            args, kwargs = program.example_inputs
            package_aoti(str(out), aot_compile(module, args, kwargs, options=chosen))
    return span, one_image_path in programs, repacked, taken, block


# --- loading ----------------------------------------------------------------------------

def fast_form(model: LoadedModel, compile: bool = False, threads: int | None = None,
              share: int = 1) -> tuple[nn.Module, str]:
    """The fastest verified form of `model.net` at hand, and a line saying which it is.

    The package's compiled form when one fits this machine (`find`), else the eager
    inference form — through `torch.compile` in this process when `compile` is set (tens of
    seconds). Either way the thread count follows `tf2torch.util.threads`.
    """
    configure_allocator()
    found = find(model)
    if found.note:
        log.warning("%s: %s", model.card.name, found.note)
    layout = model.card.input.get("layout", "nchw")
    shape = input_shapes(model.card)[0]
    plan = (found.manifest.one_image_plan or {}) if found.one_image is not None else {}
    governor = ThreadGovernor(threads, share, bands=plan.get("plan") == "onednn-cached")
    eager_net = model.net  # None where the package was read without it (api.load)
    if found.runner is not None:
        def eager() -> nn.Module:  # built only if a batch falls outside the library's range
            net = eager_net if eager_net is not None else build_net(model.path, model.card)
            return inference_form(net, shape, input_layout=layout, governed=False)

        net = CompiledNet(found.runner, eager, found.manifest.batch, found.one_image)
        return Governed(net, governor), f"compiled ({found.manifest.target.key})"
    if eager_net is None:
        eager_net = build_net(model.path, model.card)
    form = inference_form(eager_net, shape, compile=compile, input_layout=layout,
                          threads=threads, share=share)
    what = "inference form, torch.compile" if compile else "inference form (eager)"
    return form, what + (f"; {found.note}" if found.note else "")


class CompiledNet(nn.Module):
    """A compiled library behind the `nn.Module` call: single images to its single-image
    program where it has one, batches in its range to `runner`; others go to the eager
    inference form `fallback()` builds (on first need), or fail where there is none."""

    def __init__(self, runner: Any, fallback: Callable[[], nn.Module] | None,
                 batch: tuple[int, int], one_image: Any = None) -> None:
        super().__init__()
        self._runner = runner
        self._one_image = one_image
        self._fallback = fallback
        self._eager: nn.Module | None = None
        self.batch = tuple(batch)

    def forward(self, *inputs: torch.Tensor) -> Any:
        n = inputs[0].shape[0]
        if n == 1 and self._one_image is not None:
            return self._one_image(*inputs)
        if self.batch[0] <= n <= self.batch[1]:
            try:
                return self._runner(*inputs)
            except Unsealed as exc:  # never loaded; with an eager form, batches run that
                if self._fallback is None:
                    raise
                log.warning("%s; batches run the eager inference form", exc)
                self.batch = (1, 1)
        if self._fallback is None:
            raise PackageError(f"the compiled form takes batches of {self.batch[0]}-"
                               f"{self.batch[1]}, not {n}")
        if self._eager is None:
            self._eager = self._fallback()
        return self._eager(*inputs)


class ImageByImage(nn.Module):
    """Runs a single-image program on each image of a batch (to verify it on every case)."""

    def __init__(self, runner: Any) -> None:
        super().__init__()
        self._runner = runner

    def forward(self, *inputs: torch.Tensor) -> Any:
        outs = [self._runner(*(x[i:i + 1] for x in inputs)) for i in range(inputs[0].shape[0])]
        flat, spec = zip(*(pytree.tree_flatten(o) for o in outs), strict=True)
        return pytree.tree_unflatten([torch.cat(p) for p in zip(*flat, strict=True)], spec[0])


@dataclass(frozen=True)
class Lookup:
    """A usable compiled form (`runner` set; `one_image` where it has that program), or
    why there is none (`note`)."""

    runner: Any = None
    manifest: Manifest | None = None
    note: str | None = None
    one_image: Any = None


def find(model: LoadedModel) -> Lookup:
    """The compiled form built for this machine from these weights, by this user, or a note."""
    folder = model.path / COMPILED_DIR
    target = this_machine()
    library, one_path, manifest_path = target.files(folder)
    if not manifest_path.is_file() or not library.is_file():
        others = sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []
        if not others:
            return Lookup(note=None)
        return Lookup(note=f"compiled form ignored: built for {', '.join(others)}, this "
                      f"machine is {target.key} (tf2torch compile {model.card.name})")
    try:
        manifest = Manifest.read(manifest_path)
    except PackageError as exc:
        return Lookup(note=f"compiled form ignored: {exc}")
    if manifest.weights_sha256 != model.card.weights_sha256:
        return Lookup(note="compiled form ignored: built from other weights than the "
                      f"package holds now (tf2torch compile {model.card.name})")
    one = manifest.one_image_sha256 is not None
    # the program loaded now is hashed and loaded from the same bytes: no swap in between;
    # a pair's any-batch file is hashed when a batch first loads it (`Deferred`)
    data = one_path.read_bytes() if one and one_path.is_file() else library.read_bytes()
    expected = manifest.one_image_sha256 if one else manifest.artifact_sha256
    key = _seal_key(create=False)
    if hashlib.sha256(data).hexdigest() != expected or key is None or not hmac.compare_digest(
            manifest.seal, _seal(key, manifest.artifact_sha256, manifest.weights_sha256, target,
                                 manifest.one_image_sha256)):
        return Lookup(note="compiled form ignored: not built by this user's tf2torch on this "
                      f"machine, or changed since; it is never loaded (tf2torch compile "
                      f"{model.card.name} builds one here)")
    missing = native_ops.missing_for(manifest.one_image_plan)
    if missing and (not one or (manifest.one_image_plan or {}).get("any_batch_block")):
        return Lookup(note=f"compiled form ignored: {missing}")
    if not one:
        return Lookup(runner=load_library(data), manifest=manifest)
    if missing:  # the any-batch program runs single images too, as it does batches
        return Lookup(runner=Deferred(library, manifest.artifact_sha256), manifest=manifest,
                      note=f"single-image program skipped: {missing}")
    return Lookup(runner=Deferred(library, manifest.artifact_sha256), manifest=manifest,
                  one_image=load_library(data))
