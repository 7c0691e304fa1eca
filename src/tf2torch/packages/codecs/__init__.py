"""Image encoder (pixels → input tensor) and label decoder (scores → named classes).

Both are frozen dataclasses described entirely by data, so a model card stores them as JSON
(`to_dict` / `from_dict`) and a package loads with no code from its author. `images` decodes
files, `resample` holds TensorFlow's resize kernels in numpy, `labels` the shipped label sets.
"""

from tf2torch.packages.codecs.annotate import annotate, draw_predictions
from tf2torch.packages.codecs.decoder import Decoder, Prediction
from tf2torch.packages.codecs.encoder import IMAGENET_MEAN, IMAGENET_STD, Encoder
from tf2torch.packages.codecs.images import ImageInput, load_rgb
from tf2torch.packages.codecs.labels import load_label_set

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "Decoder", "Encoder", "ImageInput", "Prediction",
           "annotate", "draw_predictions", "load_label_set", "load_rgb"]
