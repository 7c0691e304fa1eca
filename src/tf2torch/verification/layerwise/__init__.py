"""Per-layer comparison of a port with its original: where does it first go wrong, and why."""

from tf2torch.references.layers import (
    FrozenGraphLayers,
    KerasLayers,
    LayerReference,
    TfliteLayers,
    standin_naming,
)
from tf2torch.verification.layerwise.compare import compare_layers, measure
from tf2torch.verification.layerwise.report import LayerReport, LayerRow, diagnose
from tf2torch.verification.layerwise.taps import Tap, stream_net, zoo_taps

__all__ = [
    "FrozenGraphLayers", "KerasLayers", "LayerReference", "LayerReport", "LayerRow", "Tap", "TfliteLayers",
    "compare_layers", "diagnose", "measure", "standin_naming", "stream_net", "zoo_taps",
]
