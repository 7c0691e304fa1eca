"""TFLite enums and builtin-options table layouts, from `tensorflow/lite/schema/schema.fbs`."""

from __future__ import annotations

from typing import Any

# BuiltinOperator codes 0..161, in code order (later codes are StableHLO ops, not converted).
_BUILTIN_NAMES = (
    "ADD", "AVERAGE_POOL_2D", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D",
    "DEPTH_TO_SPACE", "DEQUANTIZE", "EMBEDDING_LOOKUP", "FLOOR", "FULLY_CONNECTED",
    "HASHTABLE_LOOKUP", "L2_NORMALIZATION", "L2_POOL_2D", "LOCAL_RESPONSE_NORMALIZATION",
    "LOGISTIC", "LSH_PROJECTION", "LSTM", "MAX_POOL_2D", "MUL", "RELU", "RELU_N1_TO_1",
    "RELU6", "RESHAPE", "RESIZE_BILINEAR", "RNN", "SOFTMAX", "SPACE_TO_DEPTH", "SVDF", "TANH",
    "CONCAT_EMBEDDINGS", "SKIP_GRAM", "CALL", "CUSTOM", "EMBEDDING_LOOKUP_SPARSE", "PAD",
    "UNIDIRECTIONAL_SEQUENCE_RNN", "GATHER", "BATCH_TO_SPACE_ND", "SPACE_TO_BATCH_ND",
    "TRANSPOSE", "MEAN", "SUB", "DIV", "SQUEEZE", "UNIDIRECTIONAL_SEQUENCE_LSTM",
    "STRIDED_SLICE", "BIDIRECTIONAL_SEQUENCE_RNN", "EXP", "TOPK_V2", "SPLIT", "LOG_SOFTMAX",
    "DELEGATE", "BIDIRECTIONAL_SEQUENCE_LSTM", "CAST", "PRELU", "MAXIMUM", "ARG_MAX",
    "MINIMUM", "LESS", "NEG", "PADV2", "GREATER", "GREATER_EQUAL", "LESS_EQUAL", "SELECT",
    "SLICE", "SIN", "TRANSPOSE_CONV", "SPARSE_TO_DENSE", "TILE", "EXPAND_DIMS", "EQUAL",
    "NOT_EQUAL", "LOG", "SUM", "SQRT", "RSQRT", "SHAPE", "POW", "ARG_MIN", "FAKE_QUANT",
    "REDUCE_PROD", "REDUCE_MAX", "PACK", "LOGICAL_OR", "ONE_HOT", "LOGICAL_AND", "LOGICAL_NOT",
    "UNPACK", "REDUCE_MIN", "FLOOR_DIV", "REDUCE_ANY", "SQUARE", "ZEROS_LIKE", "FILL",
    "FLOOR_MOD", "RANGE", "RESIZE_NEAREST_NEIGHBOR", "LEAKY_RELU", "SQUARED_DIFFERENCE",
    "MIRROR_PAD", "ABS", "SPLIT_V", "UNIQUE", "CEIL", "REVERSE_V2", "ADD_N", "GATHER_ND",
    "COS", "WHERE", "RANK", "ELU", "REVERSE_SEQUENCE", "MATRIX_DIAG", "QUANTIZE",
    "MATRIX_SET_DIAG", "ROUND", "HARD_SWISH", "IF", "WHILE", "NON_MAX_SUPPRESSION_V4",
    "NON_MAX_SUPPRESSION_V5", "SCATTER_ND", "SELECT_V2", "DENSIFY", "SEGMENT_SUM",
    "BATCH_MATMUL", "PLACEHOLDER_FOR_GREATER_OP_CODES", "CUMSUM", "CALL_ONCE", "BROADCAST_TO",
    "RFFT2D", "CONV_3D", "IMAG", "REAL", "COMPLEX_ABS", "HASHTABLE", "HASHTABLE_FIND",
    "HASHTABLE_IMPORT", "HASHTABLE_SIZE", "REDUCE_ALL", "CONV_3D_TRANSPOSE", "VAR_HANDLE",
    "READ_VARIABLE", "ASSIGN_VARIABLE", "BROADCAST_ARGS", "RANDOM_STANDARD_NORMAL",
    "BUCKETIZE", "RANDOM_UNIFORM", "MULTINOMIAL", "GELU", "DYNAMIC_UPDATE_SLICE",
    "RELU_0_TO_1", "UNSORTED_SEGMENT_PROD", "UNSORTED_SEGMENT_MAX", "UNSORTED_SEGMENT_SUM",
    "ATAN2", "UNSORTED_SEGMENT_MIN", "SIGN", "BITCAST", "BITWISE_XOR", "RIGHT_SHIFT",
)
BUILTIN_OPS: dict[int, str] = dict(enumerate(_BUILTIN_NAMES))

TENSOR_TYPES: dict[int, str] = dict(enumerate((
    "FLOAT32", "FLOAT16", "INT32", "UINT8", "INT64", "STRING", "BOOL", "INT16", "COMPLEX64",
    "INT8", "FLOAT64", "COMPLEX128", "UINT64", "RESOURCE", "VARIANT", "UINT32", "UINT16",
    "INT4", "BFLOAT16",
)))

NUMPY_DTYPES: dict[str, str] = {
    "FLOAT32": "<f4", "FLOAT16": "<f2", "FLOAT64": "<f8", "INT32": "<i4", "INT64": "<i8",
    "INT16": "<i2", "INT8": "i1", "UINT8": "u1", "BOOL": "?", "UINT32": "<u4", "UINT16": "<u2",
    "UINT64": "<u8",
}

PADDING = {0: "same", 1: "valid"}
ACTIVATIONS = {0: "linear", 1: "relu", 2: "relu_n1_to_1", 3: "relu6", 4: "tanh",
               5: "sign_bit"}

Field = tuple[str | None, str, Any]  # (name or None if deprecated, struct format, default)

_ACT: Field = ("fused_activation_function", "b", 0)
_CONV: tuple[Field, ...] = (("padding", "b", 0), ("stride_w", "i", 0), ("stride_h", "i", 0), _ACT,
                            ("dilation_w_factor", "i", 1), ("dilation_h_factor", "i", 1))
_POOL: tuple[Field, ...] = (("padding", "b", 0), ("stride_w", "i", 0), ("stride_h", "i", 0),
                            ("filter_width", "i", 0), ("filter_height", "i", 0), _ACT)
_REDUCER: tuple[Field, ...] = (("keep_dims", "?", False),)
_ACT_ONLY: tuple[Field, ...] = (_ACT,)
_SPLIT: tuple[Field, ...] = (("num_splits", "i", 0),)
_LSTM: tuple[Field, ...] = (_ACT, ("cell_clip", "f", 0.0), ("proj_clip", "f", 0.0))

# Builtin options of each op, by field id. Only ops tf2torch reads options of are listed.
OPTIONS: dict[str, tuple[Field, ...]] = {
    "CONV_2D": _CONV,
    "DEPTHWISE_CONV_2D": (("padding", "b", 0), ("stride_w", "i", 0), ("stride_h", "i", 0),
                          ("depth_multiplier", "i", 0), _ACT, ("dilation_w_factor", "i", 1),
                          ("dilation_h_factor", "i", 1)),
    "TRANSPOSE_CONV": (("padding", "b", 0), ("stride_w", "i", 0), ("stride_h", "i", 0), _ACT),
    "AVERAGE_POOL_2D": _POOL,
    "MAX_POOL_2D": _POOL,
    "FULLY_CONNECTED": (_ACT, ("weights_format", "b", 0), ("keep_num_dims", "?", False),
                        ("asymmetric_quantize_inputs", "?", False)),
    "ADD": _ACT_ONLY,
    "SUB": _ACT_ONLY,
    "MUL": _ACT_ONLY,
    "DIV": _ACT_ONLY,
    "L2_NORMALIZATION": _ACT_ONLY,
    "CONCATENATION": (("axis", "i", 0), _ACT),
    "SOFTMAX": (("beta", "f", 0.0),),
    "RESHAPE": (("new_shape", "[i4", None),),
    "SQUEEZE": (("squeeze_dims", "[i4", None),),
    "MEAN": _REDUCER,
    "SUM": _REDUCER,
    "REDUCE_MAX": _REDUCER,
    "REDUCE_MIN": _REDUCER,
    "REDUCE_PROD": _REDUCER,
    "RESIZE_BILINEAR": ((None, "i", 0), (None, "i", 0), ("align_corners", "?", False),
                        ("half_pixel_centers", "?", False)),
    "RESIZE_NEAREST_NEIGHBOR": (("align_corners", "?", False), ("half_pixel_centers", "?", False)),
    "STRIDED_SLICE": (("begin_mask", "i", 0), ("end_mask", "i", 0), ("ellipsis_mask", "i", 0),
                      ("new_axis_mask", "i", 0), ("shrink_axis_mask", "i", 0),
                      ("offset", "?", False)),
    "LEAKY_RELU": (("alpha", "f", 0.0),),
    "SPLIT": _SPLIT,
    "SPLIT_V": _SPLIT,
    "PACK": (("values_count", "i", 0), ("axis", "i", 0)),
    "UNPACK": (("num", "i", 0), ("axis", "i", 0)),
    "GATHER": (("axis", "i", 0), ("batch_dims", "i", 0)),
    "MIRROR_PAD": (("mode", "b", 0),),
    "BATCH_MATMUL": (("adj_x", "?", False), ("adj_y", "?", False)),
    "GELU": (("approximate", "?", False),),
    "DEPTH_TO_SPACE": (("block_size", "i", 0),),
    "CUMSUM": (("exclusive", "?", False), ("reverse", "?", False)),
    "REDUCE_ANY": _REDUCER,
    "REDUCE_ALL": _REDUCER,
    "L2_POOL_2D": _POOL,
    "LOCAL_RESPONSE_NORMALIZATION": (("radius", "i", 0), ("bias", "f", 0.0), ("alpha", "f", 0.0),
                                     ("beta", "f", 0.0)),
    "BUCKETIZE": (("boundaries", "[f4", None),),
    "ONE_HOT": (("axis", "i", 0),),
    "SHAPE": (("out_type", "b", 0),),
    "CAST": (("in_data_type", "b", 0), ("out_data_type", "b", 0)),
    "ARG_MAX": (("output_type", "b", 0),),
    "ARG_MIN": (("output_type", "b", 0),),
    "UNIDIRECTIONAL_SEQUENCE_LSTM": (*_LSTM, ("time_major", "?", False),
                                     ("asymmetric_quantize_inputs", "?", False),
                                     ("diagonal_recurrent_tensors", "?", False)),
    "BIDIRECTIONAL_SEQUENCE_LSTM": (*_LSTM, ("merge_outputs", "?", False),
                                    ("time_major", "?", True),
                                    ("asymmetric_quantize_inputs", "?", False)),
    "WHILE": (("cond_subgraph_index", "i", 0), ("body_subgraph_index", "i", 0)),
    "SPACE_TO_DEPTH": (("block_size", "i", 0),),
}
