"""The op's shared mode (`native/onednn_bands.cpp`, `onednn_helpers.cpp`): a single image's
layers cut into bands of rows that helper threads take too, what the thread rule switches on
under load (`util/threads.py`, rule 3). Every band geometry the fusions make, against Keras,
with helpers finishing bands and, with no patience, bands taken back from them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import tf2torch
from keras_models import assert_image_by_image_like_keras, randomize_statistics
from tf2torch.packages import native_ops
from tf2torch.packages.inference import inference_form
from tf2torch.packages.native_convs import convs_to_native
from tf2torch.packages.single_image import single_image_program, single_image_rewrites

SIZE = (96, 98, 32)


def _keras_layers(tf):
    """Layers large enough to be cut into bands (2^21 multiply-adds and more): depthwise with
    ReLU6; 'same' with stride 2 on an even size (TensorFlow pads one row, below); a residual
    add then ReLU; dilation with sigmoid; an uneven zero pad folded into a 5×5 layer."""
    layers = tf.keras.layers
    inp = tf.keras.Input(SIZE)
    y = layers.ReLU(6.0)(layers.DepthwiseConv2D(3, padding="same")(inp))
    x = layers.Conv2D(32, 3, strides=2, padding="same", activation="swish")(y)
    x = layers.ReLU()(layers.Add()([layers.Conv2D(32, 3, padding="same")(x), x]))
    x = layers.Conv2D(24, 3, padding="same", dilation_rate=2, activation="sigmoid")(x)
    x = layers.Conv2D(8, 5)(layers.ZeroPadding2D(((2, 0), (1, 3)))(x))
    return tf.keras.Model(inp, x)


@pytest.fixture(scope="module")
def program(tmp_path_factory):
    tf = pytest.importorskip("tensorflow")
    native_ops.load()
    tf.keras.utils.set_random_seed(21)
    model = _keras_layers(tf)
    randomize_statistics(model, seed=22, mild=True)
    folder = tmp_path_factory.mktemp("bands")
    model.save(folder / "model.keras")
    tf2torch.convert(folder / "model.keras", folder / "pkg", verify=False)
    form = inference_form(tf2torch.load(folder / "pkg").net, SIZE, governed=False,
                          input_layout="nhwc")
    gm = single_image_rewrites(single_image_program(form, (torch.zeros(1, *SIZE),),
                                                    products=()), "nhwc", sums=())
    assert convs_to_native(gm) == 5
    return gm, model


@pytest.fixture
def shared():
    """The shared mode with one helper on any CPU; off again afterwards."""
    own = torch.get_num_threads()
    torch.set_num_threads(1)  # as the rule runs it: one thread, and the helper
    try:
        yield lambda patience_us: torch.ops.tf2torch.share_rows([-1], 1, patience_us)
    finally:
        torch.ops.tf2torch.share_rows([], 0)
        torch.set_num_threads(own)


@pytest.mark.parametrize("patience_us", [-1, 0])
def test_bands_shared_with_a_helper_match_keras(program, shared, patience_us: int) -> None:
    """-1: the caller waits for a helper's band as long as its own take. 0: it takes back
    every band a helper has not finished when it gets there, and the output moves to a fresh
    tensor; a helper still writing into the old one must not show."""
    gm, model = program
    shared(patience_us)
    images = np.random.default_rng(23).uniform(-3, 3, (6, *SIZE)).astype(np.float32)
    before = torch.ops.tf2torch.shared_counts()
    for _ in range(5):  # the helper's share of the bands varies from call to call
        assert_image_by_image_like_keras(gm, model, images, rel=1e-5, change_rel=1e-4)
    by_caller, by_helpers, taken_back = (
        a - b for a, b in zip(torch.ops.tf2torch.shared_counts(), before, strict=True))
    assert by_caller > 0 and by_helpers > 0
    if patience_us == 0:
        assert taken_back > 0


def test_layers_too_small_to_share_run_whole(shared) -> None:
    """A layer of less than two bands' worth runs on the calling thread, as a whole."""
    shared(-1)
    x = torch.randn(1, 8, 16, 16).contiguous(memory_format=torch.channels_last)
    w, b = torch.randn(8, 8, 3, 3), torch.randn(8)
    before = torch.ops.tf2torch.shared_counts()
    y = torch.ops.tf2torch.conv(x, w, b, [1, 1], [1, 1, 1, 1], [1, 1], 1, "none", None)
    assert torch.ops.tf2torch.shared_counts() == before
    assert (y - torch.nn.functional.conv2d(x, w, b, padding=1)).abs().max() < 1e-4


def test_bad_helper_settings_are_named() -> None:
    native_ops.load()
    with pytest.raises(RuntimeError, match="at most 63 helpers"):
        torch.ops.tf2torch.share_rows([0] * 64, 1)
    with pytest.raises(RuntimeError, match="0 to 64 bands"):
        torch.ops.tf2torch.share_rows([0], 65)
