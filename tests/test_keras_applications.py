"""Every keras.applications architecture converts and matches Keras (random weights with
non-trivial BN statistics, logits out). A few small ones run by default; `-m slow` runs all.
Results are recorded in docs/keras_compatibility.md."""

from __future__ import annotations

import pytest
from tests.keras_models import APPLICATIONS, build_application, compare_with_keras

pytest.importorskip("keras")


@pytest.fixture(scope="session")
def app_folder(tmp_path_factory):
    return tmp_path_factory.mktemp("keras_applications")


@pytest.mark.parametrize(
    "app",
    [pytest.param(a, id=a.name, marks=[pytest.mark.slow] if a.slow else []) for a in APPLICATIONS],
)
def test_application_matches_keras(app, app_folder):
    path = build_application(app, app_folder)
    report = compare_with_keras(path, 0.0, 255.0)
    assert report.passed, report.table()


def test_application_from_legacy_h5(app_folder):
    """The same architecture saved as a Keras 3 legacy .h5 file."""
    path = build_application(APPLICATIONS[0], app_folder, suffix=".h5")
    report = compare_with_keras(path, 0.0, 255.0)
    assert report.passed, report.table()
