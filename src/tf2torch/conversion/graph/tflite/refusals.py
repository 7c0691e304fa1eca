"""The TFLite builtin ops tf2torch refuses, each with the reason the error names.
"""

from __future__ import annotations

_CONTROL_FLOW = "control flow over subgraphs (WHILE loops with a constant trip count are unrolled)"
_VARIABLES = "resource variables: a stateful model"
_TEXT = "hashing and string tables of text models"
_RANDOM = "random sampling: no deterministic reference to verify against"
_OLD_RNN = ("recurrent kernels TensorFlow's converter no longer emits (its LSTM is "
            "UNIDIRECTIONAL_SEQUENCE_LSTM)")
_DYNAMIC = "output size depends on the data"
_NOT_YET = "not converted yet: no model of the corpus uses it"

REFUSED: dict[str, str] = {
    "IF": _CONTROL_FLOW, "CALL": _CONTROL_FLOW,
    "CALL_ONCE": "runs an initialisation subgraph (resource variables)",
    "VAR_HANDLE": _VARIABLES, "READ_VARIABLE": _VARIABLES, "ASSIGN_VARIABLE": _VARIABLES,
    "HASHTABLE": _TEXT, "HASHTABLE_FIND": _TEXT, "HASHTABLE_IMPORT": _TEXT,
    "HASHTABLE_SIZE": _TEXT, "HASHTABLE_LOOKUP": _TEXT, "LSH_PROJECTION": _TEXT,
    "SKIP_GRAM": _TEXT, "CONCAT_EMBEDDINGS": _TEXT, "EMBEDDING_LOOKUP_SPARSE": _TEXT,
    "RANDOM_STANDARD_NORMAL": _RANDOM, "RANDOM_UNIFORM": _RANDOM, "MULTINOMIAL": _RANDOM,
    "LSTM": _OLD_RNN, "RNN": _OLD_RNN, "SVDF": _OLD_RNN,
    "UNIDIRECTIONAL_SEQUENCE_RNN": _OLD_RNN, "BIDIRECTIONAL_SEQUENCE_RNN": _OLD_RNN,
    "NON_MAX_SUPPRESSION_V4": _DYNAMIC, "NON_MAX_SUPPRESSION_V5": _DYNAMIC,
    "UNIQUE": _DYNAMIC,
    "CUSTOM": "not an op: custom ops convert by name (MediaPipe's, see below)",
    "DELEGATE": "not an op: a delegate's placeholder",
    "PLACEHOLDER_FOR_GREATER_OP_CODES": "not an op: marks codes above 127",
    "DENSIFY": "folded at read time on constants; a computed sparse tensor is not converted",
    "FAKE_QUANT": "quantization-aware-training op TensorFlow's converter folds away",
    **{op: _NOT_YET for op in (
        "BITCAST", "BITWISE_XOR", "CONV_3D", "CONV_3D_TRANSPOSE", "RANK", "REVERSE_SEQUENCE",
        "RIGHT_SHIFT", "SPARSE_TO_DENSE")},
}
