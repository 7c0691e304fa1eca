"""Keras layer converters, registered under ("keras", <layer class>, 1)."""

from __future__ import annotations

from tf2torch.conversion.graph.keras import (
    conv,
    core,
    merging,
    normalization,
    ops,
    pooling,
    preprocessing,
    reshaping,
)
from tf2torch.conversion.graph.registry import Converter, Registry

_IDENTITY_LAYERS = (
    "Identity", "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D",
    "GaussianNoise", "GaussianDropout", "AlphaDropout", "ActivityRegularization",
    "StochasticDepth",
)

KERAS_LAYERS: dict[str, Converter] = {
    "Conv1D": conv.convert_conv,
    "Conv2D": conv.convert_conv,
    "Conv3D": conv.convert_conv,
    "DepthwiseConv1D": conv.convert_depthwise_conv,
    "DepthwiseConv2D": conv.convert_depthwise_conv,
    "SeparableConv1D": conv.convert_separable_conv,
    "SeparableConv2D": conv.convert_separable_conv,
    "Conv1DTranspose": conv.convert_conv_transpose,
    "Conv2DTranspose": conv.convert_conv_transpose,
    "Conv3DTranspose": conv.convert_conv_transpose,
    "Dense": core.convert_dense,
    "Activation": core.convert_activation,
    "ReLU": core.convert_relu,
    "Softmax": core.convert_softmax,
    "LeakyReLU": core.convert_leaky_relu,
    "ELU": core.convert_elu,
    "PReLU": core.convert_prelu,
    "BatchNormalization": normalization.convert_batch_norm,
    "LayerNormalization": normalization.convert_layer_norm,
    "LayerScale": normalization.convert_layer_scale,
    "Add": merging.convert_add,
    "Subtract": merging.convert_subtract,
    "Multiply": merging.convert_multiply,
    "Average": merging.convert_average,
    "Maximum": merging.convert_maximum,
    "Minimum": merging.convert_minimum,
    "Concatenate": merging.convert_concatenate,
    "Dot": merging.convert_dot,
    "MaxPooling1D": pooling.convert_max_pooling,
    "MaxPooling2D": pooling.convert_max_pooling,
    "MaxPooling3D": pooling.convert_max_pooling,
    "AveragePooling1D": pooling.convert_average_pooling,
    "AveragePooling2D": pooling.convert_average_pooling,
    "AveragePooling3D": pooling.convert_average_pooling,
    "GlobalMaxPooling1D": pooling.convert_global_max_pooling,
    "GlobalMaxPooling2D": pooling.convert_global_max_pooling,
    "GlobalMaxPooling3D": pooling.convert_global_max_pooling,
    "GlobalAveragePooling1D": pooling.convert_global_average_pooling,
    "GlobalAveragePooling2D": pooling.convert_global_average_pooling,
    "GlobalAveragePooling3D": pooling.convert_global_average_pooling,
    "Flatten": reshaping.convert_flatten,
    "Reshape": reshaping.convert_reshape,
    "Permute": reshaping.convert_permute,
    "RepeatVector": reshaping.convert_repeat_vector,
    "ZeroPadding1D": reshaping.convert_zero_padding,
    "ZeroPadding2D": reshaping.convert_zero_padding,
    "ZeroPadding3D": reshaping.convert_zero_padding,
    "Cropping1D": reshaping.convert_cropping,
    "Cropping2D": reshaping.convert_cropping,
    "Cropping3D": reshaping.convert_cropping,
    "UpSampling1D": reshaping.convert_upsampling,
    "UpSampling2D": reshaping.convert_upsampling,
    "UpSampling3D": reshaping.convert_upsampling,
    "Rescaling": preprocessing.convert_rescaling,
    "Normalization": preprocessing.convert_normalization,
    "Resizing": preprocessing.convert_resizing,
    "CustomScaleLayer": ops.convert_custom_scale,
    "TFOpLambda": ops.convert_tf_op_lambda,
    "ops.Add": ops.convert_ops_add,
    "ops.Subtract": ops.convert_ops_subtract,
    "ops.Multiply": ops.convert_ops_multiply,
    "ops.Divide": ops.convert_ops_divide,
    "ops.TrueDivide": ops.convert_ops_divide,
    "ops.Maximum": ops.convert_ops_maximum,
    "ops.Minimum": ops.convert_ops_minimum,
} | {name: core.convert_identity for name in _IDENTITY_LAYERS} | ops.ACTIVATION_OPS


def register_keras_layers(registry: Registry) -> None:
    """Add every Keras layer converter to `registry` (version 1 of each)."""
    for layer_class, converter in KERAS_LAYERS.items():
        registry.register(("keras", layer_class, 1), converter)
