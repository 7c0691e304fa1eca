"""The quantized corpus: every keras.applications architecture in dynamic-range and full-int8
forms, and the non-vision models (audio, sequence, masking) in every form TensorFlow's
converter makes of them, verified through the product path (`tf2torch verify`'s).

`python tests/tflite_quant_corpus.py [NAME ...]` verifies them and prints the rows recorded in
docs/tflite_compatibility.md: per model and form, how far the file is from its dequantized
float twin (the quantization error, in output steps for full-integer files), the worst port
difference, the status, and the time.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from keras_models import APPLICATIONS
from tf2torch.conversion.convert import convert_source
from tf2torch.sources import open_source
from tf2torch.verification.checks import graph_reference, verify_graph
from tf2torch.verification.quantized import output_steps
from tf2torch.verification.report import VerificationReport
from tflite_models import cached, keras_application
from tflite_value_models import CORPUS


@dataclass(frozen=True)
class Case:
    """One file of the corpus and the form its port takes."""

    name: str
    build: Callable
    form: str  # the file: "dynamic", "int8", "int8-uint8io", "float32"
    quantized: str = "simulate"  # the port of a full-integer file
    slow: bool = True

    @property
    def id(self) -> str:
        port = f"-{self.quantized}" if self.form.startswith("int8") else ""
        return f"{self.name}-{self.form}{port}"


# Forms the non-vision models are converted to (full-int8 LSTMs keep TFLite's integer LSTM
# kernel: the simulate form refuses it, their float form is verified).
_CORPUS_FORMS = {"float32": ("simulate",), "dynamic": ("simulate",),
                 "int8": ("simulate", "float")}
_REFUSED_SIMULATION = {("lstm_fused", "int8"), ("bilstm_fused", "int8")}
# Files TensorFlow's converter cannot make: full-int8 calibration of a WHILE loop aborts
# the process (TF 2.21).
_UNMADE = {("lstm_loop", "int8"), ("gru_loop", "int8"), ("bilstm_loop", "int8")}
# A few run in CI; the rest with -m slow.
_FAST = {"q_mobilenetv2_96-dynamic", "q_mobilenetv2_96-int8-simulate",
         "q_mobilenetv2_96-int8-float", "audio_stft-float32", "audio_stft-int8-simulate",
         "lstm_fused-float32", "lstm_fused-int8-float", "gru_unrolled-dynamic",
         "gru_loop-float32", "bilstm_unrolled-int8-simulate",
         "masking-float32", "masking-int8-simulate"}


def cases() -> Iterator[Case]:
    """keras.applications as the Keras path builds them (logits, random BN statistics)."""
    for app in APPLICATIONS:
        name = f"q_{app.name.lower()}_{app.size}"
        build = keras_application(app.name, app.size, app.mild)
        yield Case(name, build, "dynamic")
        for quantized in ("simulate", "float"):
            yield Case(name, build, "int8", quantized)
    for name, build in CORPUS.items():
        for form, ports in _CORPUS_FORMS.items():
            if (name, form) in _UNMADE:
                continue
            for quantized in ports:
                if quantized == "simulate" and (name, form) in _REFUSED_SIMULATION:
                    continue
                yield Case(name, build, form, quantized)


def all_cases() -> list[Case]:
    return [Case(c.name, c.build, c.form, c.quantized, slow=c.id not in _FAST)
            for c in cases()]


def verify_case(case: Case) -> tuple[VerificationReport, object]:
    """Convert the case's file in its form and verify it as `tf2torch verify` does."""
    source = open_source(cached(case.name, case.build, case.form))
    conversion = convert_source(source, quantized=case.quantized)
    return verify_graph(conversion, graph_reference(source)), conversion


def quantization_error(report: VerificationReport, conversion) -> tuple[float | None, float | None]:
    """|file − dequantized twin| behind the bound of a float port, worst over the cases, and
    the output step it is measured against (full-integer files; None for float outputs)."""
    rows = [c for c in report.comparisons if c.rule == "quantization"]
    if not rows:
        return None, None
    twin_rows = {(c.case, c.output): c for c in report.comparisons if c.against}
    gaps = [r.bound - (twin_rows[(r.case, r.output)].bound if (r.case, r.output) in twin_rows
                       else 0.0) for r in rows]
    steps = output_steps(conversion.config["graph"])
    step = max((steps[r.output] or 0.0) for r in rows)
    return max(gaps), step or None


def figures(case: Case, report: VerificationReport, conversion, seconds: float) -> dict:
    """What docs/tflite_compatibility.md records of one verified case."""
    on_file = [c for c in report.comparisons if not c.against]
    on_twin = [c for c in report.comparisons if c.against]
    gap, step = quantization_error(report, conversion)
    return {"model": case.name, "file": case.form,
            "port": case.quantized if case.form.startswith("int8") else "float",
            "file_vs_twin": gap, "step": step,
            "max_abs": max(c.max_abs for c in on_file), "bound": max(c.bound for c in on_file),
            "port_vs_twin": max(c.max_abs for c in on_twin) if on_twin else None,
            "status": report.status if report.passed else "FAIL", "seconds": seconds}


def markdown_row(row: dict) -> str:
    gap, step = row["file_vs_twin"], row["step"]
    file_vs_twin = "-" if gap is None else f"{gap:.2e}" + (f" ({gap / step:.1f} steps)"
                                                           if step else "")
    twin = "-" if row["port_vs_twin"] is None else f"{row['port_vs_twin']:.1e}"
    return (f"| {row['model']} | {row['file']} | {row['port']} | {file_vs_twin} "
            f"| {row['max_abs']:.2e} (bound {row['bound']:.1e}) | {twin} | {row['status']} "
            f"| {row['seconds']:.0f} s |")


HEADER = ("| model | file | port | file vs twin | port vs file | port vs twin | status | time |\n"
          "| --- | --- | --- | --- | --- | --- | --- | --- |")


def row(case: Case) -> str:
    start = time.perf_counter()
    report, conversion = verify_case(case)
    return markdown_row(figures(case, report, conversion, time.perf_counter() - start))


def main(names: list[str]) -> None:
    print(HEADER)
    for case in all_cases():
        if names and case.name not in names and case.id not in names:
            continue
        try:
            print(row(case), flush=True)
        except Exception as exc:  # keep going: one failure must not hide the others
            print(f"| {case.name} | {case.form} | {case.quantized} | ERROR: "
                  f"{str(exc).splitlines()[0][:150]} |", flush=True)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main(sys.argv[1:])
