"""Keras `.keras` archives and `.h5` model files: config → graph IR, weights read in place."""

from tf2torch.sources.keras.reader import read_keras

__all__ = ["read_keras"]
