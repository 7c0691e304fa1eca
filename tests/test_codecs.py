"""Encoder / Decoder tests: the encoder is checked against TensorFlow's own image ops."""

from __future__ import annotations

import dataclasses
import importlib.resources
import io
import json
import re

import numpy as np
import pytest
import torch  # before tensorflow, always
import torch.nn.functional as F
from PIL import Image
from skimage import data as skdata

from tf2torch.errors import PackageError, SourceError
from tf2torch.packages import codecs
from tf2torch.packages.codecs import Decoder, Encoder, Prediction, annotate, load_label_set, load_rgb
from tf2torch.packages.codecs import encoder as encoder_module
from tf2torch.packages.codecs import labels as labels_module

# The acceptance bound is 1/255 before TF-slim's final ×2 (2/255 after); we hold ourselves to
# float32 rounding noise, which is what an exact re-implementation gives.
TIGHT = 1e-5
RNG = np.random.default_rng(1234)
MISSING = object()
PHOTOS = ["astronaut", "chelsea", "coffee", "rocket", "camera"]  # camera is grayscale
ODD = {
    "37x53": RNG.integers(0, 256, (37, 53, 3), dtype=np.uint8),
    "601x13": RNG.integers(0, 256, (601, 13, 3), dtype=np.uint8),
    "5x7": RNG.integers(0, 256, (5, 7, 3), dtype=np.uint8),
    "1x1": RNG.integers(0, 256, (1, 1, 3), dtype=np.uint8),
}


@pytest.fixture(scope="module")
def tf():
    return pytest.importorskip("tensorflow")


def photo(name: str) -> np.ndarray:
    return load_rgb(getattr(skdata, name)())


def plain(size, interpolation: str, antialias: bool = False) -> Encoder:
    """An encoder that only resizes: output = resize(pixels / 255), NHWC."""
    return Encoder(size, "central_crop_then_resize", 1.0, interpolation, antialias, 1.0,
                   (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), "RGB", "NHWC")


def slim_reference(tf, image: np.ndarray, size) -> np.ndarray:
    """TF-slim's evaluation preprocessing, run in TensorFlow (HWC)."""
    x = tf.image.convert_image_dtype(tf.constant(image), tf.float32)
    x = tf.image.central_crop(x, 0.875)
    x = tf.compat.v1.image.resize_bilinear(x[None], list(size), align_corners=False)
    return ((x - 0.5) * 2.0).numpy()[0]


def slim_ours(image, size) -> np.ndarray:
    return Encoder.slim(size)(image)[0].permute(1, 2, 0).numpy()


def write(path, array: np.ndarray, fmt: str, **kwargs) -> str:
    Image.fromarray(array).save(path, format=fmt, **kwargs)
    return str(path)


# ---------------------------------------------------------------------------------------------
# Encoder vs TensorFlow


@pytest.mark.parametrize("name", PHOTOS)
@pytest.mark.parametrize("size", [224, 299])
def test_slim_matches_tf_on_photos(tf, name, size):
    image = photo(name)
    diff = np.abs(slim_ours(image, size) - slim_reference(tf, image, (size, size))).max()
    assert diff <= TIGHT, f"{name}@{size}: max |diff| {diff:.3g}"


@pytest.mark.parametrize("name", list(ODD))
@pytest.mark.parametrize("size", [(224, 224), (97, 97), (160, 240)])
def test_slim_matches_tf_on_odd_sizes(tf, name, size):
    image = ODD[name]
    diff = np.abs(slim_ours(image, size) - slim_reference(tf, image, size)).max()
    assert diff <= TIGHT, f"{name}->{size}: max |diff| {diff:.3g}"


def test_slim_output_form():
    out = Encoder.slim(224)([photo("chelsea"), photo("rocket")])
    assert out.dtype == torch.float32 and out.shape == (2, 3, 224, 224)
    assert out.min() >= -1.0 and out.max() <= 1.0


def test_central_crop_box_is_tf_arithmetic(tf):
    for h, w in [(1, 1), (2, 3), (7, 9), (15, 16), (17, 40), (300, 451), (427, 640)]:
        for fraction in (0.875, 0.5, 0.33, 1.0):
            top, left, ch, cw = encoder_module._tf_central_crop_box(h, w, fraction)
            expected = tf.image.central_crop(np.zeros((h, w, 1), np.float32), fraction).shape
            assert (ch, cw) == tuple(expected[:2]), (h, w, fraction)
            assert top * 2 + ch == h and left * 2 + cw == w


@pytest.mark.parametrize("method", ["bilinear", "nearest", "bicubic"])
@pytest.mark.parametrize("name", ["chelsea", "37x53"])
@pytest.mark.parametrize("size", [(224, 224), (97, 301), (500, 40)])
def test_resize_matches_tf2_resize(tf, method, name, size):
    image = ODD[name] if name in ODD else photo(name)
    ours = plain(size, method)(image)[0].numpy()
    x = tf.image.convert_image_dtype(image, tf.float32)
    ref = tf.image.resize(x, size, method=method, antialias=False).numpy()
    assert np.abs(ours - ref).max() <= TIGHT


@pytest.mark.parametrize("method", ["bilinear", "bicubic"])
@pytest.mark.parametrize("size", [(224, 224), (97, 301), (500, 40)])
def test_antialias_matches_torch_antialias(method, size):
    # float64 reference: torch's float32 kernel itself strays by ~1e-5
    image = photo("rocket")
    ours = plain(size, method, antialias=True)(image)[0].numpy()
    x = torch.from_numpy(image).permute(2, 0, 1)[None].double() / 255
    ref = F.interpolate(x, size=size, mode=method, antialias=True)[0].permute(1, 2, 0).numpy()
    assert np.abs(ours - ref).max() <= 1e-6


@pytest.mark.parametrize("name", ["chelsea", "rocket", "astronaut"])
def test_imagenet_encoder_matches_pil_resize_and_crop(name):
    """torchvision's eval transform: Resize(256) (PIL, antialiased) + CenterCrop(224)."""
    image = photo(name)
    h, w = image.shape[:2]
    new_h, new_w = (256, int(256 * w / h)) if h <= w else (int(256 * h / w), 256)
    resized = np.asarray(Image.fromarray(image).resize((new_w, new_h), Image.BILINEAR))
    top, left = round((new_h - 224) / 2), round((new_w - 224) / 2)
    crop = resized[top : top + 224, left : left + 224] / 255.0
    ref = (crop - codecs.IMAGENET_MEAN) / codecs.IMAGENET_STD
    ours = Encoder.imagenet(224)(image)[0].permute(1, 2, 0).numpy()
    # PIL rounds to uint8 and uses fixed-point weights: allow one grey level.
    assert np.abs(ours - ref).max() <= 1.01 / 255 / min(codecs.IMAGENET_STD)


def test_imagenet_half_pixel_bilinear_matches_tf(tf):
    image = photo("coffee")  # 400x600 -> shorter side 256 -> 256x384 -> crop 224
    ours = Encoder.imagenet(224, antialias=False)(image)[0].permute(1, 2, 0).numpy()
    x = tf.image.resize(tf.image.convert_image_dtype(image, tf.float32), (256, 384),
                        method="bilinear", antialias=False)
    ref = (x.numpy()[16:240, 80:304] - codecs.IMAGENET_MEAN) / codecs.IMAGENET_STD
    assert np.abs(ours - ref).max() <= 1e-5


@pytest.mark.parametrize(("mode", "application"), [
    ("tf", "mobilenet_v2"), ("torch", "densenet"), ("caffe", "resnet50")])
def test_keras_modes_match_keras_preprocess_input(tf, mode, application):
    """Each Keras mode against that application's own `preprocess_input`, applied by Keras to
    the resized 0-255 pixels (the resize itself is checked against TF's above)."""
    import keras

    image = photo("chelsea")
    resized = plain((224, 224), "bilinear", antialias=True)(image)[0].numpy() * 255.0
    module = getattr(keras.applications, application)
    ref = np.asarray(module.preprocess_input(resized[None].copy()))[0]
    ours = Encoder.keras(224, mode)(image)[0].numpy()  # NHWC, like Keras's input
    assert np.abs(ours - ref).max() <= 1e-6 * max(1.0, np.abs(ref).max())  # float32 rounding
    nchw = Encoder.keras(224, mode, layout="NCHW")(image)[0].numpy()
    assert np.array_equal(nchw, ours.transpose(2, 0, 1))


def test_unknown_keras_mode_is_refused():
    with pytest.raises(PackageError, match="Keras mode"):
        Encoder.keras(224, "inception")


# ---------------------------------------------------------------------------------------------
# Encoder inputs


def test_file_paths_and_pil_and_arrays_agree(tmp_path):
    image = photo("coffee")
    png = write(tmp_path / "coffee.png", image, "PNG")
    enc = Encoder.slim(224)
    ref = enc(image)
    for source in (png, tmp_path / "coffee.png", Image.open(png)):
        torch.testing.assert_close(enc(source), ref, atol=0, rtol=0)
    batch = enc([png, image, Image.fromarray(image)])
    assert batch.shape == (3, 3, 224, 224)
    torch.testing.assert_close(batch, ref.expand(3, -1, -1, -1), atol=0, rtol=0)
    assert enc((image, image)).shape == (2, 3, 224, 224)


@pytest.mark.parametrize("name", ["chelsea", "rocket"])
def test_jpeg_file_matches_tf_decode_and_slim(tf, tmp_path, name):
    """PIL decodes JPEG like tf.io.decode_jpeg(dct_method="INTEGER_ACCURATE"), bit for bit.

    TF's default (fast integer DCT) decoder differs by a few grey levels; that is the
    decoder's choice, not the encoder's.
    """
    path = write(tmp_path / f"{name}.jpg", photo(name), "JPEG", quality=90)
    with open(path, "rb") as f:
        decoded = tf.io.decode_jpeg(f.read(), channels=3, dct_method="INTEGER_ACCURATE")
    np.testing.assert_array_equal(load_rgb(path), decoded.numpy())
    diff = np.abs(slim_ours(path, (224, 224)) - slim_reference(tf, decoded, (224, 224))).max()
    assert diff <= TIGHT


def test_grayscale_inputs_become_rgb(tf):
    gray = skdata.camera()
    rgb = tf.image.grayscale_to_rgb(tf.constant(gray[:, :, None])).numpy()
    for source in (gray, gray[:, :, None], Image.fromarray(gray)):
        np.testing.assert_array_equal(load_rgb(source), rgb)


def test_exif_orientation_is_applied(tmp_path):
    image = photo("chelsea")  # 300x451: rotation changes the shape
    for orientation, upright in [(6, np.rot90(image, -1)), (3, np.rot90(image, 2))]:
        exif = Image.Exif()
        exif[0x0112] = orientation
        path = write(tmp_path / f"o{orientation}.png", image, "PNG", exif=exif)
        np.testing.assert_array_equal(load_rgb(path), upright)
        torch.testing.assert_close(Encoder.slim(224)(path), Encoder.slim(224)(upright.copy()))


def test_transparency_is_composited_on_white(tmp_path):
    rgba = np.zeros((8, 10, 4), np.uint8)
    rgba[..., :3] = (10, 20, 30)
    rgba[:, 5:, 3] = 255  # right half opaque, left half fully transparent
    rgba[0, 0, 3] = 128
    path = write(tmp_path / "rgba.png", rgba, "PNG")
    for source in (path, rgba, Image.fromarray(rgba, "RGBA")):
        rgb = load_rgb(source)
        assert rgb.shape == (8, 10, 3)
        assert (rgb[1:, :5] == 255).all() and (rgb[:, 5:] == (10, 20, 30)).all()
        assert 128 <= rgb[0, 0, 0] <= 134  # half way between 10 and 255
    palette = Image.new("P", (4, 3), 0)
    palette.putpalette([10, 20, 30])
    palette.info["transparency"] = 0
    assert (load_rgb(palette) == 255).all()


def test_other_modes(tmp_path):
    gray8 = RNG.integers(0, 256, (6, 9), dtype=np.uint8)
    path16 = tmp_path / "gray16.png"
    Image.fromarray(gray8.astype(np.uint16) * 257).save(path16)
    np.testing.assert_array_equal(load_rgb(path16), np.repeat(gray8[:, :, None], 3, 2))
    cmyk = Image.fromarray(photo("coffee")).convert("CMYK")
    assert load_rgb(cmyk).shape == (400, 600, 3)


def test_unreadable_files_name_themselves(tmp_path):
    garbage = tmp_path / "garbage.jpg"
    garbage.write_bytes(b"this is not an image")
    buf = io.BytesIO()
    Image.fromarray(photo("chelsea")).save(buf, format="JPEG")
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    for path in (garbage, truncated, tmp_path / "missing.png", tmp_path):
        with pytest.raises(SourceError, match=re.escape(str(path))):
            Encoder.slim(224)(str(path))


def test_bad_arguments():
    enc = Encoder.slim(224)
    with pytest.raises(ValueError, match="no images"):
        enc([])
    with pytest.raises(ValueError, match="uint8"):
        enc(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(ValueError, match="HxW"):
        enc(np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(TypeError, match="file path"):
        enc(42)


# ---------------------------------------------------------------------------------------------
# Encoder as data


def test_encoder_round_trips_through_json():
    for enc in (Encoder.slim(224), Encoder.imagenet((240, 320)), Encoder.keras(299, "caffe")):
        back = Encoder.from_dict(json.loads(json.dumps(enc.to_dict())))
        assert back == enc and hash(back) == hash(enc)
    assert Encoder.slim(224).to_dict() == {
        "size": [224, 224], "resize": "central_crop_then_resize", "crop_fraction": 0.875,
        "interpolation": "bilinear_tf_legacy", "antialias": False, "value_range": 1.0,
        "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "channel_order": "RGB",
        "layout": "NCHW",
    }
    assert Encoder.slim(224).sample_shape == (3, 224, 224)
    assert Encoder.keras(224, "tf").sample_shape == (224, 224, 3)


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        ({"colour": "blue"}, "colour"),
        ({"size": MISSING}, "size"),
        ({"size": [224]}, "size"),
        ({"crop_fraction": 0.0}, "crop_fraction"),
        ({"interpolation": "lanczos"}, "interpolation"),
        ({"interpolation": "nearest", "antialias": True}, "antialias"),
        ({"mean": [0.5, 0.5]}, "mean"),
        ({"std": [0.5, 0.0, 0.5]}, "std"),
        ({"channel_order": "GBR"}, "channel_order"),
        ({"layout": "CHW"}, "layout"),
        ({"resize": "stretch"}, "resize"),
    ],
)
def test_encoder_from_dict_names_the_bad_field(edit, field):
    d = {**Encoder.slim(224).to_dict(), **edit}
    d = {k: v for k, v in d.items() if v is not MISSING}
    with pytest.raises(PackageError, match=f"'{field}'"):
        Encoder.from_dict(d)


def test_encoder_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        Encoder.slim(224).size = (1, 1)


# ---------------------------------------------------------------------------------------------
# Labels and Decoder


def test_imagenet_label_file():
    labels = load_label_set("imagenet-1k")
    wnids = [w for w, _ in labels]
    assert len(labels) == 1000 and len(set(wnids)) == 1000 and wnids == sorted(wnids)
    assert all(re.fullmatch(r"n\d{8}", w) for w in wnids)
    assert labels[0] == ("n01440764", "tench, Tinca tinca")
    assert labels[1][0] == "n01443537" and labels[1][1].startswith("goldfish")
    assert labels[281][0] == "n02123045" and "tabby cat" in labels[281][1]
    assert labels[999][0] == "n15075141" and labels[999][1].startswith("toilet tissue")
    text = (importlib.resources.files("tf2torch") / "data/imagenet1k_labels.tsv")
    assert "Apache-2.0" in text.read_text(encoding="utf-8").split("\n", 3)[1]


def test_background_form_is_shifted_by_one():
    keras, slim = Decoder.imagenet(1000), Decoder.imagenet(1001)
    assert (keras.background_offset, slim.background_offset) == (0, 1)
    assert slim.entries()[0] == (None, "background")
    assert slim.entries()[1:] == keras.entries()


def test_top_k_on_crafted_batch():
    logits = torch.full((3, 1001), -5.0)
    logits[0, 282] = 9.0  # slim index 282 = Keras 281 = tabby
    logits[0, 1] = 8.0
    logits[1, 0] = 3.0  # background wins
    logits[2, 1000] = 4.0
    rows = Decoder.imagenet(1001)(logits, top=3)
    assert len(rows) == 3 and all(len(r) == 3 for r in rows)
    assert [(p.index, p.wnid) for p in rows[0][:2]] == [(282, "n02123045"), (1, "n01440764")]
    assert rows[0][0].short_label == "tabby"
    assert (rows[1][0].index, rows[1][0].wnid, rows[1][0].label) == (0, None, "background")
    assert rows[2][0].label.startswith("toilet tissue")
    assert all(r[0].probability > r[1].probability >= r[2].probability for r in rows)
    keras_rows = Decoder.imagenet(1000)(logits[:, 1:].numpy(), top=1)
    assert keras_rows[0][0] == Prediction(281, "n02123045", rows[0][0].label,
                                          keras_rows[0][0].probability)


def test_softmax_versus_probabilities():
    probs = torch.tensor([[0.1, 0.6, 0.3], [0.25, 0.25, 0.5]], dtype=torch.float64)
    dec = Decoder.custom(["a", "b", "c"])
    as_probs = dec(probs, top=3, apply_softmax=False)
    from_logits = dec(probs.log() + 7.0, top=3)  # softmax is shift-invariant
    assert [p.label for p in as_probs[0]] == ["b", "c", "a"]
    assert [p.probability for p in as_probs[0]] == [0.6, 0.3, 0.1]
    for row_a, row_b in zip(as_probs, from_logits, strict=True):
        assert [p.index for p in row_a] == [p.index for p in row_b]
        assert [p.probability for p in row_a] == pytest.approx([p.probability for p in row_b])
    assert [p.label for p in as_probs[1]] == ["c", "a", "b"]  # ties keep index order
    assert sum(p.probability for p in dec(torch.randn(1, 3), top=10)[0]) == pytest.approx(1)


def test_decoder_argument_errors():
    dec = Decoder.imagenet(1000)
    with pytest.raises(ValueError, match=r"\(batch, 1000\)"):
        dec(torch.zeros(1000))
    with pytest.raises(ValueError, match=r"\(batch, 1000\)"):
        dec(torch.zeros(2, 1001))
    with pytest.raises(ValueError, match="top"):
        dec(torch.zeros(1, 1000), top=0)


def test_decoder_factories():
    with pytest.raises(PackageError, match=r"'num_classes'.*1000 or 1001"):
        Decoder.imagenet(37)
    head = Decoder.imagenet(2, labels=["cat", "dog"])
    assert head == Decoder.custom(["cat", "dog"]) and head.label_set is None
    assert head(torch.tensor([[0.0, 1.0]]))[0][0] == Prediction(
        1, None, "dog", pytest.approx(0.7310585786))
    with pytest.raises(PackageError, match="'labels'"):
        Decoder.imagenet(3, labels=["cat", "dog"])


def test_decoder_round_trips_through_json():
    for dec in (Decoder.imagenet(1000), Decoder.imagenet(1001), Decoder.custom(["x", "y"])):
        assert Decoder.from_dict(json.loads(json.dumps(dec.to_dict()))) == dec
    assert Decoder.imagenet(1001).to_dict() == {
        "num_classes": 1001, "label_set": "imagenet-1k", "background_offset": 1, "labels": None,
    }


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        ({"extra": 1}, "extra"),
        ({"num_classes": 1000}, "num_classes"),
        ({"label_set": "imagenet-21k"}, "label_set"),
        ({"labels": ["a"]}, "labels"),
        ({"label_set": None, "labels": "abc"}, "labels"),
        ({"label_set": None, "labels": []}, "labels"),
        ({"background_offset": 2}, "background_offset"),
    ],
)
def test_decoder_from_dict_names_the_bad_field(edit, field):
    with pytest.raises(PackageError, match=f"'{field}'"):
        Decoder.from_dict({**Decoder.imagenet(1001).to_dict(), **edit})
    d = Decoder.imagenet(1001).to_dict()
    del d["labels"]
    with pytest.raises(PackageError, match="'labels' is missing"):
        Decoder.from_dict(d)


def test_missing_label_file_is_a_package_error(monkeypatch):
    monkeypatch.setitem(labels_module.LABEL_FILES, "imagenet-1k", ("nowhere.tsv", 1000))
    load_label_set.cache_clear()
    try:
        with pytest.raises(PackageError, match=r"nowhere\.tsv"):
            Decoder.imagenet(1000)
    finally:
        load_label_set.cache_clear()


# ---------------------------------------------------------------------------------------------
# Annotation


def test_annotate_writes_png_of_the_image_size(tmp_path):
    image = photo("chelsea")
    preds = Decoder.imagenet(1000)(torch.arange(1000.0)[None], top=3)[0]
    out = annotate(image, preds, tmp_path / "annotated.png")
    with Image.open(out) as im:
        assert im.format == "PNG" and im.mode == "RGB" and im.size == (451, 300)
        drawn = np.asarray(im)
    assert not np.array_equal(drawn[:20, :60], image[:20, :60])  # the label box
    np.testing.assert_array_equal(drawn[-50:, -50:], image[-50:, -50:])  # the rest untouched
