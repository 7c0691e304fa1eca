"""tf2torch's own oneDNN convolution op (`native_ops.py`, `native/onednn_conv.cpp`) and the
pass that hands convolutions to it (`native_convs.py`): what each fusion computes, against
Keras, and the op's primitive cache, which must never serve a weight it no longer holds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import tf2torch
from keras_models import assert_image_by_image_like_keras, randomize_statistics
from tf2torch.packages import native_ops
from tf2torch.packages.inference import inference_form
from tf2torch.packages.native_convs import convs_to_native
from tf2torch.packages.single_image import single_image_program, single_image_rewrites

aten = torch.ops.aten


@pytest.fixture(scope="module", autouse=True)
def native() -> None:
    native_ops.load()  # `make test` installs the [native] extra: it must build and load here


def _keras_blocks(tf):
    """Every fusion the pass makes, as Keras writes it: a strided 'same' layer with swish,
    depthwise with ReLU6, a linear projection added to its block's input (MobileNetV2), a 3×3
    layer added then ReLU'd (ResNet), dilation, a sigmoid layer, a capped ReLU (a clip), and
    an uneven zero pad folded into the layer it feeds."""
    layers = tf.keras.layers
    inp = tf.keras.Input((17, 19, 3))
    x = layers.Conv2D(16, 3, strides=2, padding="same", activation="swish")(inp)
    y = layers.ReLU(6.0)(layers.DepthwiseConv2D(3, padding="same")(x))
    x = layers.Add()([x, layers.Conv2D(16, 1)(y)])
    x = layers.ReLU()(layers.Add()([layers.Conv2D(16, 3, padding="same")(x), x]))
    x = layers.Conv2D(12, 3, padding="same", dilation_rate=2, activation="sigmoid")(x)
    x = layers.ReLU(max_value=0.7)(layers.Conv2D(8, 3, strides=2, padding="same")(x))
    x = layers.Conv2D(6, 3)(layers.ZeroPadding2D(((2, 0), (1, 3)))(x))
    return tf.keras.Model(inp, x)


@pytest.mark.parametrize("fuse_silu", [True, False])
def test_fused_convolutions_match_keras(tmp_path: Path, fuse_silu: bool) -> None:
    tf = pytest.importorskip("tensorflow")
    tf.keras.utils.set_random_seed(11)
    model = _keras_blocks(tf)
    randomize_statistics(model, seed=12, mild=True)
    model.save(tmp_path / "model.keras")
    tf2torch.convert(tmp_path / "model.keras", tmp_path / "pkg", verify=False)
    form = inference_form(tf2torch.load(tmp_path / "pkg").net, (17, 19, 3), governed=False,
                          input_layout="nhwc")
    gm = single_image_rewrites(single_image_program(form, (torch.zeros(1, 17, 19, 3),),
                                                    products=()), "nhwc", sums=())
    assert convs_to_native(gm, fuse_silu=fuse_silu) == 7
    calls = [n for n in gm.graph.nodes if n.op == "call_function"]
    left = [n.target for n in calls if n.target in (
        aten.conv2d.default, aten.add.Tensor, aten.relu.default, aten.silu.default,
        aten.sigmoid.default, aten.hardtanh.default, aten.clamp.default,
        aten.constant_pad_nd.default, aten.pad.default)]
    assert left == ([] if fuse_silu else [aten.silu.default])  # the rest fused into the op
    fused = [n.args[7:] for n in calls if n.target is torch.ops.tf2torch.conv.default]
    assert [act for act, _ in fused] == ["silu" if fuse_silu else "none", "relu6", "none",
                                         "relu", "sigmoid", "clip:0.0:0.7", "none"]
    assert [residual is not None for _, residual in fused] == [
        False, False, True, True, False, False, False]
    padded = [n.args[4] for n in calls if n.target is torch.ops.tf2torch.conv.default][-1]
    assert padded in ([2, 1, 0, 3], [0, 3, 2, 1])  # top, left, bottom, right (or mirrored)
    images = np.random.default_rng(13).uniform(-3, 3, (3, 17, 19, 3)).astype(np.float32)
    assert_image_by_image_like_keras(gm, model, images, rel=1e-5, change_rel=1e-4)


@pytest.mark.parametrize(("capability", "fused"), [
    ("AVX512", False), ("AVX512_BF16", False), ("AVX2", True), ("DEFAULT", True)])
def test_swish_is_left_to_inductor_on_avx512_only(monkeypatch, capability, fused) -> None:
    """oneDNN 3.2's swish post-op cost more than a separate pass on AVX-512 and less on
    AVX2 (BENCHMARKS.md, fourteenth session): the pass follows the CPU it compiles on."""
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
    net, x = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.SiLU()).eval(), torch.randn(2, 3, 9, 9)
    with torch.no_grad():
        gm = torch.export.export(net, (x,)).module()
        assert convs_to_native(gm) == 1
        calls = [n for n in gm.graph.nodes if n.op == "call_function"]
        assert [n.args[7] for n in calls if n.target is torch.ops.tf2torch.conv.default] == [
            "silu" if fused else "none"]
        assert (aten.silu.default in {n.target for n in calls}) is not fused
        assert (gm(x) - net(x)).abs().max() < 1e-5


def _conv(x, w, b, act="none", residual=None, stride=1, pad=1, groups=1):
    return torch.ops.tf2torch.conv(x, w, b, [stride] * 2, [pad] * 4, [1, 1], groups, act,
                                   residual)


def test_each_thread_count_gets_its_own_primitive_with_the_same_numbers() -> None:
    torch.manual_seed(3)
    x = torch.randn(1, 64, 14, 14).contiguous(memory_format=torch.channels_last)
    w, b = torch.randn(256, 64, 1, 1), torch.randn(256)
    expected = F.conv2d(x, w, b)
    own = torch.get_num_threads()
    try:
        for threads in (1, 2, 1):
            torch.set_num_threads(threads)
            assert (_conv(x, w, b, pad=0) - expected).abs().max() < 1e-4
    finally:
        torch.set_num_threads(own)


def test_one_layer_called_from_several_threads_at_once_answers_each_its_own() -> None:
    """The op may be called from any thread. Each call gets its own scratchpad (oneDNN's
    own was shared: answers differed by ~115), and the layer's reusable memory objects are
    one call's at a time (a shared one pointed at another call's tensors would mix them)."""
    from concurrent.futures import ThreadPoolExecutor

    torch.manual_seed(5)
    w, b = torch.randn(64, 32, 3, 3), torch.randn(64)
    inputs, residual = ([torch.randn(1, c, 48, 48).contiguous(memory_format=torch.channels_last)
                         for _ in range(4)] for c in (32, 64))
    expected = [F.conv2d(x, w, b, padding=1) + r for x, r in zip(inputs, residual, strict=True)]

    def worst(k: int) -> float:
        return max((_conv(inputs[k], w, b, residual=residual[k]) - expected[k]).abs().max()
                   .item() for _ in range(60))

    with ThreadPoolExecutor(4) as pool:
        assert max(pool.map(worst, range(4))) < 1e-4


def test_a_new_weight_at_a_freed_weights_address_is_packed_anew() -> None:
    """Two tensors over one buffer, one after the other: the same address, another storage.
    A cache keyed by address alone would run the first weight's packed copy."""
    rng = np.random.default_rng(4)
    buffer = rng.standard_normal((32, 1, 3, 3)).astype(np.float32)
    x = torch.randn(1, 32, 9, 9).contiguous(memory_format=torch.channels_last)
    b = torch.zeros(32)
    first = torch.from_numpy(buffer)
    assert (_conv(x, first, b, groups=32) - F.conv2d(x, first, b, padding=1, groups=32)
            ).abs().max() < 1e-5
    del first
    buffer *= -2.0
    second = torch.from_numpy(buffer)
    assert (_conv(x, second, b, groups=32) - F.conv2d(x, second, b, padding=1, groups=32)
            ).abs().max() < 1e-5


def test_a_bias_in_a_fresh_buffer_each_call_is_read_not_prepared_again() -> None:
    """AOTInductor hands a small bias over in a new buffer on every call (EfficientNet's gate
    layers): the layer is prepared once, and each call's bias values are the ones used."""
    torch.manual_seed(7)
    x = torch.randn(1, 96, 1, 1).contiguous(memory_format=torch.channels_last)
    w = torch.randn(4, 96, 1, 1)
    _conv(x, w, torch.zeros(4), pad=0)
    cached = torch.ops.tf2torch.cached_layers()
    for step in range(5):
        b = torch.full((4,), float(step)).clone()  # its own buffer, its own values
        assert (_conv(x, w, b, pad=0) - F.conv2d(x, w, b)).abs().max() < 1e-4
    assert torch.ops.tf2torch.cached_layers() == cached


def test_layers_of_freed_weights_leave_the_cache() -> None:
    """A server loading model after model keeps only the live ones' packed weights."""
    x = torch.randn(1, 8, 6, 6).contiguous(memory_format=torch.channels_last)
    sizes = []
    for seed in range(4):
        torch.manual_seed(seed)
        w = torch.randn(16 + seed, 8, 3, 3)  # a new layer each time: each is prepared
        _conv(x, w, None)
        del w
        sizes.append(torch.ops.tf2torch.cached_layers())
    assert sizes[1] == sizes[2] == sizes[3]  # each new layer swept the one freed before it


def test_bad_arguments_are_named() -> None:
    x = torch.randn(1, 8, 5, 5)
    w, b = torch.randn(8, 8, 3, 3), torch.randn(8)
    with pytest.raises(RuntimeError, match="unknown activation gelu"):
        _conv(x, w, b, act="gelu")
    with pytest.raises(RuntimeError, match="residual shape"):
        _conv(x, w, b, residual=torch.zeros(1, 8, 4, 4))
    with pytest.raises(RuntimeError, match="channels do not match"):
        _conv(x, torch.randn(8, 4, 3, 3), b)
    with pytest.raises(RuntimeError, match="8 output channels but 5 biases"):
        _conv(x, w, torch.zeros(5))


def test_a_missing_extra_or_a_failed_build_is_named(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TF2TORCH_NATIVE_DIR", str(tmp_path / "native"))  # nothing built yet
    monkeypatch.setenv("CXX", "false")  # a compiler that fails
    with pytest.raises(native_ops.NativeUnavailable, match=r"building native/\*\.cpp failed"):
        native_ops.build()
    assert not list((tmp_path / "native").rglob("*.so"))  # nothing half-built left to load
    monkeypatch.setattr(native_ops.sysconfig, "get_paths", lambda: {"data": str(tmp_path)})
    monkeypatch.setattr(native_ops.site, "ENABLE_USER_SITE", False)
    with pytest.raises(native_ops.NativeUnavailable, match=r"pip install 'tf2torch\[native\]'"):
        native_ops.build()


def test_each_environment_builds_its_own() -> None:
    """The library finds libdnnl through an rpath: a build made against another
    environment's oneDNN must not be loaded here once that environment is gone."""
    include, lib = native_ops.onednn_dirs()
    assert native_ops._key(include, lib) != native_ops._key(include, lib.parent / "other")
    assert native_ops.build().parent.name == native_ops._key(include, lib)


class _InPlace(torch.nn.Module):
    """Activations in place, as the slim MobileNetV2 port writes them (`ReLU6(inplace=True)`),
    one after a residual add; and `relu6` itself, as TFLite's RELU6 converts."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(5)
        self.stem = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.six = torch.nn.ReLU6(inplace=True)
        self.body = torch.nn.Conv2d(8, 8, 3, padding=1)
        self.relu = torch.nn.ReLU(inplace=True)
        self.head = torch.nn.Conv2d(8, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.six(self.stem(x))
        return F.relu6(self.head(self.relu(self.body(y) + y)))


def test_activations_in_place_are_fused_and_leave_nothing_behind() -> None:
    """Dead-code elimination keeps an in-place op: left in the graph, it would keep its ATen
    convolution too, computed beside the op's (35 such layers in the slim MobileNetV2)."""
    net, x = _InPlace().eval(), torch.randn(2, 3, 9, 9)
    with torch.no_grad():
        gm = torch.export.export(net, (x,)).module()
        assert aten.relu6.default in {n.target for n in gm.graph.nodes}
        assert convs_to_native(gm) == 3
        calls = [n.target for n in gm.graph.nodes if n.op == "call_function"]
        assert [c for c in calls if c is torch.ops.tf2torch.conv.default] == calls
        fused = [n.args[7:] for n in gm.graph.nodes if n.op == "call_function"]
        assert [act for act, _ in fused] == ["relu6", "relu", "relu6"]
        assert fused[1][1] is not None  # the residual
        assert (gm(x) - net(x.clone())).abs().max() < 1e-5
