"""Where to read each intermediate result on the PyTorch side, and reading it as a stream.

A `Tap` names one intermediate result both sides compute: a PyTorch module path (its forward
output) and a reference tensor name, plus what the diagnosis needs (the op and its stride).
`zoo_taps` derives them from a zoo conversion's provenance, whose module names mirror the
slim scopes; a graph conversion maps fx node ↔ IR node ↔ Keras layer by name instead.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

# Ops the diagnosis knows about.
CONV, DEPTHWISE, BN, ACT, BLOCK, LOGITS, FLATTEN, DENSE = (
    "conv", "depthwise", "bn", "act", "block", "logits", "flatten", "dense")
ROOT = ""  # the whole net: its output (logits)


@dataclass(frozen=True)
class Tap:
    """One intermediate result: `net` module path ↔ `ref` reference tensor name.

    `layout` is the torch tensor's layout ("nchw" is turned to NHWC before comparing).
    """

    net: str
    ref: str
    op: str
    stride: int = 1
    layout: str = "nchw"


# --- zoo path: module names mirror slim scopes ------------------------------------------

def zoo_taps(net: nn.Module, provenance: Mapping[str, str], logits_ref: str = "logits",
             ) -> list[Tap]:
    """Every conv, BN, conv unit and block of a zoo net with its slim tensor name.

    Names: `<scope>/Conv2D` (or `/depthwise`, `/BiasAdd`), `<scope>/BatchNorm`, `<scope>/output` (the
    scope's last result, after its activation and residual add), `logits` for the net output.
    """
    taps = []
    for path, module in net.named_modules():
        if path == ROOT:
            continue
        tap = _zoo_tap(path, module, provenance)
        if tap is not None:
            taps.append(tap)
    taps.append(Tap(ROOT, logits_ref, LOGITS, layout="flat"))
    return taps


def _zoo_tap(path: str, module: nn.Module, provenance: Mapping[str, str]) -> Tap | None:
    if isinstance(module, nn.Conv2d):
        scope = _param_scope(provenance, f"{path}.weight")
        depthwise = module.groups > 1
        # slim's node after a conv with biases (the logits) is its BiasAdd
        leaf = "depthwise" if depthwise else "Conv2D" if module.bias is None else "BiasAdd"
        return scope and Tap(path, f"{scope}/{leaf}", DEPTHWISE if depthwise else CONV,
                             int(module.stride[0]))
    if isinstance(module, nn.BatchNorm2d):
        scope = _param_scope(provenance, f"{path}.weight")
        return scope and Tap(path, scope, BN)  # the BN's own scope: <unit>/BatchNorm
    convs = [m for m in module.modules() if isinstance(m, nn.Conv2d)]
    scope = _module_scope(path, provenance)
    if scope is None or not convs:
        return None
    stride = max(int(c.stride[0]) for c in convs)
    return Tap(path, f"{scope}/output", BLOCK if len(convs) > 1 else ACT, stride)


def _param_scope(provenance: Mapping[str, str], param: str) -> str | None:
    source = provenance.get(param)
    return source.rsplit("/", 1)[0] if source else None


def _module_scope(path: str, provenance: Mapping[str, str]) -> str | None:
    """The slim scope a module mirrors: its own parameters' source scope, cut at its name."""
    last = path.rsplit(".", 1)[-1]
    for param, source in provenance.items():
        if param.startswith(path + "."):
            parts = source.split("/")[:-1]
            return "/".join(parts[: parts.index(last) + 1]) if last in parts else None
    return None


# --- running the net, one tapped tensor at a time ----------------------------------------

_DONE = object()


def stream_net(net: nn.Module, batch: torch.Tensor, taps: Sequence[Tap],
               ) -> Iterator[tuple[Tap, np.ndarray]]:
    """Yield `(tap, NHWC-or-flat array)` in execution order while the net runs.

    The forward runs in a worker thread whose hooks hand over one tensor at a time (queue of
    one), so the caller can compare each result with the reference's before the next exists.
    """
    handoff: queue.Queue = queue.Queue(maxsize=1)
    stop = threading.Event()

    def put(item: object) -> None:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.1)
                return
            except queue.Full:
                continue
        raise _Cancelled

    def work() -> None:
        handles = [_hook(net, tap, put) for tap in taps]
        try:
            with torch.inference_mode():
                net(batch)
            put(_DONE)
        except _Cancelled:
            pass
        except BaseException as exc:  # handed to the consumer, raised there
            if not stop.is_set():
                put(exc)
        finally:
            for handle in handles:
                handle.remove()

    worker = threading.Thread(target=work, name="tf2torch-layerwise", daemon=True)
    worker.start()
    try:
        while (item := handoff.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join()


class _Cancelled(Exception):
    pass


def _hook(net: nn.Module, tap: Tap, put) -> torch.utils.hooks.RemovableHandle:
    def hook(module: nn.Module, args: tuple, output: torch.Tensor) -> None:
        # a copy: later in-place ops (ReLU6 after BN) would change it before it is compared
        put((tap, np.array(to_nhwc(output.detach().numpy(), tap.layout), copy=True)))

    return net.get_submodule(tap.net).register_forward_hook(hook)


def to_nhwc(array: np.ndarray, layout: str) -> np.ndarray:
    return array.transpose(0, 2, 3, 1) if layout == "nchw" and array.ndim == 4 else array
