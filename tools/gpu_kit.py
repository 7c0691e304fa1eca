"""Record a GPU kit: graph conversions and the original framework's outputs, for a machine
with a GPU and no TensorFlow (tools/gpu_check.py runs it there).

    TF2TORCH_GPU_KIT=.gpu/kit .venv/bin/python -m pytest -p tools.gpu_kit -q -m "not slow" \\
        tests/test_keras_layers.py tests/test_tflite_ops.py tests/test_tf_graph_ops.py

A pytest plugin: it wraps `compare_runs` in the tests' comparison helpers (Keras, TensorFlow
graphs, TFLite). Each comparison that passes leaves one entry: the conversion's IR and
weights (what a package stores), the arguments the converted module received, its outputs on
this CPU, and the original's outputs for the same inputs. Entries over `TF2TORCH_GPU_KIT_MB`
(default 20) of weights are skipped, so that a kit travels to the GPU machine.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

# the tests import some helpers both as `tests.x` and as `x` (tests/ is on sys.path)
HELPERS = ("tests.keras_models", "tests.tf_graph_models", "tests.tflite_models", "keras_models",
           "tf_graph_models", "tflite_models")
_LAST: list[Any] = [None]  # the GraphConversion made last: the one a comparison then runs


def pytest_configure(config: pytest.Config) -> None:
    folder = os.environ.get("TF2TORCH_GPU_KIT")
    if not folder:
        raise pytest.UsageError("tools.gpu_kit: set TF2TORCH_GPU_KIT to the kit's folder")
    import importlib

    from tf2torch.conversion.graph.convert import GraphConversion

    init = GraphConversion.__init__

    def remembered(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        _LAST[0] = self

    GraphConversion.__init__ = remembered
    for name in HELPERS:
        module = importlib.import_module(name)
        module.compare_runs = _recording(module.compare_runs, Path(folder))


def _recording(original: Any, folder: Path) -> Any:
    def compare_runs(run_net: Any, run_ref: Any, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        conversion, _LAST[0] = _LAST[0], None
        if conversion is None:
            return original(run_net, run_ref, inputs, *args, **kwargs)
        calls: list[tuple[Any, Any]] = []
        refs: list[dict[str, np.ndarray]] = []

        def hook(_module: Any, call_args: Any, out: Any) -> None:
            calls.append((call_args, out))

        def ref(batch: Any) -> dict[str, np.ndarray]:
            out = run_ref(batch)
            refs.append(out)
            return out

        handle = conversion.net.register_forward_hook(hook)
        try:
            report = original(run_net, ref, inputs, *args, **kwargs)
        finally:
            handle.remove()
        if report.passed and len(calls) == len(refs) == len(inputs):
            _write_entry(folder, conversion, list(inputs), calls, refs)
        return report

    return compare_runs


def _write_entry(folder: Path, conversion: Any, cases: list[str], calls: list, refs: list) -> None:
    weights = {k: v.detach().contiguous().clone() for k, v in conversion.net.state_dict().items()}
    size_mb = sum(v.numel() * v.element_size() for v in weights.values()) / 2**20
    if size_mb > float(os.environ.get("TF2TORCH_GPU_KIT_MB", "20")):
        return
    test = os.environ.get("PYTEST_CURRENT_TEST", "unknown").split(" ")[0]
    entry = folder / f"{len(list(folder.glob('*'))) if folder.exists() else 0:04d}"
    entry.mkdir(parents=True)
    arrays: dict[str, torch.Tensor] = {}
    meta_cases = []
    for i, (case, (args, out), ref) in enumerate(zip(cases, calls, refs, strict=True)):
        outs = out if isinstance(out, tuple) else (out,)
        for j, a in enumerate(args):
            arrays[f"{i}.arg{j}"] = a.detach().contiguous().clone()
        for j, o in enumerate(outs):
            arrays[f"{i}.cpu{j}"] = o.detach().contiguous().clone()
        for name, r in ref.items():
            arrays[f"{i}.ref.{name}"] = torch.from_numpy(np.ascontiguousarray(r)).clone()
        meta_cases.append({"case": case, "args": len(args), "outputs": len(outs),
                           "refs": list(ref)})
    save_file(weights, str(entry / "weights.safetensors"))
    save_file(arrays, str(entry / "cases.safetensors"))
    (entry / "entry.json").write_text(json.dumps({
        "test": test, "layout": conversion.layout, "outputs": list(conversion.outputs),
        "cases": meta_cases, "ir": conversion.ir_json}))
