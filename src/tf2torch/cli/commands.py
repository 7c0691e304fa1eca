"""One function per CLI command, registered in `COMMANDS` with its arguments."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tf2torch.cli import compile_command, predict_command, repository_commands, web_commands
from tf2torch.cli.boundary import add_common_flags
from tf2torch.cli.render import card_summary, config_text, emit_json, profile_table
from tf2torch.util.choices import PREPROCESS_CHOICES


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    description: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]

    def register(self, sub: argparse._SubParsersAction) -> None:
        parser = sub.add_parser(self.name, help=self.help, description=self.description,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
        self.add_arguments(parser)
        add_common_flags(parser)
        parser.set_defaults(handler=self.run, command=self.name)


def _json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="machine-readable output on stdout")


def _signature_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--signature", metavar="NAME", help="SavedModel / meta graph: the "
                        "signature to use (default: serving_default; `inspect` lists them)")


# --- convert --------------------------------------------------------------------------------

def _convert_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", help="SavedModel folder, frozen .pb, .meta, checkpoint prefix or "
                   "folder, release .tgz, .keras, .h5, .tflite")
    p.add_argument("-o", "--out", type=Path, help="write the package to this folder instead of "
                   "publishing it in the repository")
    p.add_argument("--name", help="repository name (default: from the source, e.g. "
                   "mobilenet_v2_1.4_224)")
    p.add_argument("--input-size", type=int, help="input size the module is built for "
                   "(default: from the release name, else 224)")
    p.add_argument("--no-ema", action="store_true", help="use raw weights even when the "
                   "checkpoint holds ExponentialMovingAverage shadows")
    p.add_argument("--reference", type=Path, help="zoo path: verify against this .tflite or "
                   "tests.h5 (default: one found in the release)")
    p.add_argument("--images", nargs="*", default=[], type=Path,
                   help="real images to add to the verification inputs")
    p.add_argument("--no-verify", action="store_true", help="skip verification")
    p.add_argument("--overwrite", action="store_true", help="replace an existing package")
    p.add_argument("--layout", choices=("nhwc", "nchw"), default="nhwc",
                   help="graph path: keep the source's NHWC interface (default) or take NCHW")
    p.add_argument("--license", default="unknown", help="license recorded in the model card")
    p.add_argument("--preprocess", default="auto", choices=PREPROCESS_CHOICES,
                   help="graph path: the encoder to record (auto: raw 0-255 pixels when the "
                   "model starts with Rescaling/Normalization, else none; keras-tf/torch/caffe: "
                   "keras.applications preprocess_input modes)")
    p.add_argument("--labels", help="graph path: 'imagenet' or a text file with one class name "
                   "per line, for the decoder")
    p.add_argument("--compile", action="store_true", help="also build and verify the "
                   "compiled form for this machine (tf2torch compile NAME)")
    p.add_argument("--profile", action="store_true", help="print where the time and memory "
                   "went, phase by phase, on stderr (always in --json)")
    p.add_argument("--emit-code", type=Path, metavar="FILE.py",
                   help="graph path: also write a readable standalone nn.Module source file "
                   "(a copy is kept in the package as model.py)")
    _signature_flag(p)
    _quantized_flag(p)
    _json_flag(p)


def _quantized_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quantized", choices=("simulate", "float"), default="simulate",
                        help="a full-integer .tflite: 'simulate' (default) reproduces its "
                        "integer arithmetic, verified within one quantization step; 'float' "
                        "gives the dequantized model to fine-tune, verified within the "
                        "quantization error. Weight-only files always convert to float")


def _convert(args: argparse.Namespace) -> int:
    from tf2torch.references.tensorflow_worker import TensorFlowWorker, will_run_frozen_graph

    # started before torch loads (the api's import), so TensorFlow's import overlaps it
    worker = TensorFlowWorker() if will_run_frozen_graph(
        args.source, args.reference, False if args.no_verify else None) else None
    from tf2torch.api import convert

    result = convert(
        args.source, args.out, name=args.name, input_size=args.input_size,
        use_ema=not args.no_ema, reference=args.reference, images=args.images,
        verify=False if args.no_verify else None, overwrite=args.overwrite, layout=args.layout,
        license=args.license, preprocess=args.preprocess, labels=args.labels,
        compile=args.compile, reference_worker=worker, signature=args.signature,
        quantized=args.quantized,
    )
    if args.profile:
        print(profile_table(result.profile), file=sys.stderr)
    if args.emit_code:
        _emit_code(result, args.emit_code)
    if args.json:
        emit_json({"path": str(result.path), "card": card_summary(result.card),
                   "verification": result.verification.to_dict() if result.verification else None,
                   "unverified": result.unverified, "mapping": result.card.mapping,
                   "profile": result.profile})
        return 0
    card = result.card
    print(f"converted {card.source['file']} → {card.architecture} {config_text(card)}")
    if card.mapping:
        m = card.mapping
        print(f"weights: {m['used']} tensors mapped, {len(m['ignored'])} ignored "
              f"({'EMA shadows used' if m['ema'] else 'raw weights'}); nothing missing")
    if result.verification:
        print(result.verification.table())
    elif args.no_verify:
        print("not verified: verification turned off (--no-verify)")
    else:
        print(f"not verified: {result.unverified}")
    print(f"package: {result.path}")
    return 0


def _emit_code(result: object, path: Path) -> None:
    from tf2torch.conversion.graph.codegen import emit_code
    from tf2torch.errors import UnsupportedError

    if result.conversion.source.graph is None:  # type: ignore[attr-defined]
        raise UnsupportedError("--emit-code applies to graph-converted models (Keras, TFLite, "
                               "TensorFlow graphs)")
    weights = path.with_suffix(".safetensors")
    emit_code(result.conversion.graph_conversion, path, weights)  # type: ignore[attr-defined]
    from tf2torch.packages.attachments import CODE, attach_file

    attach_file(result.path, CODE.name, path)  # type: ignore[attr-defined]
    print(f"code: {path} (weights: {weights}; also in the package as {CODE.name})",
          file=sys.stderr)


# --- verify ---------------------------------------------------------------------------------

def _verify_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", help="the original: SavedModel, frozen .pb, .meta, checkpoint, "
                   "release .tgz, .keras, .h5, .tflite")
    p.add_argument("--package", help="a converted package (name or folder) to check; default: "
                   "convert the source afresh. With --per-layer: record the report and its plot "
                   "in that package (per_layer.json/.png), for its pages")
    p.add_argument("--reference", type=Path,
                   help="the original to compare against: .tflite or tests.h5; with --per-layer "
                   "a frozen .pb, .keras or .tflite (default: the first the release ships)")
    p.add_argument("--images", nargs="*", default=[], type=Path, help="real images to add")
    p.add_argument("--input-size", type=int)
    p.add_argument("--no-ema", action="store_true")
    p.add_argument("--output", type=Path, help="also write the JSON report to this file")
    p.add_argument("--per-layer", "--per-op", dest="per_layer", action="store_true",
                   help="compare every intermediate layer (TFLite: every op) and name the first "
                   "one that diverges")
    p.add_argument("--keras-reference", type=Path, dest="reference",
                   help=argparse.SUPPRESS)  # before --reference took every kind
    p.add_argument("--plot", type=Path, metavar="PNG",
                   help="--per-layer: write the error-per-layer plot (log scale) to this file")
    _signature_flag(p)
    _quantized_flag(p)
    _json_flag(p)


def _verify(args: argparse.Namespace) -> int:
    from tf2torch.api import verify

    if args.per_layer:
        return _verify_layers(args)

    report = verify(args.source, args.package, reference=args.reference, images=args.images,
                    input_size=args.input_size, use_ema=not args.no_ema,
                    signature=args.signature, quantized=args.quantized)
    if args.output:
        args.output.write_text(report.to_json())
    if args.json:
        emit_json(report.to_dict())
    else:
        print(report.table())
    return 0 if report.passed else 1


def _verify_layers(args: argparse.Namespace) -> int:
    from tf2torch.api import verify_layers

    report = verify_layers(args.source, reference=args.reference, input_size=args.input_size,
                           use_ema=not args.no_ema, package=args.package,
                           signature=args.signature, quantized=args.quantized)
    if args.plot:
        report.plot(args.plot)
    if args.output:
        args.output.write_text(report.to_json())
    if args.json:
        emit_json(report.to_dict())
    else:
        print(report.table())
        if args.plot:
            print(f"plot: {args.plot}")
    return 0 if report.passed else 1


# --- inspect --------------------------------------------------------------------------------

def _inspect_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", help="SavedModel, frozen .pb, .meta, checkpoint, release .tgz, "
                   ".keras, .h5 or .tflite")
    _signature_flag(p)
    _json_flag(p)


def _inspect(args: argparse.Namespace) -> int:
    from tf2torch.cli.inspection import group_by_scope, render_groups
    from tf2torch.sources import open_source

    with open_source(args.source, signature=args.signature) as model:
        groups = group_by_scope(model.tensors.infos())
        if args.json:
            emit_json({"source": str(model.path), "format": model.format, "meta": model.meta,
                       "scopes": [g.to_dict() for g in groups]})
        else:
            print(render_groups(model, groups))
    return 0


# --- export ---------------------------------------------------------------------------------

def _export_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="repository name or package folder")
    p.add_argument("--onnx", type=Path, metavar="FILE", help="write an ONNX model (dynamic batch)")
    p.add_argument("--opset", type=int, default=17)
    p.add_argument("--torch-export", type=Path, metavar="FILE.pt2",
                   help="write a torch.export program")
    _json_flag(p)


def _export(args: argparse.Namespace) -> int:
    from tf2torch.api import load
    from tf2torch.packages.export import export_onnx, export_program

    if not (args.onnx or args.torch_export):
        print("tf2torch: error: give --onnx FILE and/or --torch-export FILE", file=sys.stderr)
        return 2
    model = load(args.name)
    reports = []
    if args.onnx:
        reports.append(export_onnx(model, args.onnx, opset=args.opset))
    if args.torch_export:
        reports.append(export_program(model, args.torch_export))
    if args.json:
        emit_json([r.to_dict() for r in reports])
    else:
        for report in reports:
            print(report.summary())
    return 0


# --- demo -----------------------------------------------------------------------------------

def _demo_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--multiplier", type=float, default=1.4)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--workdir", type=Path, help="where to build the stand-in release "
                   "(default: $TF2TORCH_HOME/demo)")


def _demo(args: argparse.Namespace) -> int:
    from tf2torch.cli.demo import run_demo

    return run_demo(args.multiplier, args.size, args.workdir)


COMMANDS: tuple[Command, ...] = (
    Command("demo", "build a stand-in slim release with TensorFlow, convert and verify it",
            "Builds a stand-in for mobilenet_v2_1.4_224.tgz with TensorFlow (seeded random "
            "weights), converts it, verifies it against its .tflite, publishes it and "
            "classifies a sample photo. Needs the [tf] extra.", _demo_args, _demo),
    Command("inspect", "list a source's tensors by scope with shapes and parameter counts",
            "The look-before-porting step: every tensor of the source, grouped by scope.",
            _inspect_args, _inspect),
    Command("convert", "convert a TensorFlow model, verify it and publish a package",
            "Reads the source without TensorFlow, builds the PyTorch module, maps every "
            "weight (failing on anything missing or unexplained), verifies against the "
            "original when a reference is at hand, and writes a package.", _convert_args,
            _convert),
    Command("verify", "compare a conversion with the original on zeros, random and real inputs",
            "Exit status 0 when every output is within tolerance (1e-4 on logits, 1e-5 on "
            "probabilities; graph models 1e-4 · max(1, |output|); quantized .tflite: one "
            "quantization step for the simulate form, the file's own quantization error for "
            "the float form), 1 otherwise. The report's status says which held.",
            _verify_args, _verify),
    Command("predict", predict_command.HELP, predict_command.DESCRIPTION,
            predict_command.predict_args, predict_command.predict),
    Command("export", "export a package to ONNX and/or torch.export, checked after writing",
            "The export is run (onnxruntime / torch) on zeros and a seeded random batch and "
            "compared with the PyTorch module; above 1e-4 nothing is written.", _export_args,
            _export),
    Command("list", "list the packages in the repository", "Packages under "
            "$TF2TORCH_HOME/models (default ~/.cache/tf2torch); a folder that is not a good "
            "package is listed with what is wrong with it.", repository_commands.list_args,
            repository_commands.list_packages),
    Command("show", "print a package's model card", "Prints the package README (or --json "
            "card).", repository_commands.show_args, repository_commands.show),
    Command("remove", "delete a package from the repository", "Deletes the package folder "
            "(a repository entry that is a link: the link only).",
            repository_commands.remove_args, repository_commands.remove),
    Command("compile", compile_command.HELP, compile_command.DESCRIPTION,
            compile_command.compile_args, compile_command.compile_command),
    Command("serve", web_commands.SERVE_HELP, web_commands.SERVE_DESCRIPTION,
            web_commands.serve_args, web_commands.serve),
    Command("site", web_commands.SITE_HELP, web_commands.SITE_DESCRIPTION,
            web_commands.site_args, web_commands.site),
)
