"""What a `.tflite` file's TFLite Support metadata says about its inputs' value range.

`TFLITE_METADATA` is a flatbuffer of its own (tensorflow/lite/schema/metadata_schema.fbs,
identifier "M001"): ModelMetadata → subgraph_metadata[0] → input_tensor_metadata[i], each
with optional `stats` (min/max of the values the model expects) and `process_units`
(NormalizationOptions: the model's input is (raw − mean) / std of an 8-bit image). Read with
the same bounds-checked table reader as the model, no TensorFlow.
"""

from __future__ import annotations

from tf2torch.errors import SourceError
from tf2torch.sources.model import SourceModel
from tf2torch.sources.tflite.reader import read_metadata
from tf2torch.sources.tflite.schema import Table

Range = tuple[float, float]
_NORMALIZATION_OPTIONS = 1  # ProcessUnitOptions union tag
# field ids (a union takes two: type, value)
_SUBGRAPH_METADATA, _INPUT_TENSOR_METADATA = 3, 2
_PROCESS_UNITS, _STATS = 4, 5
_STATS_MAX, _STATS_MIN = 0, 1
_UNIT_TYPE, _UNIT_OPTIONS = 0, 1
_MEAN, _STD = 0, 1


def input_ranges(source: SourceModel, count: int) -> list[Range | None]:
    """Per input of a `.tflite` source, the value range its metadata states (None where it
    states none)."""
    try:
        raw = read_metadata(source.path, source.parsed, "TFLITE_METADATA")
    except SourceError:
        return [None] * count
    buf = memoryview(raw)
    try:
        root = Table(buf, int.from_bytes(raw[:4], "little"))
        subgraphs = root.tables(_SUBGRAPH_METADATA)
        tensors = subgraphs[0].tables(_INPUT_TENSOR_METADATA) if subgraphs else []
        found = [_range(t) for t in tensors]
    except SourceError:  # metadata is advisory: a damaged block only loses the hint
        return [None] * count
    return (found + [None] * count)[:count]


def _range(tensor: Table) -> Range | None:
    stats = tensor.table(_STATS)
    if stats is not None:
        low, high = stats.numbers(_STATS_MIN, "f4"), stats.numbers(_STATS_MAX, "f4")
        if low and high:
            return min(low), max(high)
    for unit in tensor.tables(_PROCESS_UNITS):
        options = unit.table(_UNIT_OPTIONS)
        if unit.scalar(_UNIT_TYPE, "B") == _NORMALIZATION_OPTIONS and options is not None:
            mean, std = options.numbers(_MEAN, "f4"), options.numbers(_STD, "f4")
            if mean and std and all(s > 0 for s in std):
                # an 8-bit image, normalised per channel
                return (min((0.0 - m) / s for m, s in zip(mean, std, strict=False)),
                        max((255.0 - m) / s for m, s in zip(mean, std, strict=False)))
    return None
