"""Entry points of `tf2torch verify --per-layer`: pick the reference the source allows.

- TF-slim checkpoints: the release's frozen graph (`*_frozen.pb`), else a Keras form of the
  model (`*.keras`), else its `.tflite`, or the file given; paired through the slim scopes.
- `.keras` / `.h5`: Keras itself, layer by layer, paired through the IR's layer names.
- `.tflite`: the interpreter with every tensor kept, paired op by op.
- SavedModels, frozen GraphDefs, meta graphs: TensorFlow, node by node, paired by TF node
  name (for a SavedModel, TensorFlow's own inlined form of the signature).
"""

from __future__ import annotations

from pathlib import Path

from tf2torch.conversion.convert import convert_source
from tf2torch.errors import Tf2TorchError
from tf2torch.references.isolated_keras import IsolatedLayers
from tf2torch.references.layers import LayerReference, TfliteLayers
from tf2torch.sources import SourceModel, open_source
from tf2torch.verification.checks import TF_GRAPH_FORMATS, graph_inputs
from tf2torch.verification.layerwise.compare import compare_layers
from tf2torch.verification.layerwise.report import LayerReport, LayerRow
from tf2torch.verification.report import standard_inputs


def verify_layers(
    source: str | Path | SourceModel, *, reference: str | Path | None = None,
    input_size: int | None = None, use_ema: bool = True, seed: int = 0,
    signature: str | None = None, quantized: str = "simulate",
) -> LayerReport:
    """Per-layer comparison of a fresh conversion with the original, run by TensorFlow.

    Returns a `tf2torch.verification.layerwise.LayerReport` (table, JSON, plot). For a checkpoint the
    reference is `reference` (a frozen `.pb`, `.keras` or `.tflite`), else the first of those
    the release ships, in that order: the frozen graph exposes every conv and BN, a `.tflite`
    only what its fused ops leave.
    """
    if not isinstance(source, SourceModel):
        with open_source(source, signature=signature) as model:  # its unpacked files go after
            return verify_layers(model, reference=reference, input_size=input_size,
                                 use_ema=use_ema, seed=seed, quantized=quantized)
    model = source
    if model.format == "tflite":
        return _per_op_tflite(model, seed, quantized)
    if model.format in TF_GRAPH_FORMATS:
        return _per_node_tensorflow(model, seed)
    if model.format == "keras":
        return _per_layer_keras(model, seed)
    conversion = convert_source(model, input_size=input_size, use_ema=use_ema)
    size = conversion.input_shape[-1]
    return compare_layers(conversion, zoo_reference(model, reference),
                          standard_inputs((size, size, 3), seed, batch=1))


_REFERENCE_ORDER = ("frozen_pb", "keras", "tflite")


def zoo_reference(model: SourceModel, reference: str | Path | None = None) -> LayerReference:
    """The runnable original of a checkpoint, its tensors named by slim scope."""
    if reference is not None:
        path = Path(reference)
        kind = {".pb": "frozen_pb", ".keras": "keras", ".h5": "keras", ".tflite": "tflite"}.get(
            path.suffix.lower())
        if kind is None:
            raise Tf2TorchError(f"{path}: a per-layer reference is a frozen .pb, .keras or .tflite")
        if not path.is_file():
            raise Tf2TorchError(f"{path}: no such file")
    else:
        kind = next((k for k in _REFERENCE_ORDER if k in model.runnable), None)
        if kind is None:
            raise Tf2TorchError(
                f"{model.path}: per-layer comparison needs the original in runnable form "
                "(--reference FILE: a frozen .pb, .keras or .tflite); none is beside the checkpoint")
        path = model.runnable[kind]
    if kind == "tflite":
        return TfliteLayers(path)  # its interpreter is isolated already
    return IsolatedLayers("frozen_pb" if kind == "frozen_pb" else "keras_standin", path)


def _per_layer_keras(model: SourceModel, seed: int) -> LayerReport:
    """Every converted layer against the Keras layer of the same name (IR node ↔ fx module)."""
    conversion = convert_source(model)
    if len(conversion.inputs) != 1:
        raise Tf2TorchError(f"{model.path}: per-layer comparison handles one-input models")
    inputs = {case: arrays[0] for case, arrays in graph_inputs(conversion, seed, 1).items()}
    return compare_layers(conversion, IsolatedLayers("keras", model.path), inputs)


def _per_op_tflite(model: SourceModel, seed: int, quantized: str) -> LayerReport:
    """Every intermediate tensor of a converted .tflite against the interpreter's own
    (quantized tensors dequantized; a full-integer model's held to one step each)."""
    from tf2torch.references.mediapipe_runtime import mediapipe_only_ops
    from tf2torch.verification.layerwise.perop import compare_per_op, reference_form

    if ops := mediapipe_only_ops(model.graph.op_counts()):
        raise Tf2TorchError(
            f"{model.path}: per-op comparison needs TensorFlow's interpreter, which cannot run "
            f"MediaPipe's custom ops ({', '.join(ops)}); MediaPipe's runtime exposes only the "
            "outputs: compare those with `tf2torch verify` (TF2TORCH_MEDIAPIPE_PYTHON)")
    conversion = convert_source(model, quantized=quantized)
    arrays = graph_inputs(conversion, seed, batch=1)["random"]
    diffs = compare_per_op(model, conversion.net, arrays)
    rows = [LayerRow(d.node, d.tensor, d.op, 1, d.shape, d.max_abs, d.max_rel, d.bound)
            for d in diffs]
    form = reference_form(model)
    how = ("its dequantized float twin, all tensors kept" if form["twin"]
           else "default runtime, every tensor exposed; int8 tensors dequantized, bound one "
                "step" if form["exposed"] else "all tensors kept")
    kind = model.graph.meta.get("quantized")
    port = f" vs the {conversion.config['graph']['meta']['quantized_form']} form" if kind else ""
    return LayerReport(f"TFLite interpreter on {model.path.name} ({how}){port}", rows)


def _per_node_tensorflow(model: SourceModel, seed: int) -> LayerReport:
    """Every converted node's output against TensorFlow's tensor of the same name."""
    from tf2torch.references.isolated_graph import tf_graph_intermediates
    from tf2torch.verification.layerwise.perop import compare_per_op

    conversion = convert_source(model)
    arrays = graph_inputs(conversion, seed, batch=1)["random"]
    diffs = compare_per_op(model, conversion.net, arrays, intermediates=tf_graph_intermediates)
    rows = [LayerRow(d.node, d.tensor, d.op, 1, d.shape, d.max_abs, d.max_rel, d.bound)
            for d in diffs]
    return LayerReport(f"TensorFlow on {model.path.name}, node by node (same TF names)", rows)


