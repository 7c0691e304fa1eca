"""`.tflite` flatbuffers: schema, weights (fp16/sparse folded), subgraph → graph IR, metadata."""

from tf2torch.sources.tflite.reader import read_metadata, read_tflite, read_tflite_model

__all__ = ["read_metadata", "read_tflite", "read_tflite_model"]
