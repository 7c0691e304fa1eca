"""Verification: run the port and its reference on the same inputs and compare.

`report.py` compares arrays and holds the `VerificationReport`; `checks.py` picks the reference
for a `Conversion` and makes the inputs; `layerwise/` compares every intermediate layer.
"""
