"""Source model → PyTorch module, by the zoo (hand-written architecture + rules) or the graph path."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from tf2torch.conversion.zoo import ARCHITECTURES, find_architecture
from tf2torch.conversion.zoo.mapping import MappingReport, map_weights
from tf2torch.errors import MappingError
from tf2torch.sources import SourceModel


@dataclass
class Conversion:
    """A converted network with what is needed to describe, verify and package it."""

    net: nn.Module
    architecture: str
    config: dict[str, Any]
    source: SourceModel
    input_shape: tuple[int, ...]          # one sample, in the net's own layout
    layout: str                           # "nchw" (zoo) or the graph path's choice
    mapping: MappingReport | None = None
    provenance: dict[str, str] = field(default_factory=dict)  # torch name → source name
    num_classes: int | None = None
    inputs: list[tuple[str, tuple[int | None, ...], str]] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    graph_conversion: Any = None  # the graph converter's own result (for --emit-code)
    multiply_adds: int | None = None  # per sample, from shapes; None: only a run can tell


def convert_zoo(source: SourceModel, input_size: int | None = None, use_ema: bool = True,
                ) -> Conversion:
    """Build the hand-written architecture the checkpoint's tensors fit, and map its weights."""
    shapes = {info.name: info.shape for info in source.tensors.infos()}
    arch = find_architecture(shapes)
    if arch is None:
        raise MappingError(
            f"{source.path}: no architecture in tf2torch's zoo recognises these tensors "
            f"(known: {', '.join(ARCHITECTURES)}); run `tf2torch inspect` to see them"
        )
    size = input_size or source.meta.get("input_size") or _release_size(arch, source) or 224
    config = arch.infer_config(shapes, input_size=int(size))
    with torch.device("meta"):  # no random init: every value comes from the checkpoint
        net = arch.build(config)
    state, report = map_weights(source.tensors, net, arch.rules, arch.ignores, use_ema)
    report.raise_for_problems(str(source.path))
    missing = net.load_state_dict(state, strict=False, assign=True)
    leftover = [k for k in missing.missing_keys if not k.endswith("num_batches_tracked")]
    if leftover or missing.unexpected_keys:  # map_weights accounts for these; a bug otherwise
        raise RuntimeError(f"state dict mismatch: {leftover} {missing.unexpected_keys}")
    _materialize_counters(net)
    net.eval()
    return Conversion(
        net=net, architecture=arch.name, config=config.to_dict(), source=source,
        input_shape=(3, config.input_size, config.input_size), layout="nchw", mapping=report,
        provenance={target: name for name, target in report.used.items()},
        num_classes=config.num_classes, multiply_adds=arch.multiply_adds(config),
    )


def _materialize_counters(net: nn.Module) -> None:
    """BatchNorm's step counters, which no checkpoint holds, start at zero."""
    for module in net.modules():
        for name, buffer in list(module.named_buffers(recurse=False)):
            if buffer is not None and buffer.is_meta:
                setattr(module, name, torch.zeros(buffer.shape, dtype=buffer.dtype))


def _release_size(arch: Any, source: SourceModel) -> int | None:
    parsed = arch.parse_release_name(str(source.meta.get("release", source.path.name)))
    return parsed[1] if parsed else None


def convert_source(source: SourceModel, input_size: int | None = None, use_ema: bool = True,
                   layout: str = "nhwc", quantized: str = "simulate") -> Conversion:
    """Route a source to the zoo (checkpoints) or the graph converter (Keras, TFLite,
    TensorFlow graphs). A checkpoint no zoo architecture fits, with its TF1 meta graph
    beside it (`model.ckpt.meta`), goes the graph path through that meta graph.
    `quantized` is the form of a full-integer model ("simulate" or "float")."""
    if source.graph is None:
        meta_graph = source.runnable.get("meta_graph")
        shapes = {info.name: info.shape for info in source.tensors.infos()}
        if meta_graph is None or find_architecture(shapes) is not None:
            return convert_zoo(source, input_size, use_ema)
        from tf2torch.sources.tensorflow.reader import read_tensorflow

        source = read_tensorflow(meta_graph)
    from tf2torch.conversion.graph import convert_graph

    result = convert_graph(source, layout=layout, quantized=quantized)
    sample = tuple(result.inputs[0][1])  # the source's own (channels-last) order
    if layout == "nchw" and len(sample) >= 2:
        sample = (sample[-1], *sample[:-1])
    return Conversion(
        net=result.net, architecture=f"{source.graph.format}-graph",
        config={"graph": result.ir_json, "layout": layout}, source=source,
        input_shape=sample, layout=layout, provenance=dict(result.provenance),
        inputs=list(result.inputs), outputs=list(result.outputs), graph_conversion=result,
        multiply_adds=result.multiply_adds,
    )
