"""`predict` over a folder streams: decoded ahead in a thread, in order, TensorFlow's answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
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
