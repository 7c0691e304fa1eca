"""tf2torch: pretrained TensorFlow models as verified PyTorch packages.

    import tf2torch
    result = tf2torch.convert("mobilenet_v2_1.4_224.tgz")   # verify + publish
    model = tf2torch.load("mobilenet_v2_1.4_224")
    model.classify("photo.jpg")
    tf2torch.predict_dataset("mobilenet_v2_1.4_224", ["photos/"], "labels.parquet")  # on Ray

The API is imported on first use, so `tf2torch --help` answers without loading torch.
"""

from __future__ import annotations

from typing import Any

from tf2torch.util.threads import prepare_openmp_environment

# Imported before torch, tf2torch bounds how long OpenMP's idle threads spin (libgomp reads
# it once, when torch loads; not where the user set OMP_WAIT_POLICY or GOMP_SPINCOUNT):
# see tf2torch.util.threads.
prepare_openmp_environment()

__all__ = ["ConvertResult", "Tf2TorchError", "convert", "load", "predict_dataset", "verify",
           "version"]


def __getattr__(name: str) -> Any:
    if name == "Tf2TorchError":
        from tf2torch.errors import Tf2TorchError

        return Tf2TorchError
    if name in __all__ or name == "__version__":
        from tf2torch import api

        return api.version() if name == "__version__" else getattr(api, name)
    raise AttributeError(f"module 'tf2torch' has no attribute {name!r}")
