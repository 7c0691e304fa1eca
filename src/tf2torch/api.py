"""The Python API, mirrored one-to-one by the CLI: convert, verify, load."""

from __future__ import annotations

import hashlib
import importlib.metadata
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from datetime import date
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from tf2torch.conversion.convert import Conversion, convert_source
from tf2torch.conversion.macs import count_on_meta
from tf2torch.errors import (
    MissingDependencyError,
    NoReferenceError,
    Tf2TorchError,
    UsageError,
    VerificationError,
)
from tf2torch.packages import repository
from tf2torch.packages.attachments import REFERENCE_OUTPUTS
from tf2torch.packages.card import Card
from tf2torch.packages.codec_policy import codecs_for
from tf2torch.packages.codecs import Encoder
from tf2torch.packages.package import LoadedModel, load_package, write_package
from tf2torch.packages.stats import count_parameters
from tf2torch.references.tensorflow_worker import TensorFlowWorker, will_run_frozen_graph
from tf2torch.sources import SourceModel, open_source
from tf2torch.util.stages import stage
from tf2torch.util.timing import Timings
from tf2torch.verification.checks import (
    check_port,
    find_reference,
    graph_reference,
    load_reference_ahead,
    reference_from_file,
    verify_graph,
    verify_zoo,
    zero_batch,
)
from tf2torch.verification.quantized import card_section as quantized_card
from tf2torch.verification.report import VerificationReport
from tf2torch.verification.stored import Recorder, StoredCase, encode_cases


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
    profile: dict = field(default_factory=dict)  # seconds per phase, peak memory
    unverified: str | None = None  # why `verification` is None: turned off, or no reference


def default_name(source: SourceModel) -> str:
    """`mobilenet_v2_1.4_224` for slim releases, else the file's stem."""
    if source.meta.get("release"):
        return str(source.meta["release"])
    stem = source.path.name
    for suffix in (".tgz", ".tar.gz", ".keras", ".h5", ".tflite", ".pb", ".meta", ".ckpt",
                   ".index"):
        stem = stem.removesuffix(suffix)
    return stem or "model"


def convert(
    source: str | Path, out: str | Path | None = None, *, name: str | None = None,
    input_size: int | None = None, use_ema: bool = True, reference: str | Path | None = None,
    images: Sequence[str | Path] = (), verify: bool | None = None, overwrite: bool = False,
    layout: str = "nhwc", license: str = "unknown", preprocess: str = "auto",
    labels: str | None = None, signature: str | None = None, quantized: str = "simulate",
    compile: bool = False, reference_worker: TensorFlowWorker | None = None,
) -> ConvertResult:
    """Convert `source`, verify it against the original, and write a package.

    `out` is a folder to write the package to; by default it is published in the repository
    under `name` (default: derived from the source). `verify=None` verifies when a reference
    is at hand and fails when the port disagrees; `True` requires a reference; `False` skips.
    `preprocess`/`labels` describe the encoder/decoder of graph-converted models (see
    `codecs_for`); zoo models carry their own. `signature` picks a SavedModel's signature
    (default: serving_default). `quantized` picks the form of a full-integer `.tflite`:
    "simulate" (default: its integer arithmetic, verified within one step) or "float" (the
    dequantized model, for fine-tuning); the card records it. Nothing is written when
    conversion or verification fails. The original's outputs are kept in the package, so later forms of
    the port can be verified against them; `compile` builds and verifies the package's
    compiled form right away (`compile_package`). A release's frozen graph runs in a
    TensorFlow process of its own, started first (`reference_worker`: one already started,
    as the CLI does before torch loads); `ConvertResult.profile` says where the time went.
    """
    timings = Timings()
    worker = reference_worker
    if worker is None and will_run_frozen_graph(source, reference, verify):
        worker = TensorFlowWorker()  # imports TensorFlow while this process reads and converts
    with ExitStack() as stack:  # the source's unpacked files go when the package is written
        try:
            with timings.phase("read the source"):
                model = stack.enter_context(open_source(source, signature=signature))
            if worker is not None:
                load_reference_ahead(model, reference, worker)
            with timings.phase("convert"):
                conversion = convert_source(model, input_size=input_size, use_ema=use_ema,
                                            layout=layout, quantized=quantized)
            encoder, decoder = codecs_for(conversion, preprocess, labels)
            with timings.phase("verify (both sides)"):
                report, cases, unverified = _verify(
                    conversion, reference, _encode_images(encoder, images), verify, worker,
                    timings)
        finally:
            if worker is not None:
                worker.close()
                timings.seconds.update(worker.timings)
        if report is not None and not report.passed:
            raise VerificationError(
                f"{model.path}: the converted model disagrees with {report.reference}:\n"
                + report.table()
            )
        name = repository.check_name(name or default_name(model))
        destination = Path(out) if out is not None else repository.publish_path(name)
        with timings.phase("write the package"):
            files = {}
            if report is not None:
                kind = "graph" if conversion.source.graph is not None else "zoo"
                files[REFERENCE_OUTPUTS.name] = encode_cases(cases, kind, report.reference)
            card = write_package(destination, conversion.net, _card_fields(
                conversion, name, encoder, decoder, report, license), overwrite=overwrite,
                files=files)
    if compile:
        with timings.phase("compile"):
            compile_package(destination)
    profile = timings.to_dict()
    if worker is not None:
        profile["reference_peak_rss_mib"] = worker.peak_rss_mib
    return ConvertResult(destination, card, conversion, report, profile, unverified)


def _card_fields(conversion: Conversion, name: str, encoder: Encoder | None, decoder: Any,
                 report: VerificationReport | None, license: str) -> dict[str, Any]:
    """Every card field but the weights' checksum (`write_package` adds it)."""
    macs = conversion.multiply_adds
    if macs is None:  # input sizes the file leaves open: count at the size verification uses
        macs = count_on_meta(conversion.net, [tuple(t.shape[1:]) for t in zero_batch(conversion)])
    return {
        "name": name,
        "architecture": conversion.architecture,
        "config": conversion.config,
        "source": _source_fields(conversion.source),
        "input": {"shape": list(conversion.input_shape), "layout": conversion.layout,
                  "dtype": "float32"},
        "encoder": encoder.to_dict() if encoder else None,
        "decoder": decoder.to_dict() if decoder else None,
        "parameters": count_parameters(conversion.net),
        "multiply_adds": macs,
        "verification": report.to_dict() if report else None,
        "mapping": conversion.mapping.to_dict() if conversion.mapping else None,
        "license": license,
        "tf2torch_version": version(),
        "created": date.today().isoformat(),
        "notes": _notes(conversion),
        "quantization": quantized_card(conversion.source.meta, conversion.config["graph"])
        if conversion.source.graph is not None else None,
    }


def _verify(conversion: Conversion, reference: str | Path | None,
            images: dict[str, np.ndarray], verify: bool | None,
            worker: TensorFlowWorker | None = None, timings: Timings | None = None,
            ) -> tuple[VerificationReport | None, list[StoredCase], str | None]:
    """Run the right reference, keeping what it answered; the third item says why there is
    no report. `verify=None` skips only when no reference exists (or its framework is not
    installed): a reference that is present but unreadable is an error. A frozen graph runs
    in `worker` when one is given."""
    if verify is False:
        return None, [], "verification turned off"
    try:
        if conversion.source.graph is not None:
            graph_ref = graph_reference(conversion.source)
            recorder = Recorder(graph_ref.run)
            report = verify_graph(conversion, replace(graph_ref, run=recorder), images)
            return report, recorder.cases(report.case_names()), None
        ref = reference_from_file(reference, worker) if reference else \
            find_reference(conversion.source, worker)
    except (NoReferenceError, MissingDependencyError) as exc:
        if verify:
            raise
        return None, [], str(exc)
    recorder = Recorder(ref.run)
    report = verify_zoo(conversion, replace(ref, run=recorder), images)
    if timings is not None:
        timings.add("verify: the reference's calls, as this process waited", recorder.seconds)
    return report, recorder.cases(report.case_names()), None


def _encode_images(encoder: Encoder | None, images: Sequence[str | Path]) -> dict[str, np.ndarray]:
    """User images through the model's own encoder, as NHWC batches of one."""
    if not images:
        return {}
    if encoder is None:  # never drop the user's images silently
        raise UsageError("images to verify on need the model's preprocessing: give "
                         "--preprocess (e.g. raw, imagenet, keras-tf) or a model with one")
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
    """The bytes that identify the source: the archive, the file, a SavedModel folder's
    files, or the checkpoint's files (with a meta graph, both)."""
    if model.meta.get("archive"):
        return [Path(model.meta["archive"])]
    if model.path.is_dir():
        return sorted(p for p in model.path.rglob("*") if p.is_file())
    if model.path.suffix == ".meta":
        prefix = model.path.with_suffix("")
        return [model.path, *sorted(prefix.parent.glob(prefix.name + ".index")),
                *sorted(prefix.parent.glob(prefix.name + ".data-*"))]
    if model.path.is_file():
        return [model.path]
    prefix = model.path
    return sorted(prefix.parent.glob(prefix.name + ".index")) + sorted(
        prefix.parent.glob(prefix.name + ".data-*"))


def load(name_or_path: str | Path, inference: bool = False, compile: bool = False,
         threads: int | None = None) -> LoadedModel:
    """A package from the repository (by name) or from a folder.

    `inference=True` swaps `.net` for its fastest verified form: the package's compiled form
    when one was built for this machine (`tf2torch compile NAME`; loads in well under a
    second), else the inference form (BatchNorm folded into the convs, channels-last, glibc
    told to keep big buffers). The same numbers, faster, not trainable; `model.form` says
    which it is. `compile=True` with no compiled form at hand compiles in this process with
    `torch.compile` (20-70 s per model and batch size; call it under
    `torch.inference_mode()`). `threads` fixes the thread count (else `TF2TORCH_THREADS`,
    else the free CPUs: `tf2torch.util.threads`).
    """
    fast = inference or compile
    # the fast forms build the eager module themselves, and only when no compiled form serves
    model = load_package(repository.resolve(name_or_path), with_net=not fast)
    if fast:
        from tf2torch.packages.compiled import fast_form

        model.net, model.form = fast_form(model, compile=compile, threads=threads)
    return model


def compile_package(name_or_path: str | Path, plan: str | None = None) -> Any:
    """Build, verify and store the package's compiled form for this machine; its manifest.

    Verified against the original's outputs recorded at conversion; a package converted
    without verification is checked against its own eager module instead (the manifest
    says which). Nothing is stored when the compiled form disagrees. `plan` (`"mkl"` or
    `"onednn"`) picks the kernels of the single-image program; by default the one
    measured faster on this CPU's vendor (`tf2torch.packages.single_image`).
    """
    from tf2torch.packages import compiled

    model = load_package(repository.resolve(name_or_path))
    manifest, _ = compiled.build(model, partial(check_port, model), plan=plan)
    return manifest


def verify(
    source: str | Path, package: str | Path | None = None, *, reference: str | Path | None = None,
    images: Sequence[str | Path] = (), input_size: int | None = None, use_ema: bool = True,
    signature: str | None = None, quantized: str = "simulate",
) -> VerificationReport:
    """Verify a converted package (or a fresh conversion of `source`) against the original.
    A release's frozen graph runs in a TensorFlow process started first, as in `convert`."""
    worker = TensorFlowWorker() if will_run_frozen_graph(source, reference, True) else None
    with ExitStack() as stack:
        if worker is not None:
            stack.callback(worker.close)
        with stage("read the source"):
            model = stack.enter_context(open_source(source, signature=signature))
        with stage("load the package"):
            loaded = load(package) if package is not None else None
        if loaded is not None and loaded.card.quantization:  # the package's own form
            quantized = loaded.card.quantization["form"]
        with stage("convert"):
            conversion = convert_source(model, input_size=input_size, use_ema=use_ema,
                                        quantized=quantized)
        if loaded is not None:
            conversion.net = loaded.net
        encoder, _ = codecs_for(conversion)
        with stage("verify (both sides)"):
            report, _, _ = _verify(conversion, reference, _encode_images(encoder, images),
                                   True, worker)
    assert report is not None  # verify=True raises instead of skipping
    return report


def verify_layers(
    source: str | Path, *, reference: str | Path | None = None,
    input_size: int | None = None, use_ema: bool = True, seed: int = 0,
    package: str | Path | None = None, signature: str | None = None,
    quantized: str = "simulate",
) -> Any:
    """Per-layer comparison with the original; see `tf2torch.verification.layerwise.entry.verify_layers`.

    With `package` (a name or folder converted from this very source), the report and its
    plot are also recorded in the package (`per_layer.json`, `per_layer.png`), converted
    with the package's own options, so its pages can show them.
    """
    from tf2torch.verification.layerwise.entry import verify_layers as run

    if package is None:
        return run(source, reference=reference, input_size=input_size, use_ema=use_ema, seed=seed,
                   signature=signature, quantized=quantized)
    from tf2torch.packages.attachments import record_layer_report

    folder = repository.resolve(package)
    card = Card.read(folder / "card.json")
    with open_source(source, signature=signature) as model:
        digest = _source_fields(model)["sha256"]
        if digest != card.source.get("sha256"):
            raise Tf2TorchError(
                f"{folder}: converted from {card.source.get('file')} (sha256 "
                f"{str(card.source.get('sha256'))[:12]}…), not from {model.path.name} (sha256 "
                f"{digest[:12]}…); its per-layer report would not describe this package")
        # the package's own conversion options, so the fresh conversion is the packaged network
        use_ema = card.mapping["ema"] if card.mapping else use_ema
        input_size = card.config.get("input_size", input_size)
        if card.quantization:
            quantized = card.quantization["form"]
        report = run(model, reference=reference, input_size=input_size, use_ema=use_ema,
                     seed=seed, quantized=quantized)
    record_layer_report(folder, report)
    return report


def predict_dataset(model: str | Path, inputs: Sequence[str | Path],
                    output: str | Path | None = None, **options: Any) -> Any:
    """Local `predict`'s job on Ray Data, for many images on one machine or a cluster.

    `model` is a repository name or package folder; `inputs` files, folders and globs;
    `output` a `.parquet` or `.jsonl` file with one row per input (path, top-k indices,
    labels, WordNet ids and scores, error), written atomically (`overwrite=True` replaces
    an existing one). Options: `top`, `batch_size`, `concurrency` (model actors, or a
    (min, max) pair), `cpus_per_actor`, `num_gpus` (per actor), `backend` ("torch" or
    "torch-fast"), `address` (join a cluster; default: a local Ray), `on_progress`.
    Needs `tf2torch[ray]`. Returns a `DatasetPrediction` (counts, timings, and the rows
    themselves as `results` when there is no `output`); see
    `tf2torch.packages.scale.pipeline.predict_dataset`.
    """
    from tf2torch.packages.scale.pipeline import predict_dataset as run

    return run(model, inputs, output, **options)
