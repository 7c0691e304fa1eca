"""The single-image program, and the plan that decides which kernels run its layers.

Which library is faster for a layer depends on the CPU, so the single-image program is
built to one of three plans:

- `mkl`: every 1×1 stride-1 layer a `bmm` that MKL runs (`pointwise.py`), every depthwise
  layer a sum over its taps that Inductor fuses (`depthwise.py`), channel gates folded into
  the products' weights (`gates.py`). On an Intel Xeon (AVX-512, AMX) the products alone
  took Keras' MobileNetV2 from 6.4-6.6 to 4.9-5.0 ms, and the sums and gates gained more.
- `onednn`: the layers stay oneDNN convolutions (weights prepacked at compile time, bias
  and activation fused), except those whose weight oneDNN would pack differently at
  another thread count the thread rule may pick (`packing.py`): such 1×1 layers become MKL
  products and such depthwise layers sums, which pack nothing ahead of time, so no count
  reorders them on every call (19× a layer's time, measured). Others (strided 1×1, full
  convolutions) stay, and `tf2torch compile` names them.
- `onednn-cached`: every convolution tf2torch's own oneDNN op (`native_convs.py`,
  `native_ops.py`, the `[native]` extra), which builds each layer's primitive and packs its
  weight once per thread count instead of on every call as ATen does (21-42 µs a layer), with
  a zero pad before and the residual add and activation after fused into it; a channel
  gate's two single-pixel layers become products instead, which Inductor fuses with the
  rest of the gate (`pointwise.gate_layers`: Keras' EfficientNetB0, 32 calls fewer,
  0.96-0.98× the time).

On an AMD EPYC (Zen 4, AVX-512) the `onednn` plan took 0.91× the `mkl` plan's time on Keras'
MobileNetV2, 0.90× on ResNet50, 0.87× on EfficientNetB0 (noisy) and 0.82× on the slim
MobileNetV2-1.4 at 2 threads (0.90×, 0.91×, 0.94× and 0.82× at 1), one process per
program (BENCHMARKS.md, tenth session). MKL picks its
code path by CPU vendor (Intel says it may not optimise to the same degree for other
vendors' processors), oneDNN by instruction set alone. There `onednn-cached` took 0.82×
the `onednn` plan's time on Keras' MobileNetV2, 0.92× on EfficientNetB0, 0.95× on ResNet50
and 0.91× on the slim MobileNetV2-1.4 at 2 threads (0.89×, 1.01×, 0.97×, 0.94× at 1;
BENCHMARKS.md, eleventh session). So the plan
defaults to `mkl` on Intel's x86 CPUs (where `onednn-cached` is not yet measured) and to
`onednn-cached` on any other (AMD, ARM, unknown) where the op builds and loads, else to
`onednn`; `tf2torch compile NAME --plan P` overrides it, and the manifest records the plan
and why.

The plan reaches the any-batch program too (`any_batch_rewrites`): under `onednn-cached` its
convolutions run the op on oneDNN's blocked layout (`blocked_convs.py`), which oneDNN's
kernels run faster at large batches; under the others they stay ATen's.
"""

from __future__ import annotations

import copy
import logging
import platform
from collections.abc import Collection
from pathlib import Path
from typing import Any

import torch
from torch import fx, nn

from tf2torch.errors import UsageError
from tf2torch.packages.blocked_convs import block_for_this_cpu, convs_blocked
from tf2torch.packages.depthwise import depthwise_as_sums
from tf2torch.packages.gates import gates_into_weights
from tf2torch.packages.mirror import mirrored_module
from tf2torch.packages.native_convs import convs_to_native
from tf2torch.packages.native_ops import NativeUnavailable, unavailable
from tf2torch.packages.native_ops import load as load_native
from tf2torch.packages.packing import repacked_by_thread_count, repacked_elsewhere, rule_counts
from tf2torch.packages.pointwise import gate_layers, pointwise_as_matmul
from tf2torch.util.choices import COMPILE_PLANS

log = logging.getLogger(__name__)

PLANS = COMPILE_PLANS
_CPUINFO = Path("/proc/cpuinfo")


def cpu_vendor() -> str:
    """The CPU's vendor string (`GenuineIntel`, `AuthenticAMD`, ...), or `unknown`."""
    try:
        for line in _CPUINFO.read_text(encoding="ascii", errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "vendor_id":
                return value.strip()
    except OSError:
        pass
    return "unknown"


def default_plan() -> tuple[str, str]:
    """The plan for this machine, and why."""
    vendor = cpu_vendor()
    if vendor == "GenuineIntel" and platform.machine().lower() in ("x86_64", "amd64"):
        return "mkl", f"CPU vendor {vendor}"
    missing = unavailable()
    if missing is None:
        return "onednn-cached", f"CPU vendor {vendor}"
    return "onednn", f"CPU vendor {vendor}; tf2torch's oneDNN op is unavailable: {missing}"


def chosen_plan(plan: str | None) -> tuple[str, str]:
    """`plan` when given (checked), else this machine's default; with why."""
    if plan is None:
        return default_plan()
    if plan not in PLANS:
        raise UsageError(f"plan {plan!r}: give one of {', '.join(PLANS)}")
    if plan == "onednn-cached":
        try:
            load_native()
        except NativeUnavailable as exc:
            raise UsageError(f"plan onednn-cached: {exc}") from exc
    return plan, "chosen by the user"


def single_image_program(form: nn.Module, one: tuple[torch.Tensor, ...],
                         products: Collection[str] | None = None) -> Any:
    """`form` exported for the single image `one`, its 1×1 convolutions as MKL matmuls
    (`pointwise.py`): all of them, or only those named in `products` (on a copy: `form`
    itself is left as it was)."""
    single = copy.deepcopy(form)
    count = pointwise_as_matmul(single, one, only=products)
    log.info("single image: %d 1x1 convolutions as matmuls", count)
    with torch.no_grad():
        return torch.export.export(single, one)


def single_image_rewrites(program: Any, layout: str, sums: Collection[str] | None = None,
                          ) -> fx.GraphModule:
    """The single-image program's graph as it is compiled: mirrored where that saves
    padding, depthwise layers as sums (all, or those `sums` names), channel gates folded
    into the matmuls they feed."""
    module = mirrored_module(program, layout)
    count = depthwise_as_sums(module, only=sums)
    log.info("single image: %d depthwise layers as sums", count)
    log.info("single image: %d channel gates folded into weights", gates_into_weights(module))
    return module


def any_batch_rewrites(program: Any, layout: str, plan: str) -> tuple[fx.GraphModule, int | None]:
    """The any-batch program's graph as it is compiled: mirrored where that saves padding;
    under `onednn-cached`, its convolutions tf2torch's op on blocked activations
    (`blocked_convs.py`). Returns the graph and the channel block, None where the program
    calls no op (ATen's convolutions, channels-last); a layer oneDNN runs blocked only with
    its reference code calls the op channels-last."""
    module = mirrored_module(program, layout)
    block = block_for_this_cpu() if plan == "onednn-cached" else None
    if block is None:
        return module, None
    load_native()
    count = convs_to_native(module)
    log.info("any batch: %d convolutions to tf2torch's oneDNN op, %d in blocks of %d",
             count, convs_blocked(module, block), block)
    return module, block if count else None


def planned_program(form: nn.Module, one: tuple[torch.Tensor, ...], layout: str, plan: str,
                    ) -> tuple[Any, fx.GraphModule, list[str], dict[str, list[str]]]:
    """The single-image program built to `plan`: the exported program, its graph as it is
    compiled, the layers taken from oneDNN because it packs them per thread count (`onednn`
    plan: 1×1 layers become MKL products, depthwise ones sums; the `mkl` plan takes them
    all and lists none, `onednn-cached` needs none taken), and the layers still repacked at
    another thread count (`packing.repacked_elsewhere`: ATen convolutions left over)."""
    if plan == "mkl":
        program = single_image_program(form, one)
        module = single_image_rewrites(program, layout)
        return program, module, [], repacked_elsewhere(module)
    if plan == "onednn-cached":  # the op packs per thread count itself: none is repacked
        load_native()
        gates = gate_layers(form, one)  # fused whole by Inductor (`pointwise.py`)
        program = single_image_program(form, one, products=gates)
        module = single_image_rewrites(program, layout, sums=())
        count = convs_to_native(module)
        log.info("single image: %d channel gates' layers as products; %d convolutions to "
                 "tf2torch's oneDNN op", len(gates), count)
        return program, module, [], repacked_elsewhere(module)
    program = single_image_program(form, one, products=())
    module = single_image_rewrites(program, layout, sums=())
    try:
        unstable = sorted({name for names in repacked_by_thread_count(
            module, rule_counts()).values() for name in names})
    except RuntimeError as exc:  # oneDNN could not pack one: no products chosen, reported
        log.warning("could not check how oneDNN packs the weights per thread count: %s", exc)
        unstable = []
    if unstable:  # strided or shared 1×1 layers and full convolutions stay, and are reported
        program = single_image_program(form, one, products=unstable)
        module = single_image_rewrites(program, layout, sums=unstable)
    repacked = repacked_elsewhere(module)
    left = {name for names in repacked.values() for name in names}
    return program, module, [n for n in unstable if n not in left], repacked
