"""`predict` over a folder streams: decoded ahead in a thread, in order, TensorFlow's answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import tf2torch
from tf2torch.packages.predict import collect_images, predict_files

skimage_data = pytest.importorskip("skimage.data")


def test_streamed_predictions_are_the_frozen_graphs_in_order(standin, tmp_path: Path) -> None:
    from tf2torch.references.tensorflow import frozen_graph_reference

    release = standin(0.35, 96)
    tf2torch.convert(release.archive, tmp_path / "pkg", verify=False)
    folder = tmp_path / "photos"
    folder.mkdir()
    names = ["astronaut", "chelsea", "coffee", "rocket", "camera"]
    for i, name in enumerate(names):
        Image.fromarray(getattr(skimage_data, name)()).save(folder / f"{i}_{name}.jpg")
    (folder / "2a_broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    model = tf2torch.load(tmp_path / "pkg", inference=True)
    paths = collect_images([folder])
    results = predict_files(model, paths, top=3, batch_size=2, prefetch=1)
    assert [Path(r.path).name for r in results] == [p.name for p in paths]  # order kept
    broken = [r for r in results if r.error]
    assert [Path(r.path).name for r in broken] == ["2a_broken.jpg"]
    reference = frozen_graph_reference(next(release.prefix.parent.glob("*_frozen.pb")))
    for result in results:
        if result.error:
            continue
        encoded = model.encoder([result.path]).numpy().transpose(0, 2, 3, 1)
        probabilities = reference.run(encoded)["probabilities"][0]
        top = np.argsort(-probabilities)[:3]
        assert [p.index for p in result.predictions] == list(top)
        assert np.allclose([p.probability for p in result.predictions], probabilities[top],
                           atol=1e-5)


def test_a_failure_while_decoding_reaches_the_caller(standin, tmp_path: Path,
                                                     monkeypatch) -> None:
    release = standin(0.35, 96)
    tf2torch.convert(release.archive, tmp_path / "pkg", verify=False)
    model = tf2torch.load(tmp_path / "pkg")
    image = tmp_path / "a.png"
    Image.fromarray(skimage_data.astronaut()).save(image)
    monkeypatch.setattr(type(model.encoder), "encode_rgb", lambda self, rgb: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        predict_files(model, [image] * 5, batch_size=2)


class _Elsewhere(torch.nn.Module):
    """Stands in for a net on a GPU (this machine has none): it keeps a buffer on the meta
    device, records where its input was, and answers with the wrapped net's CPU logits."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.answer, self.seen = [net], []  # in a list: not a submodule, its weights not ours
        self.register_buffer("marker", torch.empty(1, device="meta"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.device.type)
        return self.answer[0](torch.zeros(x.shape))


def test_inputs_go_to_the_nets_device(standin, tmp_path: Path) -> None:
    release = standin(0.35, 96)
    tf2torch.convert(release.archive, tmp_path / "pkg", verify=False)
    model = tf2torch.load(tmp_path / "pkg")
    assert model.device == torch.device("cpu")
    model.net = _Elsewhere(model.net)
    assert model.device.type == "meta"
    image = tmp_path / "a.png"
    Image.fromarray(skimage_data.astronaut()).save(image)
    assert len(model.classify([image], top=2)[0]) == 2
    assert len(predict_files(model, [image] * 3, batch_size=2)) == 3
    assert model.net.seen == ["meta"] * 3  # classify's batch, then predict's two


@pytest.mark.parametrize("options, says", [
    (("--device", "cuda:99"), "--device cuda:99: torch cannot run there"),
    (("--device", "nonsense"), "--device nonsense: torch cannot run there"),
    (("--device", "cuda", "--backend", "torch-fast"), "runs --backend torch"),
    (("--device", "cuda", "--engine", "ray"), "give them GPUs with --num-gpus"),
])
def test_predict_refuses_a_device_it_cannot_use(options, says, tmp_path, capsys) -> None:
    from tf2torch.cli import main

    image = tmp_path / "a.png"
    Image.fromarray(skimage_data.astronaut()).save(image)
    assert main(["predict", str(tmp_path / "no-package"), str(image), *options]) == 2
    out, err = capsys.readouterr()
    assert says in err and not out
