"""Shared fixtures: stand-in TF-slim releases written by TensorFlow, cached between runs.

The cache lives in `<repo>/.cache/test-fixtures` (or `$TF2TORCH_TEST_CACHE`), keyed by the
release's parameters and `FIXTURE_VERSION`; everything is seeded, so a cached file equals a
fresh one.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch  # noqa: F401  - torch before tensorflow in one process, always

from web_repository import web_repo  # noqa: F401 - the web tests' repository (session-wide)

FIXTURE_VERSION = "4"
REPO = Path(__file__).resolve().parents[1]


def fixture_cache() -> Path:
    root = Path(os.environ.get("TF2TORCH_TEST_CACHE") or REPO / ".cache" / "test-fixtures")
    return root / f"v{FIXTURE_VERSION}"


@pytest.fixture(autouse=True)
def _isolated_repository(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Every test gets an empty model repository, never the user's."""
    monkeypatch.setenv("TF2TORCH_HOME", str(tmp_path_factory.mktemp("tf2torch-home")))


@pytest.fixture(scope="session")
def standin():
    """Factory: `standin(multiplier, size, **options)` → `StandIn`, built once and cached."""
    pytest.importorskip("tensorflow")
    from tf2torch.references import standin as standin_module

    def make(multiplier: float, size: int, **options) -> standin_module.StandIn:
        tag = "-".join(f"{k}={v}" for k, v in sorted(options.items())) or "plain"
        folder = fixture_cache() / f"{standin_module.release_name(multiplier, size)}-{tag}"
        done = folder / "DONE"
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)
            standin_module.make_standin_release(folder, multiplier, size, **options)
            done.write_text("ok")
        name = standin_module.release_name(multiplier, size)
        inner = folder / name
        tflite = inner / f"{name}.tflite"
        archive = folder / f"{name}.tgz"
        return standin_module.StandIn(
            prefix=inner / f"{name}.ckpt", archive=archive if archive.exists() else None,
            tflite=tflite if tflite.exists() else None, tests_h5=inner / "tests.h5",
        )

    return make
