"""The Python API, mirrored one-to-one by the CLI: convert, verify, load."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tf2torch import repository
from tf2torch._choices import PREPROCESS_CHOICES
from tf2torch.card import Card
from tf2torch.checks import (
    find_reference,
    graph_reference,
    reference_from_file,
    verify_graph,
    verify_zoo,
    zero_batch,
)
from tf2torch.codecs import Decoder, Encoder
from tf2torch.conversion import Conversion, convert_source
from tf2torch.errors import Tf2TorchError, VerificationError
from tf2torch.package import LoadedModel, load_package, write_package
from tf2torch.sources import SourceModel, open_source
from tf2torch.stats import count_multiply_adds, count_parameters
from tf2torch.verify import VerificationReport


def version() -> str:
    try:
        return importlib.metadata.version("tf2torch")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


@dataclass
class ConvertResult:
    """What `convert` produced: the package's card and folder, and the proofs."""

    path: Path
    card: Card
    conversion: Conversion
    verification: VerificationReport | None


def default_name(source: SourceModel) -> str:
    """`mobilenet_v2_1.4_224` for slim releases, else the file's stem."""
    if source.meta.get("release"):
        return str(source.meta["release"])
    stem = source.path.name
    for suffix in (".tgz", ".tar.gz", ".keras", ".h5", ".tflite", ".ckpt", ".index"):
        stem = stem.removesuffix(suffix)
    return stem or "model"


def convert(
    source: str | Path, out: str | Path | None = None, *, name: str | None = None,
    input_size: int | None = None, use_ema: bool = True, reference: str | Path | None = None,
    images: Sequence[str | Path] = (), verify: bool | None = None, overwrite: bool = False,
    layout: str = "nhwc", license: str = "unknown", preprocess: str = "auto",
    labels: str | None = None,
) -> ConvertResult:
    """Convert `source`, verify it against the original, and write a package.

    `out` is a folder to write the package to; by default it is published in the repository
    under `name` (default: derived from the source). `verify=None` verifies when a reference
    is at hand and fails when the port disagrees; `True` requires a reference; `False` skips.
    `preprocess`/`labels` describe the encoder/decoder of graph-converted models (see
    `codecs_for`); zoo models carry their own. Nothing is written when conversion or
    verification fails.
    """
    model = open_source(source)
    conversion = convert_source(model, input_size=input_size, use_ema=use_ema, layout=layout)
    encoder, decoder = codecs_for(conversion, preprocess, labels)
    report = _verify(conversion, reference, _encode_images(encoder, images), verify)
    if report is not None and not report.passed:
        raise VerificationError(
            f"{model.path}: the converted model disagrees with {report.reference}:\n"
            + report.table()
        )
    name = repository.check_name(name or default_name(model))
    destination = Path(out) if out is not None else repository.publish_path(name)
    sample = zero_batch(conversion)
    fields: dict[str, Any] = {
        "name": name,
        "architecture": conversion.architecture,
        "config": conversion.config,
        "source": _source_fields(model),
        "input": {"shape": list(conversion.input_shape), "layout": conversion.layout,
                  "dtype": "float32"},
        "encoder": encoder.to_dict() if encoder else None,
        "decoder": decoder.to_dict() if decoder else None,
        "parameters": count_parameters(conversion.net),
        "multiply_adds": count_multiply_adds(conversion.net, *sample),
        "verification": report.to_dict() if report else None,
        "mapping": conversion.mapping.to_dict() if conversion.mapping else None,
        "license": license,
        "tf2torch_version": version(),
        "created": date.today().isoformat(),
        "notes": _notes(conversion),
    }
    card = write_package(destination, conversion.net, fields, overwrite=overwrite)
    return ConvertResult(destination, card, conversion, report)


def _verify(conversion: Conversion, reference: str | Path | None,
            images: dict[str, np.ndarray], verify: bool | None) -> VerificationReport | None:
    """Run the right reference; `verify=None` skips quietly when none is at hand."""
    if verify is False:
        return None
    try:
        if conversion.source.graph is not None:
            description, run_ref = graph_reference(conversion.source)
            return verify_graph(conversion, description, run_ref, images)
        ref = reference_from_file(reference) if reference else find_reference(conversion.source)
    except Tf2TorchError:
        if verify:
            raise
        return None
    return verify_zoo(conversion, ref, images)


def _encode_images(encoder: Encoder | None, images: Sequence[str | Path]) -> dict[str, np.ndarray]:
    """User images through the model's own encoder, as NHWC batches of one."""
    if not images or encoder is None:
        return {}
    out = {}
    for image in images:
        batch = encoder([image]).numpy()
        out[f"image:{Path(image).name}"] = batch.transpose(0, 2, 3, 1) \
            if encoder.layout == "NCHW" else batch
    return out


def codecs_for(conversion: Conversion, preprocess: str = "auto", labels: str | None = None,
               ) -> tuple[Encoder | None, Decoder | None]:
    """The encoder/decoder a package records.

    Zoo models: their own (slim preprocessing, 1001 ImageNet classes). Graph models: what the
    user names — `preprocess` one of PREPROCESS_CHOICES ("auto": raw 0–255 pixels when the
    model starts with its own Rescaling/Normalization, else none) and `labels` "imagenet" or a
    text file with one class name per line.
    """
    if conversion.architecture == "mobilenet_v2":
        size = conversion.input_shape[-1]
        return Encoder.slim(size), Decoder.imagenet(conversion.num_classes or 1001)
    if preprocess not in PREPROCESS_CHOICES:
        raise ValueError(f"preprocess={preprocess!r}; choose one of {PREPROCESS_CHOICES}")
    if len(conversion.inputs) != 1 or len(conversion.input_shape) != 3:
        return None, None
    return _graph_encoder(conversion, preprocess), _graph_decoder(conversion, labels)


def _graph_encoder(conversion: Conversion, preprocess: str) -> Encoder | None:
    layout = "NHWC" if conversion.layout == "nhwc" else "NCHW"
    h, w = (conversion.input_shape[:2] if layout == "NHWC" else conversion.input_shape[1:])
    size = (h or 224, w or 224)
    if preprocess == "auto":
        preprocess = "raw" if _starts_with_rescaling(conversion) else "none"
    if preprocess == "none":
        return None
    if preprocess == "raw":
        return Encoder(size, "central_crop_then_resize", 1.0, "bilinear", True, 255.0,
                       (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), "RGB", layout)
    if preprocess.startswith("keras-"):
        return Encoder.keras(size, preprocess.removeprefix("keras-"), layout)
    encoder = Encoder.slim(size) if preprocess == "slim" else Encoder.imagenet(size)
    return dataclasses.replace(encoder, layout=layout)


def _starts_with_rescaling(conversion: Conversion) -> bool:
    nodes = conversion.config.get("graph", {}).get("nodes", [])
    first = next((n for n in nodes if n["op"] != "InputLayer"), None)
    return first is not None and first["op"] in ("Rescaling", "Normalization")


def _graph_decoder(conversion: Conversion, labels: str | None) -> Decoder | None:
    if labels is None:
        return None
    if labels == "imagenet":
        return Decoder.imagenet(conversion.num_classes or _output_width(conversion))
    names = Path(labels).read_text(encoding="utf-8").splitlines()
    return Decoder.custom([n for n in names if n.strip()])


def _output_width(conversion: Conversion) -> int:
    with torch.inference_mode():
        out = conversion.net(*zero_batch(conversion))
    return int((out[0] if isinstance(out, tuple | list) else out).shape[-1])


def _notes(conversion: Conversion) -> list[str]:
    notes = []
    if conversion.mapping is not None:
        notes.append("exponential-moving-average weights used" if conversion.mapping.ema
                     else "raw (non-EMA) weights used")
    return notes


def _source_fields(model: SourceModel) -> dict[str, Any]:
    files = _source_files(model)
    digest = hashlib.sha256()
    for path in files:
        with open(path, "rb") as f:
            for chunk in iter(lambda f=f: f.read(1 << 20), b""):
                digest.update(chunk)
    return {"file": model.meta.get("archive", model.path).__str__().split("/")[-1],
            "format": model.format, "sha256": digest.hexdigest(),
            "release": model.meta.get("release")}


def _source_files(model: SourceModel) -> list[Path]:
    """The bytes that identify the source: the archive, the file, or the checkpoint's files."""
    if model.meta.get("archive"):
        return [Path(model.meta["archive"])]
    if model.path.is_file():
        return [model.path]
    prefix = model.path
    return sorted(prefix.parent.glob(prefix.name + ".index")) + sorted(
        prefix.parent.glob(prefix.name + ".data-*"))


def load(name_or_path: str | Path, inference: bool = False) -> LoadedModel:
    """A package from the repository (by name) or from a folder.

    `inference=True` swaps `.net` for its inference form (BatchNorm folded into the convs,
    channels-last, glibc told to keep big buffers): the same numbers, faster, not trainable.
    """
    model = load_package(repository.resolve(name_or_path))
    if inference:
        from tf2torch.inference import configure_allocator, inference_form

        configure_allocator()
        model.net = inference_form(model.net, model.card.input["shape"],
                                   input_layout=model.card.input.get("layout", "nchw"))
    return model


def verify(
    source: str | Path, package: str | Path | None = None, *, reference: str | Path | None = None,
    images: Sequence[str | Path] = (), input_size: int | None = None, use_ema: bool = True,
) -> VerificationReport:
    """Verify a converted package (or a fresh conversion of `source`) against the original."""
    model = open_source(source)
    conversion = convert_source(model, input_size=input_size, use_ema=use_ema)
    if package is not None:
        conversion.net = load(package).net
    encoder, _ = codecs_for(conversion)
    report = _verify(conversion, reference, _encode_images(encoder, images), verify=True)
    assert report is not None  # verify=True raises instead of skipping
    return report


def verify_layers(
    source: str | Path, *, keras_reference: str | Path | None = None,
    input_size: int | None = None, use_ema: bool = True, seed: int = 0,
) -> Any:
    """Per-layer comparison of a fresh conversion with a runnable Keras form of the original.

    Returns a `tf2torch.layerwise.LayerReport` (table, JSON, plot). The Keras model is found
    in the release (`*.keras`) unless given.
    """
    from tf2torch.layerwise import KerasLayers, compare_layers, standin_naming
    from tf2torch.verify import standard_inputs

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


def _per_layer_keras(model: SourceModel, seed: int) -> Any:
    """Every converted layer against the Keras layer of the same name (IR node ↔ fx module)."""
    from tf2torch.checks import graph_inputs
    from tf2torch.layerwise import KerasLayers, compare_layers

    conversion = convert_source(model)
    if len(conversion.inputs) != 1:
        raise Tf2TorchError(f"{model.path}: per-layer comparison handles one-input models")
    keras_model = _load_keras(model.path)
    inputs = {case: arrays[0] for case, arrays in graph_inputs(conversion, seed, 1).items()}
    return compare_layers(conversion, KerasLayers(keras_model), inputs)


def _per_op_tflite(model: SourceModel, seed: int) -> Any:
    """Every intermediate tensor of a converted .tflite against the interpreter's own."""
    from tf2torch.checks import graph_inputs
    from tf2torch.graph.tflite.perop import compare_per_op
    from tf2torch.layerwise import LayerReport, LayerRow

    conversion = convert_source(model)
    arrays = graph_inputs(conversion, seed, batch=1)["random"]
    diffs = compare_per_op(model.path, model.graph, conversion.net, arrays)
    rows = [LayerRow(d.node, d.tensor, d.op, 1, d.shape, d.max_abs, d.max_rel, d.bound)
            for d in diffs]
    return LayerReport(f"TFLite interpreter on {model.path.name} (all tensors kept)", rows)


def _load_keras(path: Path) -> Any:
    """Keras's own loader in safe mode: no Lambda or custom code from the file is run."""
    import torch  # noqa: F401 - torch before tensorflow

    try:
        import tensorflow as tf
    except ImportError as exc:
        from tf2torch.errors import MissingDependencyError

        raise MissingDependencyError("per-layer comparison needs TensorFlow: "
                                     "pip install 'tf2torch[tf]'") from exc
    return tf.keras.models.load_model(path, compile=False, safe_mode=True)
