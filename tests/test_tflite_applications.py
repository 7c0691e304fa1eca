"""The .tflite forms of keras.applications (float32 and float16 weights) against TFLite."""

from __future__ import annotations

import pytest

pytest.importorskip("tensorflow")

from tflite_models import APPLICATIONS, TfliteApp, cached, verify_tflite


def _cases(fp16: bool) -> list:
    return [pytest.param(app, id=app.name, marks=[pytest.mark.slow] if app.slow or fp16 else [])
            for app in APPLICATIONS]


@pytest.mark.parametrize("app", _cases(fp16=False))
def test_application_float32(app: TfliteApp) -> None:
    report = verify_tflite(cached(app.name, app.build()))
    assert report.passed, report.table()


@pytest.mark.parametrize("app", _cases(fp16=True))
def test_application_float16_weights(app: TfliteApp) -> None:
    report = verify_tflite(cached(app.name, app.build(), "float16"))
    assert report.passed, report.table()


def test_mobilenet_v2_nchw() -> None:
    """The same file with channels-first input and output (reuses the float32 fixture)."""
    app = APPLICATIONS[0]
    report = verify_tflite(cached(app.name, app.build()), layout="nchw")
    assert report.passed, report.table()
