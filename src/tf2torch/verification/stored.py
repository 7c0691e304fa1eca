"""The original's own outputs, kept so a later form of the port can be checked against them.

`convert` verifies the port against the original (TensorFlow, Keras, TFLite) and records, per
input case, the inputs the original saw and what it answered. A package keeps them
(`reference_outputs.safetensors`), so `tf2torch compile NAME` can verify its compiled form
against the original itself, long after the source file and TensorFlow are gone. Stored as
safetensors: plain arrays and a JSON header, nothing that could run.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save

from tf2torch.errors import PackageError
from tf2torch.verification.report import (
    CLASSIFIER_TOLERANCES,
    GRAPH_TOLERANCE,
    Tolerance,
    VerificationReport,
    compare_arrays,
)

FILE_NAME = "reference_outputs.safetensors"  # in a package, beside its weights

# What a port is run as: input arrays (source layout, one per model input) → named outputs.
PortRun = Callable[[list[np.ndarray]], Mapping[str, np.ndarray]]


@dataclass(frozen=True)
class StoredCase:
    """One input case: what the original was given and what it answered."""

    name: str
    inputs: tuple[np.ndarray, ...]
    outputs: dict[str, np.ndarray]


class Recorder:
    """Wraps a reference's run function and keeps every call's inputs and outputs."""

    def __init__(self, run: Callable) -> None:
        self._run = run
        self.calls: list[tuple[tuple[np.ndarray, ...], dict[str, np.ndarray]]] = []
        self.seconds = 0.0  # spent in the reference's calls

    def __call__(self, batch):
        start = time.perf_counter()
        out = self._run(batch)
        self.seconds += time.perf_counter() - start
        arrays = tuple(batch) if isinstance(batch, list | tuple) else (batch,)
        self.calls.append((tuple(np.asarray(a) for a in arrays),
                           {k: np.asarray(v) for k, v in out.items()}))
        return out

    def cases(self, names: Sequence[str]) -> list[StoredCase]:
        """The calls, named by the report's cases (in the order they ran)."""
        if len(names) != len(self.calls):
            raise ValueError(f"{len(self.calls)} recorded calls for {len(names)} cases")
        return [StoredCase(n, i, o) for n, (i, o) in zip(names, self.calls, strict=True)]


def encode_cases(cases: Sequence[StoredCase], kind: str, reference: str) -> bytes:
    """The cases as a safetensors file's bytes. `kind` is "zoo" (one NHWC input; logits
    and probabilities) or "graph" (the source's inputs and outputs, channels-last)."""
    tensors, header = {}, []
    for index, case in enumerate(cases):
        for j, array in enumerate(case.inputs):
            tensors[f"{index}/input/{j}"] = np.ascontiguousarray(array, np.float32)
        for name, array in case.outputs.items():
            tensors[f"{index}/output/{name}"] = np.ascontiguousarray(array)
        header.append({"name": case.name, "inputs": len(case.inputs),
                       "outputs": list(case.outputs)})
    return save(tensors, metadata={"kind": kind, "reference": reference,
                                   "cases": json.dumps(header)})


def load_cases(path: Path) -> tuple[list[StoredCase], str, str]:
    """The stored cases, the kind ("zoo"/"graph") and the reference's description."""
    try:
        from safetensors import safe_open

        with safe_open(str(path), "np") as f:
            meta = f.metadata() or {}
        tensors = load_file(str(path))
        header = json.loads(meta["cases"])
        cases = [StoredCase(c["name"],
                            tuple(tensors[f"{i}/input/{j}"] for j in range(c["inputs"])),
                            {name: tensors[f"{i}/output/{name}"] for name in c["outputs"]})
                 for i, c in enumerate(header)]
        return cases, meta["kind"], meta["reference"]
    except (SafetensorError, OSError, KeyError, ValueError) as exc:
        raise PackageError(f"{path}: unreadable stored reference outputs ({exc})") from exc


def verify_stored(run_port: PortRun, cases: Sequence[StoredCase], kind: str, reference: str,
                  spreads: Mapping[tuple[str, str], float] | None = None,
                  ) -> VerificationReport:
    """Compare a port with the original's stored outputs, by the tolerances `convert` used.

    `spreads` carries over, per (case, output), how far the original's own runtimes were
    apart where `convert` measured it, so an output verified as within that spread is
    judged the same way here.
    """
    report = VerificationReport(f"{reference} (stored outputs)")
    for case in cases:
        out = run_port(list(case.inputs))
        for name, ref in case.outputs.items():
            if name not in out:
                raise PackageError(f"the port gives no output {name!r} for case {case.name}")
            axis = -1 if name in ("logits", "probabilities") else None
            found = compare_arrays(case.name, name, out[name], ref, _tolerance(kind, name), axis)
            spread = (spreads or {}).get((case.name, name))
            report.comparisons.append(found if found.within_bound or spread is None
                                      else replace(found, reference_spread=spread))
    return report


def _tolerance(kind: str, output: str) -> Tolerance:
    return CLASSIFIER_TOLERANCES.get(output, GRAPH_TOLERANCE) if kind == "zoo" \
        else GRAPH_TOLERANCE


def spreads_of(verification: Mapping | None) -> dict[tuple[str, str], float]:
    """Per (case, output), the reference spread a card's verification report recorded."""
    if not verification:
        return {}
    return {(c["case"], c["output"]): c["reference_spread"]
            for c in verification.get("comparisons", []) if c.get("reference_spread") is not None}
