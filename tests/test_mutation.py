"""The mutation checks themselves: they find a weak test, and the full run finds none.

`tests/mutation.py` is the plugin; `tools/mutate.py` the full run and docs/converters.md.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tf2torch.conversion.graph.converters import default_registry

REPO = Path(__file__).resolve().parents[1]

WEAK_TEST = '''
import numpy as np
import torch
import tensorflow as tf
from tf2torch.conversion.graph import convert_graph
from tf2torch.references.tflite import tflite_runner
from tf2torch.sources.tflite.reader import read_tflite


def test_conv_with_default_zero_bias(tmp_path):
    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential([tf.keras.Input((6, 6, 3)), tf.keras.layers.Conv2D(4, 3)])
    path = tmp_path / "conv.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    net = convert_graph(read_tflite(path)).net
    x = np.random.default_rng(0).uniform(-1, 1, (2, 6, 6, 3)).astype(np.float32)
    with torch.no_grad():
        ours = net(torch.from_numpy(x)).numpy()
    ref = list(tflite_runner(path)(x).values())[0]
    assert np.abs(ours - ref).max() <= 1e-5
'''


def _mutation_run(tmp_path: Path, source: str, *options: str) -> tuple[subprocess.CompletedProcess,
                                                                       dict]:
    """pytest with the mutation plugin on one test file holding `source`; its report."""
    test_file = tmp_path / "test_given.py"
    test_file.write_text(source)
    report = tmp_path / "report.json"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c",
         str(REPO / "pyproject.toml"), "--rootdir", str(REPO), str(test_file), "--mutate",
         *options, "--mutate-report", str(report)],
        cwd=REPO, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO / "tests")})
    return done, json.loads(report.read_text())


def test_a_weak_test_lets_a_mutant_survive(tmp_path) -> None:
    """A conv left with Keras's zero bias cannot notice a bias mistake: the run must say
    `negate:conv.bias` survived, name the converter, and fail."""
    done, found = _mutation_run(tmp_path, WEAK_TEST)
    assert done.returncode != 0, done.stdout
    survivors = found["survivors"]
    assert survivors == {"tflite:CONV_2D:1": ["negate:conv.bias"]}, done.stdout
    assert "SURVIVED: negate:conv.bias" in done.stdout


LOOKUP_ONLY_TEST = '''
from tf2torch.conversion.graph.converters import default_registry


def test_every_converter_has_a_name():
    for key in default_registry().keys():
        assert default_registry().get(key).__name__
'''


def test_looking_a_converter_up_is_not_exercising_it(tmp_path) -> None:
    """Only a converter a test calls (lowers a node through) counts as exercised: a test that
    looks every key up, to check names, must leave all of them unexercised."""
    done, found = _mutation_run(tmp_path, LOOKUP_ONLY_TEST, "--mutate-require-all")
    assert done.returncode != 0, done.stdout
    assert found["converters"] == {}
    assert len(found["unexercised"]) == len(default_registry().keys())


def test_converter_table_lists_exactly_the_registry() -> None:
    """docs/converters.md (made by tools/mutate.py) cannot drift from the registry."""
    doc = (REPO / "docs" / "converters.md").read_text(encoding="utf-8")
    listed: set[tuple[str, str]] = set()
    fmt = None
    for line in doc.splitlines():
        heading = re.match(r"## (\w+) \(", line)
        if heading:
            fmt = heading.group(1)
        elif fmt and line.startswith("| ") and not line.startswith("| op "):
            listed.add((fmt, line.split("|")[1].strip()))
    keys = default_registry().keys()  # a Registry, not a dict
    registered = {(f, op) for f, op, _ in keys}
    assert listed == registered, {"not in the doc": sorted(registered - listed),
                                  "not registered": sorted(listed - registered)}
    assert "untested" not in doc
    assert "| 0/0 |" not in doc  # every exercised converter has at least one mutant


@pytest.mark.slow
def test_no_mutant_of_any_converter_survives_the_suite(tmp_path) -> None:
    """The full run (tools/mutate.py): every converter exercised, every mutant killed."""
    report = tmp_path / "report.json"
    done = subprocess.run([sys.executable, str(REPO / "tools" / "mutate.py"), "--report",
                           str(report)], cwd=REPO, capture_output=True, text=True)
    result = json.loads(report.read_text())
    assert done.returncode == 0 and not result["survivors"] and not result["unexercised"], (
        result["survivors"], result["unexercised"], done.stdout[-3000:])
