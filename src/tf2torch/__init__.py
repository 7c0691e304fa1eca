"""tf2torch: pretrained TensorFlow models as verified PyTorch packages.

    import tf2torch
    result = tf2torch.convert("mobilenet_v2_1.4_224.tgz")   # verify + publish
    model = tf2torch.load("mobilenet_v2_1.4_224")
    model.classify("photo.jpg")
"""

from tf2torch.api import ConvertResult, convert, load, verify, version
from tf2torch.errors import Tf2TorchError

__all__ = ["ConvertResult", "Tf2TorchError", "convert", "load", "verify", "version"]
__version__ = version()
