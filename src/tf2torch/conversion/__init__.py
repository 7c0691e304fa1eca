"""Conversion: a `SourceModel` becomes a PyTorch module.

The zoo path (`zoo/`: hand-written architectures from block tables, weights mapped by rule
tables) and the graph path (`graph/`: registry of op converters per format, lowering of the
graph IR to `torch.fx`, runtime modules, code generation). `convert.py` routes between them.
"""

from tf2torch.conversion.convert import Conversion, convert_source, convert_zoo

__all__ = ["Conversion", "convert_source", "convert_zoo"]
