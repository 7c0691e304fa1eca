"""The .tflite forms of keras.applications (float32 and float16 weights) against TFLite."""

from __future__ import annotations

import pytest

pytest.importorskip("tensorflow")

from tflite_models import APPLICATIONS, application, cached, verify_tflite


def _cases(fp16: bool) -> list:
    return [pytest.param(name, constructor, size, id=name,
                         marks=[pytest.mark.slow] if slow or fp16 else [])
            for name, constructor, size, slow in APPLICATIONS]


@pytest.mark.parametrize(("name", "constructor", "size"), _cases(fp16=False))
def test_application_float32(name: str, constructor: str, size: int) -> None:
    report = verify_tflite(cached(name, application(constructor, size)))
    assert report.passed, report.table()


@pytest.mark.parametrize(("name", "constructor", "size"), _cases(fp16=True))
def test_application_float16_weights(name: str, constructor: str, size: int) -> None:
    report = verify_tflite(cached(name, application(constructor, size), fp16=True))
    assert report.passed, report.table()


def test_mobilenet_v2_nchw() -> None:
    """The same file with channels-first input and output (reuses the float32 fixture)."""
    name, constructor, size, _ = APPLICATIONS[0]
    report = verify_tflite(cached(name, application(constructor, size)), layout="nchw")
    assert report.passed, report.table()
