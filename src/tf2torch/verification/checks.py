"""Verification of a `Conversion` against its original: choose the reference, make the
inputs, run both sides. The comparison itself is `verify.py`'s."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from tf2torch.conversion.convert import Conversion
from tf2torch.errors import NoReferenceError, UnsupportedError, VerificationError
from tf2torch.references import tensorflow as references
from tf2torch.references.tensorflow_worker import TensorFlowWorker
from tf2torch.sources import SourceModel
from tf2torch.util.progress import progress
from tf2torch.util.threads import ThreadGovernor
from tf2torch.verification import quantized
from tf2torch.verification.report import (
    CLASSIFIER_TOLERANCES,
    GRAPH_TOLERANCE,
    QUANTIZATION,
    VerificationReport,
    compare_arrays,
    compare_runs,
    standard_inputs,
)
from tf2torch.verification.stored import FILE_NAME as STORED_OUTPUTS
from tf2torch.verification.stored import StoredCase, load_cases, spreads_of, verify_stored

TF_GRAPH_FORMATS = ("tf-saved-model", "tf-frozen-graph", "tf-meta-graph")
DEFAULT_UNKNOWN_DIM = 224  # for graph inputs whose spatial size the file leaves open


def zoo_runner(net: nn.Module) -> references.RunFn:
    """NHWC batch → logits and probabilities from a zoo net (NCHW inside)."""
    governor = ThreadGovernor()  # a busy machine must not stall our own runs

    def run(batch: np.ndarray) -> dict[str, np.ndarray]:
        governor.apply()
        with torch.inference_mode():
            logits = net(torch.from_numpy(np.ascontiguousarray(batch.transpose(0, 3, 1, 2))))
        return {"logits": logits.numpy(), "probabilities": torch.softmax(logits, -1).numpy()}

    return run


def reference_file(source: SourceModel, reference: str | Path | None = None) -> Path | None:
    """The file a zoo conversion is verified against: `reference` when given, else the best
    a checkpoint offers (its frozen graph, its .tflite, its stored outputs), else None."""
    if reference is not None:
        return Path(reference)
    return next((source.runnable[kind] for kind in ("frozen_pb", "tflite", "tests_h5")
                 if source.runnable.get(kind) is not None), None)


def load_reference_ahead(source: SourceModel, reference: str | Path | None,
                         worker: TensorFlowWorker) -> None:
    """Where the reference is a frozen graph, have `worker` import it now, while this
    process converts (the graph's import takes about as long as the conversion)."""
    path = reference_file(source, reference) if source.graph is None else None
    if path is not None and path.suffix == ".pb":
        worker.load_ahead(path)


def find_reference(source: SourceModel, worker: TensorFlowWorker | None = None,
                   ) -> references.Reference:
    """The best reference a checkpoint offers: a live run of the frozen graph (logits and
    probabilities; in `worker` when one is given) or of the .tflite (probabilities), else
    stored outputs."""
    path = reference_file(source)
    if path is not None:
        return reference_from_file(path, worker)
    raise NoReferenceError(
        f"{source.path}: nothing to verify against — give --reference FILE (a .tflite or a "
        "tests.h5), or convert a release archive that contains one"
    )


def verify_zoo(conversion: Conversion, reference: references.Reference,
               images: dict[str, np.ndarray] | None = None, seed: int = 0,
               batch: int = 2) -> VerificationReport:
    """Zeros, a seeded random batch and the user's images, through both sides."""
    size = conversion.input_shape[-1]
    inputs = reference.fixed_inputs or standard_inputs((size, size, 3), seed, batch)
    if images:
        inputs = {**inputs, **images}
    return compare_runs(zoo_runner(conversion.net), reference.run, inputs,
                        CLASSIFIER_TOLERANCES, reference.description)


# --- graph conversions (Keras, TFLite) --------------------------------------------------------

@dataclass(frozen=True)
class GraphReference:
    """The original run by its own framework; `make_spread`, where the framework has several
    runtimes, builds (lazily: more interpreters) a measure of how far they disagree on an
    input, per output, given `run`'s own outputs there. `twin`, for a quantized file, runs
    its dequantized float twin (built lazily), which a float port must match exactly."""

    description: str
    run: references.RunFn
    make_spread: Callable[[], Callable[[Any, Any], dict[str, float]]] | None = None
    make_twin: Callable[[], references.RunFn] | None = None


def graph_reference(source: SourceModel) -> GraphReference:
    """Run the original file with its own framework: Keras, the TFLite interpreter, or
    TensorFlow for its graphs."""
    if source.format == "keras":
        from tf2torch.references.keras import keras_runner

        return GraphReference(f"Keras on {source.path.name}", keras_runner(source))
    if source.format == "tflite":
        from tf2torch.references.mediapipe_runtime import mediapipe_only_ops, mediapipe_runner
        from tf2torch.references.tflite import tflite_runner, tflite_spread

        if mediapipe_only_ops(source.graph.op_counts()):  # TF's interpreter cannot run these
            return GraphReference(f"MediaPipe runtime on {source.path.name}",
                                  mediapipe_runner(source.path, source.parsed))
        twin = partial(tflite_runner, source, twin=True) if source.meta.get("quantization") \
            else None
        return GraphReference(f"TFLite interpreter on {source.path.name}",
                              tflite_runner(source), partial(tflite_spread, source), twin)
    if source.format in TF_GRAPH_FORMATS:
        from tf2torch.references.isolated_graph import tf_graph_runner

        form = {"tf-saved-model": "SavedModel", "tf-frozen-graph": "frozen graph",
                "tf-meta-graph": "meta graph + checkpoint"}[source.format]
        signature = f" ({source.parsed.signature})" if source.parsed.signature else ""
        return GraphReference(f"TensorFlow on {form} {source.path.name}{signature}",
                              tf_graph_runner(source))
    raise NoReferenceError(f"{source.path}: no live reference for format {source.format}")


def graph_inputs(conversion: Conversion, seed: int = 0, batch: int = 2,
                 images: Mapping[str, np.ndarray] | None = None) -> dict[str, list[np.ndarray]]:
    """Zeros and a seeded random batch for every input (one array per model input), the
    random values in each input's expected range (`input_ranges`)."""
    rng = np.random.default_rng(seed)
    shapes = [tuple(d or DEFAULT_UNKNOWN_DIM for d in shape) for _, shape, _ in conversion.inputs]
    ranges = input_ranges(conversion)
    dtypes = [np.dtype(dtype) if dtype in INTEGER_INPUTS else np.dtype(np.float32)
              for _, _, dtype in conversion.inputs]
    cases = {
        "zeros": [np.zeros((1, *s), d) for s, d in zip(shapes, dtypes, strict=True)],
        "random": [_random(rng, (batch, *s), r, dtype)
                   for s, r, (_, _, dtype) in zip(shapes, ranges, conversion.inputs, strict=True)],
    }
    if images and len(shapes) == 1:
        cases.update({name: [array] for name, array in images.items()})
    return cases


def representable(values: np.ndarray, dtype: str) -> np.ndarray:
    """float32 values the model's input type holds exactly (a float16 input would otherwise
    round what the reference sees, and not what the port sees)."""
    return (values.astype(np.float16) if dtype == "float16" else values).astype(np.float32)


DEFAULT_RANGE = (-1.0, 1.0)  # the usual image-model convention, where a file says nothing
# Integer model inputs (token ids, indices) get small non-negative integers.
INTEGER_INPUTS = {"int32", "int64"}
INTEGER_INPUT_RANGE = 8


def _random(rng: np.random.Generator, shape: tuple, bounds: tuple[float, float],
            dtype: str) -> np.ndarray:
    if dtype in INTEGER_INPUTS:
        return rng.integers(0, INTEGER_INPUT_RANGE, shape).astype(dtype)
    return representable(rng.uniform(bounds[0], bounds[1], shape), dtype)


def input_ranges(conversion: Conversion) -> list[tuple[float, float]]:
    """Per input, the value range the model expects: a `.tflite` file's metadata (stated
    min/max, or the range its NormalizationOptions give an 8-bit image), else [-1, 1]."""
    count = len(conversion.inputs)
    stated: list = [None] * count
    if conversion.source.format == "tflite":
        from tf2torch.sources.tflite.metadata import input_ranges as tflite_ranges

        stated = tflite_ranges(conversion.source, count)
        grids = {g["name"]: g for g in (conversion.source.meta.get("quantization") or {}).get(
            "inputs", [])}
        for k, (name, _, _) in enumerate(conversion.inputs):
            grid = grids.get(name.removesuffix("/real"))
            if grid and not stated[k]:  # a quantized input: the range its grid represents
                scale, zero = grid["scale"][0], grid["zero_point"][0]
                stated[k] = (scale * (grid["qmin"] - zero), scale * (grid["qmax"] - zero))
    return [r or DEFAULT_RANGE for r in stated]


def _to_net(conversion: Conversion, a: np.ndarray) -> torch.Tensor:
    """A source-layout (channels-last) array as the net takes it."""
    nchw = conversion.layout == "nchw" and a.ndim >= 3
    return torch.from_numpy(np.ascontiguousarray(np.moveaxis(a, -1, 1) if nchw else a))


def zero_batch(conversion: Conversion) -> list[torch.Tensor]:
    """One all-zeros sample per input, as the net takes them (for shape and size figures)."""
    if not conversion.inputs:
        return [torch.zeros(1, *conversion.input_shape)]
    return [_to_net(conversion, a) for a in graph_inputs(conversion)["zeros"]]


def graph_runner(conversion: Conversion) -> references.RunFn:
    """Source-layout arrays in and out; an "nchw" net gets and gives image tensors NCHW."""
    return port_runner(conversion.net, "graph", conversion.layout, conversion.outputs)


def port_runner(net: nn.Module, kind: str, layout: str = "nchw",
                outputs: list[str] | None = None) -> references.RunFn:
    """A port as verification runs it: a list of source-layout (channels-last) arrays, one
    per input, in; named outputs out. `kind` "zoo": one NHWC image batch → logits and
    probabilities; "graph": the net's outputs by `outputs`' names, an "nchw" net's image
    tensors moved back to channels-last."""
    if kind == "zoo":
        run_zoo = zoo_runner(net)
        return lambda arrays: run_zoo(arrays[0])
    nchw = layout == "nchw"

    def to_net(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(np.moveaxis(a, -1, 1) if nchw and a.ndim >= 3
                                                     else a))

    def from_net(t: torch.Tensor) -> np.ndarray:
        return np.moveaxis(t.numpy(), 1, -1) if nchw and t.dim() >= 3 else t.numpy()

    governor = ThreadGovernor()

    def run_batch(arrays: list[np.ndarray]) -> dict[str, np.ndarray]:
        governor.apply()
        with torch.inference_mode():
            out = net(*[to_net(a) for a in arrays])
        outs = out if isinstance(out, tuple | list) else (out,)
        return {name: from_net(o) for name, o in zip(outputs or [], outs, strict=True)}

    def run(arrays: list[np.ndarray]) -> dict[str, np.ndarray]:
        try:
            return run_batch(arrays)
        except RuntimeError:
            if arrays[0].shape[0] == 1:
                raise
        # a file whose batch is fixed at 1 inside (a recurrent loop's time-major reshape):
        # its port takes one sample at a time, as the interpreter does
        samples = [run_batch([a[n:n + 1] for a in arrays]) for n in range(arrays[0].shape[0])]
        return {k: np.concatenate([s[k] for s in samples]) for k in samples[0]}

    return run


def verify_graph(conversion: Conversion, reference: GraphReference,
                 images: Mapping[str, np.ndarray] | None = None, seed: int = 0,
                 ) -> VerificationReport:
    """Every output on every case, bound 1e-4 · max(1, max |ref|) — for quantized models
    the bound of its form (`verification.quantized`), plus, for a float port of one, the
    float32 bound against the file's dequantized twin.

    Where an output exceeds the bound and the reference has several runtimes, their spread
    on that input is measured too: a port as close to the reference as its runtimes are to
    each other is reported as within the spread (`ok*`), not as a conversion error.
    """
    report = VerificationReport(reference.description)
    run_net = graph_runner(conversion)
    cases = graph_inputs(conversion, seed, images=images)
    ir = conversion.config["graph"]
    bounds = quantized.tolerances(ir)
    wants_twin = ir["meta"].get("quantized_form") == "float" and reference.make_twin
    if any(b.rule == QUANTIZATION for b in bounds.values()) and not wants_twin:
        raise UnsupportedError(f"{conversion.source.path}: a float port of a quantized file "
                               "is verified against its dequantized twin, which this "
                               "reference cannot build")
    spread = twin = None
    for case, arrays in progress(cases.items(), "verifying", total=len(cases)):
        ref_input = arrays if len(arrays) > 1 else arrays[0]
        ref = reference.run(ref_input)
        net = run_net(arrays)
        exact = {}
        if wants_twin:
            twin = twin or reference.make_twin()
            exact = twin(ref_input)
        found = [compare_arrays(case, name, net[name], ref[name],
                                quantized.quantization_bound(ref[name], exact[name])
                                if bounds[name].rule == QUANTIZATION else bounds[name])
                 for name in conversion.outputs]
        if reference.make_spread is not None and any(
                not c.within_bound and c.rule != QUANTIZATION for c in found):
            spread = spread or reference.make_spread()
            apart = spread(ref_input, ref)  # the reference's run is one of the runtimes
            found = [c if c.within_bound else replace(c, reference_spread=apart.get(c.output))
                     for c in found]
        if wants_twin:
            found += [replace(compare_arrays(case, name, net[name], exact[name],
                                             GRAPH_TOLERANCE), against="dequantized twin")
                      for name in conversion.outputs]
        report.comparisons.extend(found)
    return report


def reference_from_file(path: str | Path, worker: TensorFlowWorker | None = None,
                        ) -> references.Reference:
    """A reference file for the zoo path: a `.tflite` or frozen `.pb` to run (a `.pb` in
    `worker`'s process, or in a worker started now: TensorFlow never runs a user's graph in
    this process), or `tests.h5`."""
    path = Path(path)
    if path.suffix == ".tflite":
        return references.tflite_reference(path)
    if path.suffix == ".pb":
        return (worker or TensorFlowWorker()).frozen_graph(path)
    return references.stored_reference(path)


# --- another form of a package's net (compiled, ...) -----------------------------------------

def check_port(model: Any, candidate: nn.Module,
               form: str = "the compiled form") -> tuple[dict, str]:
    """Verify `candidate`, another form of a package's net (`model`: a loaded package;
    `form` names it in the error),
    against the original's outputs the package recorded at conversion; for a package
    converted without verification, against the package's own module on zeros and a seeded
    random batch. Raises `VerificationError` when it disagrees; returns the report as a
    dict and what it was checked against."""
    card = model.card
    graph = card.config.get("graph")
    kind = "graph" if graph else "zoo"
    layout = card.config.get("layout", "nhwc") if graph else "nchw"
    outputs = list(graph["output_names"]) if graph else None
    stored = model.path / STORED_OUTPUTS
    if stored.is_file():
        cases, kind, reference = load_cases(stored)
        against = f"the original's outputs recorded at conversion ({reference})"
    else:
        eager = port_runner(model.net, kind, layout, outputs)
        cases = [StoredCase(name, tuple(arrays), dict(eager(arrays)))
                 for name, arrays in _source_inputs(card, graph).items()]
        reference = against = ("the package's own module (no outputs of the original were "
                               "recorded: converted without verification)")
    report = verify_stored(port_runner(candidate, kind, layout, outputs), cases, kind,
                           reference, spreads_of(card.verification))
    if not report.passed:
        raise VerificationError(f"{model.path}: {form} disagrees with {against}:\n"
                                + report.table())
    return report.to_dict(), against


def _source_inputs(card: Any, graph: dict | None) -> dict[str, list[np.ndarray]]:
    """Zeros and a seeded random batch per input, channels-last as the source takes them."""
    if graph:
        shapes = [tuple(d or DEFAULT_UNKNOWN_DIM for d in i["shape"]) for i in graph["inputs"]]
    else:
        channels, height, width = card.input["shape"]
        shapes = [(height, width, channels)]
    per_input = [standard_inputs(s) for s in shapes]
    return {case: [inputs[case] for inputs in per_input] for case in ("zeros", "random")}
