"""Slim scope names → tensors of a frozen graph or a .tflite, on node names as the published
MobileNetV2 releases carry them (no TensorFlow needed)."""

from __future__ import annotations

from tf2torch.references.scopes import GraphNode, ScopeNames, topological

T = "MobilenetV2"
# (node, readers) of a slim frozen graph, in execution order
FROZEN = [
    (f"{T}/Conv/Conv2D", [f"{T}/Conv/BatchNorm/FusedBatchNormV3"]),
    (f"{T}/Conv/BatchNorm/FusedBatchNormV3", [f"{T}/Conv/Relu6"]),
    (f"{T}/Conv/Relu6", [f"{T}/expanded_conv/depthwise/depthwise"]),
    (f"{T}/expanded_conv/depthwise/depthwise", [f"{T}/expanded_conv/depthwise/BatchNorm/FBN"]),
    (f"{T}/expanded_conv/depthwise/BatchNorm/FBN", [f"{T}/expanded_conv/depthwise/Relu6"]),
    (f"{T}/expanded_conv/depthwise/Relu6", [f"{T}/expanded_conv/project/Conv2D"]),
    (f"{T}/expanded_conv/project/Conv2D", [f"{T}/expanded_conv/project/BatchNorm/FBN"]),
    (f"{T}/expanded_conv/project/BatchNorm/FBN", [f"{T}/expanded_conv/output"]),
    (f"{T}/expanded_conv/output", [f"{T}/expanded_conv_1/expand/Conv2D", f"{T}/expanded_conv_1/add"]),
    (f"{T}/expanded_conv_1/expand/Conv2D", [f"{T}/expanded_conv_1/expand/Relu6"]),
    (f"{T}/expanded_conv_1/expand/Relu6", [f"{T}/expanded_conv_1/project/BatchNorm/FBN"]),
    (f"{T}/expanded_conv_1/project/BatchNorm/FBN", [f"{T}/expanded_conv_1/add"]),
    (f"{T}/expanded_conv_1/add", [f"{T}/expanded_conv_1/output"]),
    (f"{T}/expanded_conv_1/output", [f"{T}/expanded_conv_10/expand/Conv2D"]),
    (f"{T}/expanded_conv_10/expand/Conv2D", [f"{T}/Logits/output"]),
    (f"{T}/Logits/output", [f"{T}/Predictions/Softmax"]),
    (f"{T}/Predictions/Softmax", []),
]


def names(nodes=FROZEN) -> ScopeNames:
    return ScopeNames([GraphNode(n, f"{n}:0", frozenset(r)) for n, r in nodes],
                      f"{T}/Logits/output:0")


def test_convs_by_name_and_scopes_by_their_exit() -> None:
    found = names()
    assert found.resolve(f"{T}/Conv/Conv2D") == f"{T}/Conv/Conv2D:0"
    assert found.resolve(f"{T}/expanded_conv/depthwise/depthwise") == \
        f"{T}/expanded_conv/depthwise/depthwise:0"
    assert found.resolve(f"{T}/Conv/BatchNorm") == f"{T}/Conv/BatchNorm/FusedBatchNormV3:0"
    assert found.resolve(f"{T}/Conv/output") == f"{T}/Conv/Relu6:0"
    # a project unit without activation ends at its BN
    assert found.resolve(f"{T}/expanded_conv/project/output") == \
        f"{T}/expanded_conv/project/BatchNorm/FBN:0"
    # a block: slim's own `output` node, not the add before it
    assert found.resolve(f"{T}/expanded_conv_1/output") == f"{T}/expanded_conv_1/output:0"
    assert found.resolve("logits") == f"{T}/Logits/output:0"


def test_a_scope_is_not_a_name_prefix() -> None:
    nodes = [n for n in FROZEN if not n[0].startswith(f"{T}/expanded_conv_1/")]
    # expanded_conv_10 must not stand in for a missing expanded_conv_1
    assert names(nodes).resolve(f"{T}/expanded_conv_1/output") is None


def test_tflite_fused_tensors_pair_only_scope_results() -> None:
    """The converter names a fused conv+BN+ReLU tensor after its last node."""
    tflite = [
        (f"{T}/Conv/Relu6", [f"{T}/expanded_conv/depthwise/Relu6"]),
        (f"{T}/expanded_conv/depthwise/Relu6", [f"{T}/expanded_conv/project/BatchNorm/FBN"]),
        (f"{T}/expanded_conv/project/BatchNorm/FBN", [f"{T}/expanded_conv_1/expand/Relu6",
                                                     f"{T}/expanded_conv_1/add"]),
        (f"{T}/expanded_conv_1/expand/Relu6", [f"{T}/expanded_conv_1/project/BatchNorm/FBN"]),
        (f"{T}/expanded_conv_1/project/BatchNorm/FBN", [f"{T}/expanded_conv_1/add"]),
        (f"{T}/expanded_conv_1/add", []),
    ]
    found = names(tflite)
    assert found.resolve(f"{T}/Conv/Conv2D") is None
    assert found.resolve(f"{T}/Conv/BatchNorm") is None  # fused into the Relu6 tensor
    assert found.resolve(f"{T}/Conv/output") == f"{T}/Conv/Relu6:0"
    assert found.resolve(f"{T}/expanded_conv/output") == \
        f"{T}/expanded_conv/project/BatchNorm/FBN:0"
    assert found.resolve(f"{T}/expanded_conv_1/output") == f"{T}/expanded_conv_1/add:0"


def test_topological_order_puts_inputs_first() -> None:
    inputs = {"c": ["a", "b"], "b": ["a"], "d": ["c"], "a": []}
    order = topological(["d", "c", "b", "a"], inputs)
    assert order.index("a") < order.index("b") < order.index("c") < order.index("d")
    assert sorted(order) == ["a", "b", "c", "d"]
    # a cycle (TF1 while loop) does not hang
    assert sorted(topological(["x", "y"], {"x": ["y"], "y": ["x"]})) == ["x", "y"]
