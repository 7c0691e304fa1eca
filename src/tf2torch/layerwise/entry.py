"""Entry points of `tf2torch verify --per-layer`: pick the reference the source allows.

- TF-slim checkpoints: a runnable Keras form of the model (`*.keras` beside the checkpoint or
  `--keras-reference`), paired through the slim scopes.
- `.keras` / `.h5`: Keras itself, layer by layer, paired through the IR's layer names.
- `.tflite`: the interpreter with every tensor kept, paired op by op.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tf2torch.checks import graph_inputs
from tf2torch.conversion import convert_source
from tf2torch.errors import Tf2TorchError
from tf2torch.layerwise.compare import compare_layers
from tf2torch.layerwise.references import KerasLayers, standin_naming
from tf2torch.layerwise.report import LayerReport, LayerRow
from tf2torch.sources import SourceModel, open_source
from tf2torch.verify import standard_inputs


def verify_layers(
    source: str | Path, *, keras_reference: str | Path | None = None,
    input_size: int | None = None, use_ema: bool = True, seed: int = 0,
) -> LayerReport:
    """Per-layer comparison of a fresh conversion with a runnable Keras form of the original.

    Returns a `tf2torch.layerwise.LayerReport` (table, JSON, plot). The Keras model is found
    in the release (`*.keras`) unless given.
    """
    model = open_source(source)
    if model.format == "tflite":
        return _per_op_tflite(model, seed)
    if model.format == "keras":
        return _per_layer_keras(model, seed)
    path = Path(keras_reference) if keras_reference else model.runnable.get("keras")
    if path is None:
        raise Tf2TorchError(
            f"{model.path}: per-layer comparison needs a runnable Keras form of the original "
            "(--keras-reference FILE.keras); none was found beside the checkpoint"
        )
    conversion = convert_source(model, input_size=input_size, use_ema=use_ema)
    keras_model = _load_keras(path)
    size = conversion.input_shape[-1]
    return compare_layers(conversion, KerasLayers(keras_model, standin_naming(keras_model)),
                          standard_inputs((size, size, 3), seed, batch=1))


def _per_layer_keras(model: SourceModel, seed: int) -> LayerReport:
    """Every converted layer against the Keras layer of the same name (IR node ↔ fx module)."""
    conversion = convert_source(model)
    if len(conversion.inputs) != 1:
        raise Tf2TorchError(f"{model.path}: per-layer comparison handles one-input models")
    keras_model = _load_keras(model.path)
    inputs = {case: arrays[0] for case, arrays in graph_inputs(conversion, seed, 1).items()}
    return compare_layers(conversion, KerasLayers(keras_model), inputs)


def _per_op_tflite(model: SourceModel, seed: int) -> LayerReport:
    """Every intermediate tensor of a converted .tflite against the interpreter's own."""
    from tf2torch.graph.tflite.perop import compare_per_op

    conversion = convert_source(model)
    arrays = graph_inputs(conversion, seed, batch=1)["random"]
    diffs = compare_per_op(model.path, model.graph, conversion.net, arrays)
    rows = [LayerRow(d.node, d.tensor, d.op, 1, d.shape, d.max_abs, d.max_rel, d.bound)
            for d in diffs]
    return LayerReport(f"TFLite interpreter on {model.path.name} (all tensors kept)", rows)


def _load_keras(path: Path) -> Any:
    """Keras's own loader (tf_keras for Keras 2 files), safe mode: no code from the file runs."""
    from tf2torch.graph.reference import load_keras_model

    return load_keras_model(path)
