"""The Python API, mirrored one-to-one by the CLI: convert, verify, load."""

from __future__ import annotations

import hashlib
import importlib.metadata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from tf2torch.conversion.convert import Conversion, convert_source
from tf2torch.errors import Tf2TorchError, VerificationError
from tf2torch.packages import repository
from tf2torch.packages.card import Card
from tf2torch.packages.codec_policy import codecs_for
from tf2torch.packages.codecs import Encoder
from tf2torch.packages.package import LoadedModel, load_package, write_package
from tf2torch.packages.stats import count_multiply_adds, count_parameters
from tf2torch.sources import SourceModel, open_source
from tf2torch.verification.checks import (
    find_reference,
    graph_reference,
    reference_from_file,
    verify_graph,
    verify_zoo,
    zero_batch,
)
from tf2torch.verification.quantized import card_section as quantized_card
from tf2torch.verification.report import VerificationReport


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
    labels: str | None = None, quantized: str = "simulate",
) -> ConvertResult:
    """Convert `source`, verify it against the original, and write a package.

    `out` is a folder to write the package to; by default it is published in the repository
    under `name` (default: derived from the source). `verify=None` verifies when a reference
    is at hand and fails when the port disagrees; `True` requires a reference; `False` skips.
    `preprocess`/`labels` describe the encoder/decoder of graph-converted models (see
    `codecs_for`); zoo models carry their own. `quantized` picks the form of a full-integer
    `.tflite`: "simulate" (default: its integer arithmetic, verified within one step) or
    "float" (the dequantized model, for fine-tuning); the card records it. Nothing is
    written when conversion or verification fails.
    """
    model = open_source(source)
    conversion = convert_source(model, input_size=input_size, use_ema=use_ema, layout=layout,
                                quantized=quantized)
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
        "quantization": quantized_card(model.meta, conversion.config["graph"])
        if model.graph is not None else None,
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
            return verify_graph(conversion, graph_reference(conversion.source), images)
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
    return {"file": Path(model.meta.get("archive", model.path)).name,
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


def load(name_or_path: str | Path, inference: bool = False, compile: bool = False,
         ) -> LoadedModel:
    """A package from the repository (by name) or from a folder.

    `inference=True` swaps `.net` for its inference form (BatchNorm folded into the convs,
    channels-last, glibc told to keep big buffers): the same numbers, faster, not trainable.
    `compile=True` also runs it through `torch.compile` with Inductor's weight freezing
    (20-70 s once per model and batch size here; call it under `torch.inference_mode()`):
    the fastest form measured in BENCHMARKS.md.
    """
    model = load_package(repository.resolve(name_or_path))
    if inference or compile:
        from tf2torch.packages.inference import configure_allocator, inference_form

        configure_allocator()
        model.net = inference_form(model.net, model.card.input["shape"], compile=compile,
                                   input_layout=model.card.input.get("layout", "nchw"))
    return model


def verify(
    source: str | Path, package: str | Path | None = None, *, reference: str | Path | None = None,
    images: Sequence[str | Path] = (), input_size: int | None = None, use_ema: bool = True,
    quantized: str = "simulate",
) -> VerificationReport:
    """Verify a converted package (or a fresh conversion of `source`) against the original."""
    model = open_source(source)
    loaded = load(package) if package is not None else None
    if loaded is not None and loaded.card.quantization:  # the package's own form
        quantized = loaded.card.quantization["form"]
    conversion = convert_source(model, input_size=input_size, use_ema=use_ema,
                                quantized=quantized)
    if loaded is not None:
        conversion.net = loaded.net
    encoder, _ = codecs_for(conversion)
    report = _verify(conversion, reference, _encode_images(encoder, images), verify=True)
    assert report is not None  # verify=True raises instead of skipping
    return report


def verify_layers(
    source: str | Path, *, reference: str | Path | None = None,
    input_size: int | None = None, use_ema: bool = True, seed: int = 0,
    quantized: str = "simulate",
) -> Any:
    """Per-layer comparison with the original; see `tf2torch.verification.layerwise.entry.verify_layers`."""
    from tf2torch.verification.layerwise.entry import verify_layers as run

    return run(source, reference=reference, input_size=input_size, use_ema=use_ema, seed=seed,
               quantized=quantized)
