"""The single-image program's plan (`single_image.py`): chosen by CPU vendor or by the user,
each plan's program verified against TensorFlow, the `onednn` plan taking from oneDNN
exactly the layers it would repack at another thread count, and the `onednn-cached` plan
handing every convolution to tf2torch's own op (run without it where the op cannot load)."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import torch
from torch import nn

import tf2torch
from tf2torch.errors import UsageError
from tf2torch.packages import native_ops, single_image
from tf2torch.packages.blocked_convs import block_for_this_cpu
from tf2torch.packages.compiled import CompiledNet
from tf2torch.packages.single_image import chosen_plan, default_plan, planned_program

aten = torch.ops.aten


@pytest.mark.parametrize(("vendor", "plan", "key_end"), [
    ("GenuineIntel", "mkl", "-intel"), ("AuthenticAMD", "onednn-cached", "-amd"),
    (None, "onednn-cached", f"-{torch.backends.cpu.get_cpu_capability().lower()}")])
def test_the_default_plan_and_the_compiled_key_follow_the_cpu_vendor(
        tmp_path, monkeypatch, vendor, plan, key_end):
    """A program planned for one vendor is not another's: the key names the vendor. (The
    `[native]` extra is installed by `make test`: its op must load here.)"""
    from tf2torch.packages.compiled import this_machine

    cpuinfo = tmp_path / "cpuinfo"
    if vendor:
        cpuinfo.write_text(f"processor\t: 0\nvendor_id\t: {vendor}\ncpu family\t: 25\n")
    monkeypatch.setattr(single_image, "_CPUINFO", cpuinfo)
    monkeypatch.setattr(single_image.platform, "machine", lambda: "x86_64")
    assert default_plan() == (plan, f"CPU vendor {vendor or 'unknown'}")
    assert chosen_plan(None) == default_plan()
    assert chosen_plan("mkl") == ("mkl", "chosen by the user")
    assert this_machine().key.endswith(key_end)


def test_without_the_native_op_the_default_is_onednn_and_says_why(tmp_path, monkeypatch):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\n")
    monkeypatch.setattr(single_image, "_CPUINFO", cpuinfo)
    monkeypatch.setattr(single_image, "unavailable", lambda: "no C++ compiler (g++) on PATH")
    assert default_plan() == ("onednn", "CPU vendor AuthenticAMD; tf2torch's oneDNN op is "
                              "unavailable: no C++ compiler (g++) on PATH")


def test_an_unknown_plan_is_refused_by_name():
    with pytest.raises(UsageError, match=r"'fast'.*mkl, onednn"):
        chosen_plan("fast")


class Layers(nn.Module):
    """Two 1×1 layers, one of which oneDNN packs differently at 1 and 2 threads on this
    project's machines (which one depends on its kernels: `project`, 256→1024 at 14×14,
    under AVX-512; `expand`, 64→256, under AVX2: tests/test_packing.py), a depthwise and a
    full 3×3 layer."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.narrow = nn.Conv2d(32, 64, 3, padding=1)
        self.expand = nn.Conv2d(64, 256, 1)
        self.depthwise = nn.Conv2d(256, 256, 3, padding=1, groups=256)
        self.project = nn.Conv2d(256, 1024, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(self.depthwise(self.expand(self.narrow(x))))


def _ops(module) -> dict:
    nodes = [n.target for n in module.graph.nodes if n.op == "call_function"]
    return {"bmm": nodes.count(aten.bmm.default), "conv": nodes.count(aten.conv2d.default),
            "native": nodes.count(torch.ops.tf2torch.conv.default)}


@pytest.fixture
def two_threads(monkeypatch):
    monkeypatch.delenv("TF2TORCH_THREADS", raising=False)
    own = torch.get_num_threads()
    torch.set_num_threads(2)  # the compile's count; the rule may also pick 1 here
    yield
    torch.set_num_threads(own)


def _planned(plan: str):
    one = (torch.zeros(1, 32, 14, 14),)
    with torch.no_grad():
        return planned_program(Layers().eval(), one, "nchw", plan)


def test_the_onednn_plan_takes_from_onednn_only_what_it_would_repack(two_threads):
    from tf2torch.packages.packing import repacked_by_thread_count, rule_counts

    with torch.no_grad():  # oneDNN's own answer for these layers on this CPU
        exported = torch.export.export(Layers().eval(), (torch.zeros(1, 32, 14, 14),))
    unstable = repacked_by_thread_count(exported.module(), rule_counts())
    expected = sorted({name for names in unstable.values() for name in names})
    assert expected in (["project"], ["expand"])  # one 1×1 layer, as described above
    _, module, taken, repacked = _planned("onednn")
    assert taken == expected and repacked == {}
    # the other 1×1, the depthwise and the 3×3 layer stay oneDNN's
    assert _ops(module) == {"bmm": 1, "conv": 3, "native": 0}


def test_the_mkl_plan_makes_every_pointwise_layer_a_product_and_depthwise_sums(two_threads):
    _, module, taken, _ = _planned("mkl")
    assert taken == []
    assert _ops(module) == {"bmm": 2, "conv": 1, "native": 0}  # only the full 3×3 stays


def test_the_cached_plan_hands_every_convolution_to_the_native_op(two_threads):
    """Layers oneDNN packs per thread count included: the op packs once per count."""
    _, module, taken, repacked = _planned("onednn-cached")
    assert taken == [] and repacked == {}
    assert _ops(module) == {"bmm": 0, "conv": 0, "native": 4}


class Gated(nn.Module):
    """A channel gate (pool, 1×1 squeeze, SiLU, 1×1 excite, sigmoid, product) on a 1×1
    layer's output, then a pool and a single-pixel 1×1 layer too large for a gate."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.expand = nn.Conv2d(32, 96, 1)
        self.squeeze, self.excite = nn.Conv2d(96, 8, 1), nn.Conv2d(8, 96, 1)
        self.head = nn.Conv2d(96, 1000, 1)  # 96 000 weights: no gate's

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.expand(x)
        gate = torch.sigmoid(self.excite(nn.functional.silu(self.squeeze(x.mean((2, 3), True)))))
        return self.head((x * gate).mean((2, 3), True))


def test_the_cached_plan_makes_a_channel_gates_layers_products_for_inductor(two_threads):
    """A gate's two single-pixel layers become products, which Inductor fuses with the
    gate's pool and activations (two op calls fewer a gate); the rest stay the op's."""
    net, one = Gated().eval(), (torch.randn(1, 32, 14, 14),)
    with torch.no_grad():
        _, module, _, _ = planned_program(net, one, "nchw", "onednn-cached")
        assert _ops(module) == {"bmm": 2, "conv": 0, "native": 2}
        assert (module(*one) - net(*one)).abs().max() < 1e-5


def test_a_depthwise_layer_oneDNN_would_repack_becomes_sums(two_threads, monkeypatch):
    """No depthwise shape is known to be packed per thread count here; told one is, the plan
    rewrites that layer (and only it) as sums."""
    monkeypatch.setattr(single_image, "repacked_by_thread_count",
                        lambda gm, counts: {1: ["depthwise"]})
    _, module, taken, _ = _planned("onednn")
    assert "depthwise" in taken
    assert _ops(module) == {"bmm": 0, "conv": 3, "native": 0}


@pytest.fixture(scope="module")
def release(standin):
    return standin(0.35, 96)


@pytest.mark.parametrize("plan", ["mkl", "onednn", "onednn-cached"])
def test_each_plan_compiles_a_single_image_program_that_matches_tensorflow(
        release, tmp_path, monkeypatch, caplog, plan):
    """Whatever this machine's default, each plan builds a program that gives TensorFlow's
    logits image by image, and the manifest says which plan and why. An `onednn-cached`
    build's any-batch program runs the op too (on blocked activations): where the op cannot
    load, or has another schema, the compiled form is ignored with a note; were only the
    single-image program to call it, that one is skipped and the other runs single images."""
    out = tmp_path / "mnv2"  # the home (the seal's key) is the test's own: conftest.py
    tf2torch.convert(release.archive, out, verify=False)
    manifest = tf2torch.api.compile_package(out, plan=plan)
    assert manifest.one_image_plan["plan"] == plan
    assert manifest.one_image_plan["why"] == "chosen by the user"
    stored = json.loads(next((out / "compiled").glob("*.json")).read_text())
    assert stored["one_image_plan"]["plan"] == plan
    net = tf2torch.load(out, inference=True).net.net
    with h5py.File(release.tests_h5) as f:
        x, expected = f["RandomInput"][()].transpose(0, 3, 1, 2), f["LogitsForRandom"][()]
    with torch.inference_mode():
        for i in range(len(x)):
            got = net(torch.from_numpy(np.ascontiguousarray(x[i:i + 1]))).numpy()
            assert np.abs(got - expected[i:i + 1]).max() < 1e-4
    assert net._runner._library is None  # single images ran the plan's own program
    if plan != "onednn-cached":
        return
    assert stored["one_image_plan"]["op_schema"] == native_ops.schema()
    # batches run the any-batch program, its convolutions the op's on blocked activations
    assert stored["one_image_plan"]["any_batch_block"] == block_for_this_cpu() is not None
    with torch.inference_mode():
        got = net(torch.from_numpy(np.ascontiguousarray(x))).numpy()
    assert np.abs(got - expected).max() < 1e-4
    assert net._runner._library is not None
    manifest_path = next((out / "compiled").glob("*.json"))
    stored["one_image_plan"]["op_schema"] = "tf2torch::conv(Tensor x) -> Tensor"  # an older op
    manifest_path.write_text(json.dumps(stored))
    assert not isinstance(tf2torch.load(out, inference=True).net.net, CompiledNet)
    assert "compiled form ignored: its program calls tf2torch's oneDNN ops by other schemas " \
        "than this tf2torch's (built by an older version): run tf2torch compile again" \
        in caplog.text
    monkeypatch.setattr(native_ops, "unavailable", lambda: "libdnnl.so.3 is not in /x")
    stored["one_image_plan"]["op_schema"] = native_ops.schema()
    manifest_path.write_text(json.dumps(stored))
    assert not isinstance(tf2torch.load(out, inference=True).net.net, CompiledNet)
    assert "compiled form ignored: its program calls tf2torch's oneDNN op: libdnnl.so.3 is " \
        "not in /x" in caplog.text
    # an any-batch program of ATen's convolutions (a CPU with no block) still runs images
    stored["one_image_plan"]["any_batch_block"] = None
    manifest_path.write_text(json.dumps(stored))
    net = tf2torch.load(out, inference=True).net.net
    assert net._one_image is None
    assert "single-image program skipped: its program calls tf2torch's oneDNN op: " \
        "libdnnl.so.3 is not in /x" in caplog.text
    with torch.inference_mode():
        got = net(torch.from_numpy(np.ascontiguousarray(x[:1]))).numpy()
    assert np.abs(got - expected[:1]).max() < 1e-4


def test_compile_passes_the_plan_and_says_which_ran(monkeypatch, capsys):
    import tf2torch.api
    from tf2torch.cli import main
    from tf2torch.packages.compiled import Manifest, this_machine

    asked = []
    manifest = Manifest(this_machine(), "weights", "program", "seal", [[14, 14, 32]],
                        (1, 1024), "the original's outputs", None, 1.0, "2026-11-29",
                        one_image_plan={"plan": "onednn", "why": "chosen by the user",
                                        "taken_from_onednn": ["net.project"]})
    monkeypatch.setattr(tf2torch.api, "compile_package",
                        lambda name, plan=None: asked.append(plan) or manifest)
    assert main(["compile", "layers", "--plan", "onednn"]) == 0
    assert asked == ["onednn"]
    out = capsys.readouterr().out
    assert "single-image program: plan onednn (chosen by the user)" in out
    assert "1 layer(s) taken from oneDNN" in out and "(net.project)" in out
    with pytest.raises(SystemExit):
        main(["compile", "layers", "--plan", "fast"])
