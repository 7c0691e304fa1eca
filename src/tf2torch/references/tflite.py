"""Run a `.tflite` file with TensorFlow's TFLite interpreter, as the verification reference.

TensorFlow is imported lazily, only here. Outputs are named like the converted module's
(`Graph.output_names`); inputs go in the file's input order. Like the converted module, the
runners are real-valued: a quantized model input is given its real value and quantized here
as TFLite's QUANTIZE would (x / scale rounded half away from zero, plus the zero point), a
quantized output or intermediate tensor is dequantized. Variable tensors (an LSTM's state)
are reset before every sample: a converted model is stateless.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from tf2torch.errors import SourceError
from tf2torch.sources.model import SourceModel
from tf2torch.sources.tflite.graph import output_names, unique_names
from tf2torch.sources.tflite.reader import read_tflite_model
from tf2torch.sources.tflite.schema import TflModel

RunTflite = Callable[[np.ndarray | list[np.ndarray]], dict[str, np.ndarray]]
TfliteFile = SourceModel | str | Path  # a source hands on its parsed tables; a path is parsed


def _parsed(file: TfliteFile) -> tuple[Path, TflModel]:
    if isinstance(file, SourceModel):
        return file.path, file.parsed
    return Path(file), read_tflite_model(file)


def _interpreter(path: Path, preserve_all: bool = False, kernels: str = "default",
                 twin: bool = False):
    from tf2torch.references.tensorflow import tflite_interpreter

    # every caller here has the file's parsed (validated) tables; a twin is derived from them
    if not twin:
        return tflite_interpreter(path, preserve_all, kernels, checked=True)
    from tf2torch.references.tflite_twin import write_float_twin

    with tempfile.TemporaryDirectory(prefix="tf2torch-twin-") as folder:
        return tflite_interpreter(write_float_twin(path, folder), preserve_all, kernels,
                                  checked=True)


def _as_list(inputs: np.ndarray | list[np.ndarray]) -> list[np.ndarray]:
    batch = inputs if isinstance(inputs, list | tuple) else [inputs]
    return [np.asarray(x) for x in batch]


def _quantized(detail: dict) -> tuple[float, int] | None:
    scale, zero = detail.get("quantization", (0.0, 0))
    if scale == 0.0 or not np.issubdtype(detail["dtype"], np.integer):
        return None
    return float(scale), int(zero)


def _to_interpreter(detail: dict, x: np.ndarray) -> np.ndarray:
    """A real-valued sample as the interpreter's input tensor: quantized where it is."""
    grid = _quantized(detail)
    if grid is None:
        return x.astype(detail["dtype"])
    scale, zero = grid
    q = np.asarray(x, np.float32) / np.float32(scale)
    q = np.sign(q) * np.floor(np.abs(q) + 0.5) + zero
    info = np.iinfo(detail["dtype"])
    return np.clip(q, info.min, info.max).astype(detail["dtype"])


def dequantized(values: np.ndarray, scale: float, zero: int) -> np.ndarray:
    return (np.float64(scale) * (values.astype(np.float64) - zero)).astype(np.float32)


def _from_interpreter(detail: dict, values: np.ndarray) -> np.ndarray:
    grid = _quantized(detail)
    return np.array(values) if grid is None else dequantized(values, *grid)


def _run_each_sample(interpreter, inputs: list[np.ndarray], fetch: Callable[[], dict]) -> dict:
    """Run sample by sample (files often fix the batch at 1) and stack the results. An input
    whose size the file leaves open (-1) is resized to the sample's first."""
    details = interpreter.get_input_details()
    resized = False
    for detail, x in zip(details, inputs, strict=True):
        if tuple(detail["shape"][1:]) != x.shape[1:]:
            interpreter.resize_tensor_input(detail["index"], [1, *x.shape[1:]])
            resized = True
    if resized:
        interpreter.allocate_tensors()
    per_sample: list[dict[str, np.ndarray]] = []
    for n in range(inputs[0].shape[0]):
        interpreter.reset_all_variables()
        for detail, x in zip(details, inputs, strict=True):
            interpreter.set_tensor(detail["index"], _to_interpreter(detail, x[n:n + 1]))
        interpreter.invoke()
        per_sample.append(fetch())
    return {k: np.concatenate([s[k] for s in per_sample]) if per_sample[0][k].ndim
            else per_sample[0][k] for k in per_sample[0]}


def tflite_runner(file: TfliteFile, kernels: str = "default", twin: bool = False) -> RunTflite:
    """A callable: NHWC batch (or one array per input) → every output, named as the
    converted module's outputs, computed by the TFLite interpreter with `kernels`; with
    `twin`, on the file's dequantized float twin (`tflite_twin.py`)."""
    path, model = _parsed(file)
    sub = model.subgraphs[0]
    names = output_names(model, sub, unique_names(sub))
    interpreter = _interpreter(path, kernels=kernels, twin=twin)
    details = interpreter.get_output_details()
    if not twin and [d["index"] for d in details] != list(sub.outputs):
        raise SourceError(f"{path}: the interpreter's outputs are not the file's")

    def fetch() -> dict[str, np.ndarray]:
        return {name: _from_interpreter(d, interpreter.get_tensor(d["index"]))
                for name, d in zip(names, details, strict=True)}

    def run(inputs: np.ndarray | list[np.ndarray]) -> dict[str, np.ndarray]:
        result = _run_each_sample(interpreter, _as_list(inputs), fetch)
        return {name: result[name] for name in names}

    return run


SpreadFn = Callable[[np.ndarray | list[np.ndarray], dict[str, np.ndarray]], dict[str, float]]


def tflite_spread(file: TfliteFile) -> SpreadFn:
    """A callable: (inputs, the default runtime's outputs on them) → per output, how far
    TFLite's own runtimes disagree there.

    XNNPACK, the builtin optimized kernels and the reference kernels all compute in float32
    but sum in different orders; on an ill-conditioned network (MediaPipe's pose landmark
    model: a last conv with row norms ~500) they differ from each other by more than the
    1e-4 bound, and then no float32 port can be held to it. The largest pairwise max |a − b|.
    A runtime that cannot run the file (MediaPipe's Convolution2DTransposeBias exists only in
    XNNPACK) is left out; with no second runtime there is no spread (an empty answer).
    """
    others = []
    for kernels in ("builtin", "reference"):
        try:
            others.append(tflite_runner(file, kernels))
        except (SourceError, ValueError, RuntimeError):  # an op version a runtime lacks
            continue

    def spread(inputs: np.ndarray | list[np.ndarray],
               default: dict[str, np.ndarray]) -> dict[str, float]:
        runs = [default]
        for run in others:
            try:
                runs.append(run(inputs))
            except RuntimeError:  # an op it has no kernel for, found when invoked
                continue
        if len(runs) < 2:
            return {}
        return {name: max(float(np.abs(a[name] - b[name]).max(initial=0.0))
                          for i, a in enumerate(runs) for b in runs[i + 1:])
                for name in runs[0]}

    return spread


def tflite_intermediates(file: TfliteFile, inputs: np.ndarray | list[np.ndarray],
                         twin: bool = False, exposed: bool = False) -> dict[str, np.ndarray]:
    """Every tensor the interpreter computed (for `--per-op`), by tensor name (made unique
    as in the IR), for the given batch; quantized tensors dequantized. With `twin`, those
    of the dequantized float twin (the same tensors, by the same names). By default the
    builtin kernels run with every tensor kept; `exposed` runs the default runtime
    (XNNPACK) on a copy whose every tensor is an output."""
    path, model = _parsed(file)
    sub = model.subgraphs[0]
    names = unique_names(sub)
    if exposed:
        from tf2torch.references.tflite_twin import write_exposed

        with tempfile.TemporaryDirectory(prefix="tf2torch-exposed-") as folder:
            interpreter = _interpreter(write_exposed(path, folder, twin))
    else:
        interpreter = _interpreter(path, preserve_all=True, twin=twin)
    details = {d["index"]: d for d in interpreter.get_tensor_details()}
    computed = sorted({i for op in sub.operators for i in op.outputs} & set(details))

    def fetch() -> dict[str, np.ndarray]:
        found = {}
        for i in computed:
            try:
                found[names[i]] = _from_interpreter(details[i], interpreter.get_tensor(i))
            except ValueError:  # never computed: a conversion op the twin removed
                continue
        return found

    return _run_each_sample(interpreter, _as_list(inputs), fetch)
