"""`packing.py` says which convolution weights oneDNN would pack differently at another
thread count; checked against what a compiled program really does: run at each count with
`ONEDNN_VERBOSE`, the weights it reorders on every call are exactly the ones predicted."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from tf2torch.packages.packing import repacked_by_thread_count

COUNTS = (1, 2)


class Layers(nn.Module):
    """Shapes chosen so that, on this project's machines, one weight is blocked one way at 1
    thread and another at 2 and the others the same way: under AVX-512 the 1×1 256→1024 at
    14×14 (`Acdb48a` against `Acdb64a`: BENCHMARKS.md), under AVX2 the 1×1 64→256."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.widen = nn.Conv2d(64, 256, 3, padding=1)
        self.narrow = nn.Conv2d(256, 64, 3, padding=1)
        self.expand = nn.Conv2d(64, 256, 1)
        self.project = nn.Conv2d(256, 1024, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(self.expand(self.narrow(self.widen(x))))


SHAPES = {"widen": "256x64x3x3", "narrow": "64x256x3x3", "expand": "256x64x1x1",
          "project": "1024x256x1x1"}

RUN = """
import sys, torch
torch.set_num_threads(int(sys.argv[2]))
from tf2torch.packages.aoti import Library
program = Library(sys.argv[1])
x = torch.randn(1, 64, 14, 14)
for _ in range(3):
    program(x)
"""


def _reordered(program: Path, threads: int) -> set[str]:
    """The layers whose weight the program reorders when run at `threads`."""
    env = {**os.environ, "ONEDNN_VERBOSE": "1"}
    out = subprocess.run([sys.executable, "-c", RUN, str(program), str(threads)], env=env,
                         capture_output=True, text=True, check=True).stdout
    dims = {m.group(1) for line in out.splitlines() if ",exec,cpu,reorder," in line
            for m in [re.search(r",(\d+x\d+x\d+x\d+),", line)] if m}
    return {name for name, shape in SHAPES.items() if shape in dims}


@pytest.fixture(scope="module")
def program(tmp_path_factory) -> tuple[Path, dict[int, list[str]]]:
    """The layers compiled like a single-image program (frozen weights, AOTInductor) at 2
    threads, and what `repacked_by_thread_count` predicts for them."""
    from torch._inductor import aot_compile
    from torch._inductor.package import package_aoti

    own = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with torch.no_grad():
            exported = torch.export.export(Layers().eval(), (torch.zeros(1, 64, 14, 14),))
            predicted = repacked_by_thread_count(exported.module(), COUNTS)
            path = tmp_path_factory.mktemp("packing") / "layers.pt2"
            args, kwargs = exported.example_inputs
            package_aoti(str(path), aot_compile(
                exported.module(), args, kwargs,
                options={"freezing": True, "cpp.dynamic_threads": True,
                         "aot_inductor.package": True}))
    finally:
        torch.set_num_threads(own)
    return path, predicted


@pytest.mark.parametrize("threads", COUNTS)
def test_predicted_repacking_is_what_the_compiled_program_does(program, threads) -> None:
    path, predicted = program
    assert _reordered(path, threads) == set(predicted.get(threads, []))


def test_the_prediction_is_not_empty_on_this_machine(program) -> None:
    """Else the comparison above would pass with a check that finds nothing."""
    _, predicted = program
    assert 2 not in predicted  # compiled at 2: nothing to repack there
    assert predicted.get(1), predicted


def test_compile_names_the_thread_counts_and_layers(monkeypatch, capsys) -> None:
    import tf2torch.api
    from tf2torch.cli import main
    from tf2torch.packages.compiled import Manifest, this_machine

    manifest = Manifest(this_machine(), "weights", "program", "seal", [[14, 14, 64]],
                        (1, 1024), "the original's outputs", None, 1.0, "2026-11-29",
                        one_image_repacked={"1": ["net.project"]})
    monkeypatch.setattr(tf2torch.api, "compile_package", lambda name, plan=None: manifest)
    assert main(["compile", "layers"]) == 0
    out = capsys.readouterr().out
    assert "at 1 thread(s), oneDNN would reorder 1 convolution weight(s)" in out
    assert "(net.project)" in out and "TF2TORCH_THREADS=1 tf2torch compile layers" in out


def test_with_tf2torch_threads_the_compile_packs_for_that_count(monkeypatch) -> None:
    """The advice above works: compiled under `fixed_threads` (as `compiled._compile` is),
    nothing is left to repack at the count the user fixed."""
    from tf2torch.packages.packing import repacked_elsewhere
    from tf2torch.util.threads import ThreadGovernor, fixed_threads

    monkeypatch.delenv("TF2TORCH_THREADS", raising=False)
    assert ThreadGovernor().usable >= 2  # this project's machines: 2 CPUs
    exported = torch.export.export(Layers().eval(), (torch.zeros(1, 64, 14, 14),)).module()
    with fixed_threads(2):  # which layer depends on oneDNN's kernels for this CPU
        assert repacked_elsewhere(exported) in ({"1": ["project"]}, {"1": ["expand"]})
    monkeypatch.setenv("TF2TORCH_THREADS", "1")
    with fixed_threads() as threads:
        assert threads == 1
        assert repacked_elsewhere(exported) == {}
