"""The inference form (BN folded, channels-last) still matches TensorFlow and the eager net."""

from __future__ import annotations

import copy

import h5py
import numpy as np
import pytest
import torch
from torch import nn

from tf2torch.conversion.convert import convert_zoo
from tf2torch.packages.inference import (
    InferenceForm,
    configure_allocator,
    fold_batchnorm,
    inference_form,
)
from tf2torch.sources import open_source

TF_TOL = 1e-4
EAGER_TOL = 1e-5  # relative to the largest logit: folding BN reorders float32 sums


@pytest.fixture(scope="module")
def converted(standin):
    release = standin(0.35, 96, tflite=False, pack=False)
    return convert_zoo(open_source(release.prefix)).net, release.tests_h5


def nchw(batch: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(batch.transpose(0, 3, 1, 2)))


def run(net: nn.Module, batch: torch.Tensor) -> np.ndarray:
    with torch.inference_mode():
        return net(batch).numpy()


@pytest.mark.parametrize("channels_last", [True, False])
def test_inference_form_matches_tensorflow_and_eager(converted, channels_last: bool) -> None:
    net, tests_h5 = converted
    form = inference_form(net, (3, 96, 96), channels_last=channels_last)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in form.modules())
    with h5py.File(tests_h5) as f:
        random_input, ref = f["RandomInput"][()], f["LogitsForRandom"][()]
        ref_zeros = f["LogitsForZeros"][()]
    for inputs, expected in ((random_input, ref), (np.zeros_like(random_input[:1]), ref_zeros)):
        batch = nchw(inputs)
        logits = run(form, batch)
        assert np.abs(logits - expected).max() <= TF_TOL
        assert np.abs(logits - run(net, batch)).max() <= EAGER_TOL * max(1.0, np.abs(expected).max())


def test_original_untouched_and_other_sizes(converted) -> None:
    """A copy is folded; SAME pads still follow the input size the form is given."""
    net, _ = converted
    before = {k: v.clone() for k, v in net.state_dict().items()}
    form = inference_form(net, (3, 96, 96))
    assert any(isinstance(m, nn.BatchNorm2d) for m in net.modules())
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    batch = torch.from_numpy(np.random.default_rng(1).uniform(-1, 1, (3, 3, 101, 101))
                             .astype(np.float32))
    eager = run(net, batch)
    assert np.abs(run(form, batch) - eager).max() <= EAGER_TOL * max(1.0, np.abs(eager).max())


def test_generic_modules_fold_through_fx() -> None:
    """Not a zoo unit: Conv → BN found on the fx graph; a conv feeding two users is kept."""

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.bn_a = nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4)
            self.b, self.bn_b = nn.Conv2d(4, 4, 1), nn.BatchNorm2d(4)
            self.seq = nn.Sequential(nn.Conv2d(4, 4, 1, bias=False), nn.BatchNorm2d(4))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = torch.relu(self.bn_a(self.a(x)))
            z = self.b(y)
            return self.seq(self.bn_b(z) + z)

    torch.manual_seed(0)
    net = Net().eval()
    for bn in (net.bn_a, net.bn_b, net.seq[1]):
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 1.5)
    x = torch.randn(2, 3, 8, 8)
    expected = run(net, x)
    folded = fold_batchnorm(copy.deepcopy(net))
    remaining = [m for m in folded.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(remaining) == 1  # bn_b: its conv's output is also used by the skip
    assert np.abs(run(folded, x) - expected).max() <= EAGER_TOL
    form = inference_form(net, (3, 8, 8), governed=False)
    assert isinstance(form, InferenceForm)
    assert np.abs(run(form, x) - expected).max() <= EAGER_TOL


def test_configure_allocator_reports_what_it_set() -> None:
    setup = configure_allocator()
    if setup.library is None:
        pytest.skip("not glibc")
    assert setup.settings == {"M_MMAP_THRESHOLD": 1 << 30, "M_TRIM_THRESHOLD": 1 << 30}


def test_load_compiled_matches_tensorflow(standin, tmp_path) -> None:
    """`tf2torch.load(..., compile=True)` (Inductor, weights frozen) against TensorFlow's
    logits stored with the release (tests.h5)."""
    import tf2torch

    release = standin(0.35, 96, tflite=False, pack=False)
    tf2torch.convert(release.prefix, tmp_path / "pkg", verify=False)
    model = tf2torch.load(tmp_path / "pkg", compile=True)
    with h5py.File(release.tests_h5) as f:
        random_input, ref = f["RandomInput"][()], f["LogitsForRandom"][()]
    torch._dynamo.reset()  # a fresh compile for this process's first model
    with torch.inference_mode():
        logits = model.net(nchw(random_input)).numpy()
    assert np.abs(logits - ref).max() <= TF_TOL


def test_pointwise_convolutions_become_matmuls_only_where_one_size_is_seen() -> None:
    """The single-image program's rewrite (packages/pointwise.py): a 1×1 stride-1 conv run at
    one size becomes a matmul; a 1×1 shared at two sizes, a strided 1×1 and a 3×3 are kept;
    the outputs stay those of the convolutions (the compiled form's own check against
    TensorFlow is in test_compiled)."""
    from tf2torch.packages.pointwise import PointwiseMatmul, pointwise_as_matmul

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.expand, self.project = nn.Conv2d(3, 8, 1), nn.Conv2d(8, 4, 1, bias=False)
            self.shared, self.strided = nn.Conv2d(4, 4, 1), nn.Conv2d(4, 4, 1, stride=2)
            self.spatial = nn.Conv2d(4, 4, 3, padding=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.project(torch.relu(self.expand(x)))
            small = self.strided(self.spatial(y))
            return self.shared(small).mean((2, 3)) + self.shared(y).mean((2, 3))

    torch.manual_seed(0)
    net = Net().eval().to(memory_format=torch.channels_last)
    x = torch.randn(1, 3, 10, 6).contiguous(memory_format=torch.channels_last)
    expected = run(net, x)
    assert pointwise_as_matmul(net, (x,)) == 2
    assert isinstance(net.expand, PointwiseMatmul) and isinstance(net.project, PointwiseMatmul)
    assert all(type(m) is nn.Conv2d for m in (net.shared, net.strided, net.spatial))
    assert np.abs(run(net, x) - expected).max() <= EAGER_TOL * max(1.0, np.abs(expected).max())
