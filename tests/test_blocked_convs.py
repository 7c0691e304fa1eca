"""The any-batch program's convolutions on oneDNN's blocked layout (`blocked_convs.py`, the
op's `conv_blocked`, `to_blocked`, `from_blocked`): what the chain computes, against Keras,
at a batch; where reorders remain; and the layout itself against plain PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import tf2torch
from keras_models import assert_image_by_image_like_keras, randomize_statistics
from tf2torch.packages import native_ops
from tf2torch.packages.blocked_convs import block_for_this_cpu, convs_blocked
from tf2torch.packages.inference import inference_form
from tf2torch.packages.mirror import mirrored_module
from tf2torch.packages.native_convs import convs_to_native
from tf2torch.packages.single_image import any_batch_rewrites

ops = torch.ops.tf2torch
aten = torch.ops.aten


@pytest.fixture(scope="module", autouse=True)
def native() -> None:
    native_ops.load()  # `make test` installs the [native] extra: it must build and load here


def _keras_net(tf):
    """What the pass meets in MobileNetV2, EfficientNet and ResNet: a 3-channel stem, channel
    counts that are no multiple of a block (24, 40, 6), depthwise layers, two channel gates
    (pooled and reshaped as Keras' EfficientNet writes it, and pooled keeping its dims), a
    residual projection, an add + ReLU, activations no convolution takes in (leaky ReLU,
    GELU), and a classifier after the last pool."""
    from functools import partial

    layers = tf.keras.layers
    # weights wide enough that the image's part is no whisper under the biases at the logits
    conv2d = partial(layers.Conv2D, kernel_initializer="he_uniform")
    depthwise = partial(layers.DepthwiseConv2D,
                        depthwise_initializer=tf.keras.initializers.RandomUniform(-1, 1, seed=24))
    inp = tf.keras.Input((21, 19, 3))
    x = conv2d(24, 3, strides=2, padding="same", activation="swish")(inp)
    x = depthwise(3, padding="same", activation="swish")(x)
    gate = layers.Reshape((1, 1, 24))(layers.GlobalAveragePooling2D()(x))
    gate = conv2d(6, 1, activation="swish")(gate)
    x = layers.Multiply()([x, conv2d(24, 1, activation="sigmoid")(gate)])
    x = conv2d(40, 1)(x)
    y = layers.ReLU(6.0)(depthwise(3, padding="same")(conv2d(80, 1)(x)))
    x = layers.Add()([x, conv2d(40, 1)(y)])
    gate = layers.GlobalAveragePooling2D(keepdims=True)(x)
    x = layers.Multiply()([x, conv2d(40, 1, activation="sigmoid")(gate)])
    x = layers.ReLU()(layers.Add()([conv2d(40, 3, padding="same")(x), x]))
    x = layers.Activation("gelu")(layers.LeakyReLU(0.2)(conv2d(40, 1)(x)))  # left unfused
    x = conv2d(48, 3, strides=2, padding="same", activation="relu")(x)
    return tf.keras.Model(inp, layers.Dense(7)(layers.GlobalAveragePooling2D()(x)))


@pytest.fixture(scope="module")
def keras_net(tmp_path_factory):
    tf = pytest.importorskip("tensorflow")
    tf.keras.utils.set_random_seed(21)
    model = _keras_net(tf)
    randomize_statistics(model, seed=22)
    folder = tmp_path_factory.mktemp("blocked")
    model.save(folder / "model.keras")
    tf2torch.convert(folder / "model.keras", folder / "pkg", verify=False)
    form = inference_form(tf2torch.load(folder / "pkg").net, (21, 19, 3), governed=False,
                          input_layout="nhwc")
    batch = torch.export.Dim("batch", min=1, max=64)
    with torch.no_grad():
        program = torch.export.export(form, (torch.zeros(2, 21, 19, 3),),
                                      dynamic_shapes=(({0: batch},),))
    return model, program


def _served(block: int) -> bool:
    """Whether oneDNN has fast kernels for `block` here: blocks of 16 need AVX-512; an
    AVX2 CPU runs them only with its reference code."""
    return block <= (block_for_this_cpu() or 0)


@pytest.mark.parametrize("block", [8, 16])
def test_a_blocked_chain_gives_keras_logits_at_a_batch(keras_net, block) -> None:
    model, program = keras_net
    module = mirrored_module(program, "nhwc")
    assert convs_to_native(module) == 12
    if not _served(block):  # every layer stays channels-last rather than run by reference code
        assert convs_blocked(module, block) == 0
        assert ops.conv_blocked.default not in {n.target for n in module.graph.nodes}
        return
    assert convs_blocked(module, block) == 12
    calls = [n.target for n in module.graph.nodes if n.op == "call_function"]
    assert calls.count(ops.conv_blocked.default) == 12 and ops.conv.default not in calls
    # the stem reads the image as it is; the chain leaves the layout once, for the last pool
    assert calls.count(ops.to_blocked.default) == 0
    assert calls.count(ops.from_blocked.default) == 1
    back = next(n for n in module.graph.nodes if n.target is ops.from_blocked.default)
    assert back.args[0].target is aten.mean.dim  # the pool runs on the blocks, not after
    assert calls.count(aten.mean.dim) == 3 and calls.count(aten.mul.Tensor) >= 2  # the gates
    images = np.random.default_rng(23).uniform(-2, 2, (5, 21, 19, 3)).astype(np.float32)
    assert_image_by_image_like_keras(module, model, images, rel=1e-5, change_rel=1e-4,
                                     together=True)
    assert_image_by_image_like_keras(module, model, images[:2], rel=1e-5, change_rel=1e-4)


def test_the_any_batch_program_is_blocked_only_under_the_cached_plan(keras_net) -> None:
    _, program = keras_net
    module, block = any_batch_rewrites(program, "nhwc", "onednn-cached")
    assert block == block_for_this_cpu() and block in (8, 16)  # CI machines have AVX2 at least
    assert ops.conv_blocked.default in {n.target for n in module.graph.nodes}
    for plan in ("mkl", "onednn"):
        module, block = any_batch_rewrites(program, "nhwc", plan)
        assert block is None
        assert aten.conv2d.default in {n.target for n in module.graph.nodes}


@pytest.mark.parametrize("block", [8, 16])
def test_the_layout_round_trips_and_pads_with_zeros(block) -> None:
    x = torch.randn(2, 21, 5, 7).contiguous(memory_format=torch.channels_last)
    packed = ops.to_blocked(x, block)
    assert packed.shape == (2, -(-21 // block), 5, 7, block)
    assert torch.equal(packed.permute(0, 1, 4, 2, 3).reshape(2, -1, 5, 7)[:, :21], x)
    assert not packed.permute(0, 1, 4, 2, 3).reshape(2, -1, 5, 7)[:, 21:].any()
    assert torch.equal(ops.from_blocked(packed, 21), x)


@pytest.mark.parametrize("block", [8, 16])
def test_a_blocked_convolution_is_pytorchs(block) -> None:
    torch.manual_seed(block)
    x, residual = torch.randn(2, 20, 9, 11), torch.randn(2, 36, 5, 6)
    w, b = torch.randn(36, 20, 3, 3), torch.randn(36)
    got = ops.conv_blocked(ops.to_blocked(x, block), w, b, [2, 2], [1, 1, 1, 1], [1, 1], 1,
                           "relu6", ops.to_blocked(residual, block), block)
    expected = (F.conv2d(x, w, b, 2, 1) + residual).clamp(0, 6)
    assert (ops.from_blocked(got, 36) - expected).abs().max() < 1e-4
    assert not got.permute(0, 1, 4, 2, 3).reshape(2, -1, 5, 6)[:, 36:].any()
    stem = ops.conv_blocked(x[:, :3], w[:, :3], None, [1, 1], [0, 1, 2, 1], [1, 1], 1, "none",
                            None, block)  # a plain NCHW input, its own sides padded
    assert (ops.from_blocked(stem, 36) - F.conv2d(F.pad(x[:, :3], (1, 1, 0, 2)), w[:, :3])
            ).abs().max() < 1e-4


def test_blocked_layers_called_from_several_threads_at_once_answer_each_its_own() -> None:
    """The reorders and a full, a 1×1 and a depthwise blocked layer, one cached primitive
    each, run by four threads at once, each on its own image (the op may be called from any
    thread)."""
    from concurrent.futures import ThreadPoolExecutor

    torch.manual_seed(6)
    block = block_for_this_cpu()
    layers = [(torch.randn(40, 24, 3, 3), torch.randn(40), 1, 1),
              (torch.randn(64, 40, 1, 1), torch.randn(64), 0, 1),
              (torch.randn(64, 1, 3, 3), torch.randn(64), 1, 64)]
    images = [torch.randn(1, 24, 40, 40) for _ in range(4)]

    def through(x: torch.Tensor, blocked: bool) -> torch.Tensor:
        x = ops.to_blocked(x, block) if blocked else x
        for w, b, pad, groups in layers:
            x = (ops.conv_blocked(x, w, b, [1, 1], [pad] * 4, [1, 1], groups, "relu6", None,
                                  block)
                 if blocked else F.conv2d(x, w, b, padding=pad, groups=groups).clamp(0, 6))
        return ops.from_blocked(x, 64) if blocked else x

    expected = [through(x, blocked=False) for x in images]

    def worst(k: int) -> float:
        return max((through(images[k], blocked=True) - expected[k]).abs().max().item()
                   for _ in range(30))

    with ThreadPoolExecutor(4) as pool:
        assert max(pool.map(worst, range(4))) < 1e-4


def test_bad_blocked_arguments_are_named() -> None:
    w = torch.randn(8, 16, 1, 1)
    with pytest.raises(RuntimeError, match=r"is not 16 channels, in blocks of 16"):
        ops.conv_blocked(torch.zeros(1, 2, 4, 4, 8), w, None, [1, 1], [0] * 4, [1, 1], 1,
                         "none", None, 16)
    with pytest.raises(RuntimeError, match="block 12"):
        ops.to_blocked(torch.zeros(1, 16, 4, 4), 12)
    with pytest.raises(RuntimeError, match="does not hold 40 channels"):
        ops.from_blocked(torch.zeros(1, 2, 4, 4, 16), 40)


def test_layers_only_reference_code_runs_blocked_stay_channels_last(tmp_path) -> None:
    """oneDNN runs a grouped layer of 4 channels per group, or a depthwise one with a
    multiplier, on blocked activations only with its reference code: such a layer stays
    channels-last, between reorders, and the chain still gives Keras' logits."""
    tf = pytest.importorskip("tensorflow")
    layers = tf.keras.layers
    tf.keras.utils.set_random_seed(31)
    inp = tf.keras.Input((12, 12, 3))
    x = layers.Conv2D(32, 3, padding="same", activation="relu",
                      kernel_initializer="he_uniform")(inp)
    x = layers.Conv2D(32, 3, padding="same", groups=8, kernel_initializer="he_uniform")(x)
    x = layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same")(x)
    x = layers.Conv2D(16, 1, kernel_initializer="he_uniform")(x)
    model = tf.keras.Model(inp, layers.Dense(5)(layers.GlobalAveragePooling2D()(x)))
    randomize_statistics(model, seed=32)
    model.save(tmp_path / "model.keras")
    tf2torch.convert(tmp_path / "model.keras", tmp_path / "pkg", verify=False)
    form = inference_form(tf2torch.load(tmp_path / "pkg").net, (12, 12, 3), governed=False,
                          input_layout="nhwc")
    with torch.no_grad():
        module = mirrored_module(torch.export.export(form, (torch.zeros(4, 12, 12, 3),)), "nhwc")
    assert convs_to_native(module) == 4
    assert convs_blocked(module, block_for_this_cpu()) == 2  # the first and the last
    calls = [n.target for n in module.graph.nodes if n.op == "call_function"]
    assert calls.count(ops.conv.default) == 2
    images = np.random.default_rng(33).uniform(-2, 2, (4, 12, 12, 3)).astype(np.float32)
    assert_image_by_image_like_keras(module, model, images, rel=1e-5, change_rel=1e-4,
                                     together=True)
