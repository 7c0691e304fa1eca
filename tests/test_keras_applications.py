"""Every keras.applications architecture converts and matches Keras (random weights with
non-trivial BN statistics, logits out). A few small ones run by default; `-m slow` runs all.
Results are recorded in docs/keras_compatibility.md."""

from __future__ import annotations

import pytest
from tests.keras_models import (
    APPLICATIONS,
    build_application,
    compare_with_keras,
    randomize_statistics,
)

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


# Keras 3 has no RegNet; tf.keras (Keras 2, the `tf_keras` package) has all 24, saved here
# as Keras 2 .h5 files. Two small ones run by default, the rest with `-m slow`.
REGNETS = [f"RegNet{kind}{size}" for size in ("002", "004", "006", "008", "016", "032", "040",
                                              "064", "080", "120", "160", "320")
           for kind in "XY"]


@pytest.mark.parametrize("name", [
    pytest.param(n, marks=[] if n.endswith("002") else [pytest.mark.slow]) for n in REGNETS])
def test_regnet_from_keras2_h5(name, app_folder):
    tf_keras = pytest.importorskip("tf_keras")
    path = app_folder / f"{name}_64.h5"
    tf_keras.utils.set_random_seed(0)
    model = getattr(tf_keras.applications, name)(weights=None, input_shape=(64, 64, 3),
                                                 classifier_activation=None)
    randomize_statistics(model)
    model.save(path)
    tf_keras.backend.clear_session()
    report = compare_with_keras(path, 0.0, 255.0)
    assert report.passed, report.table()
