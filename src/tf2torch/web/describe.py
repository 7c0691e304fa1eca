"""A model card in words and table rows: what the pages print about a package.

Pure functions of the card (no web framework): the index, the model page, the static site
and the JSON API all read the same descriptions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tf2torch.packages.card import Card
from tf2torch.packages.codecs import Decoder, Encoder

FORMAT_NAMES = {
    "tf-checkpoint": "TF-slim checkpoint",
    "keras": "Keras",
    "tflite": "TFLite",
}

_RESIZE_WORDS = {
    "central_crop_then_resize": "crop the central {crop} of the image, then resize it to {size}",
    "resize_shorter_then_center_crop": "resize to {scaled} (shorter side), then crop the "
                                       "central {size}",
}
_INTERPOLATION_WORDS = {
    "bilinear_tf_legacy": "bilinear, TF1 sampling (align_corners=False, no half-pixel offset)",
    "bilinear": "bilinear, half-pixel centres (TF2 tf.image.resize)",
    "nearest": "nearest neighbour (TF2)",
    "bicubic": "bicubic, Keys a=−0.5 (TF2)",
}


@dataclass(frozen=True)
class Badge:
    """The verification status at a glance: a CSS class, a word and a sentence."""

    kind: str      # pass | spread | fail | none
    text: str
    title: str


def format_name(card: Card) -> str:
    fmt = str(card.source.get("format", "?"))
    return FORMAT_NAMES.get(fmt, fmt)


def task(card: Card) -> str:
    if card.decoder:
        return f"image classification ({card.decoder['num_classes']} classes)"
    outputs = output_rows(card)
    return f"graph model ({len(outputs)} output{'s' * (len(outputs) != 1)})" if outputs \
        else "graph model"


def badge(card: Card) -> Badge:
    ver = card.verification
    if not ver:
        return Badge("none", "not verified", "no reference was at hand when it was converted")
    rows = ver.get("comparisons", [])
    reference = f"against {ver.get('reference')} on {ver.get('date')}"
    if not ver.get("passed"):
        failed = sum(not r.get("passed") for r in rows)
        return Badge("fail", "FAIL", f"{failed} of {len(rows)} comparisons above the bound, {reference}")
    if any(r.get("within_spread") for r in rows):
        return Badge("spread", "ok*", f"within the spread of the original's own runtimes, {reference}")
    return Badge("pass", "verified", f"all {len(rows)} comparisons within the bound, {reference}")


def human_count(n: int | None) -> str:
    """6110569 → '6.11 M'; None → '–'."""
    if n is None:
        return "–"
    for size, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return str(n)


def human_bytes(n: int) -> str:
    for size, unit in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def status_text(row: dict[str, Any]) -> str:
    if row.get("within_spread"):
        return f"ok* (runtimes' spread {row.get('reference_spread', 0):.1e})"
    return "ok" if row.get("passed") else "FAIL"


def verification_rows(card: Card) -> list[dict[str, str]]:
    """Every comparison of the card's verification, formatted for a table."""
    rows = []
    for row in (card.verification or {}).get("comparisons", []):
        rows.append({
            "case": row["case"], "output": row["output"],
            "shape": "×".join(map(str, row["shape"])),
            "max_abs": f"{row['max_abs']:.2e}", "max_rel": f"{row['max_rel']:.2e}",
            "bound": f"{row['bound']:.0e}",
            "top1": _pct(row.get("top1_agreement")), "top5": _pct(row.get("top5_agreement")),
            "status": status_text(row), "kind": "pass" if row.get("passed") and not
            row.get("within_spread") else ("spread" if row.get("passed") else "fail"),
        })
    return rows


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.0f}%"


def input_rows(card: Card) -> list[dict[str, str]]:
    """Name, shape (batch first), layout and dtype of every input the module takes."""
    layout = str(card.input.get("layout", "nchw")).upper()
    graph = card.config.get("graph") if card.architecture.endswith("-graph") else None
    if graph and len(graph.get("inputs", [])) > 1:
        return [{"name": i["name"], "shape": _shape(["N", *i["shape"]]),
                 "layout": "source's", "dtype": i.get("dtype", "float32")}
                for i in graph["inputs"]]
    name = graph["inputs"][0]["name"] if graph and graph.get("inputs") else "images"
    return [{"name": name, "shape": _shape(["N", *card.input.get("shape", [])]),
             "layout": layout if len(card.input.get("shape", [])) == 3 else "–",
             "dtype": str(card.input.get("dtype", "float32"))}]


def output_rows(card: Card) -> list[dict[str, str]]:
    """Every output in the module's order: from the verification run (which measured their
    shapes), else the graph's output names."""
    seen: dict[str, dict[str, str]] = {}
    for row in (card.verification or {}).get("comparisons", []):
        if row["output"] not in seen:
            shape = ["N", *row["shape"][1:]]
            derived = card.decoder is not None and row["output"] == "probabilities" \
                and not card.architecture.endswith("-graph")
            seen[row["output"]] = {"name": row["output"], "shape": _shape(shape),
                                   "note": "softmax of the logits (decoder)" if derived
                                   else "returned by the module"}
    if seen:
        return list(seen.values())
    graph = card.config.get("graph") if card.architecture.endswith("-graph") else None
    names = (graph or {}).get("output_names") or (["logits"] if card.decoder else [])
    return [{"name": n, "shape": "not measured (unverified)", "note": "returned by the module"}
            for n in names]


def _shape(dims: list[Any]) -> str:
    return " × ".join("?" if d is None else str(d) for d in dims)


def encoder_words(encoder: dict[str, Any] | None) -> list[str]:
    """The pre-processing as steps a person can check against the original's."""
    if not encoder:
        return ["none recorded: the module takes the tensor the source model expects; "
                "convert with --preprocess to record one"]
    enc = Encoder.from_dict(encoder)
    h, w = enc.size
    size = f"{h}×{w}"
    scaled = "×".join(str(int(s / enc.crop_fraction)) for s in enc.size)
    plain = enc.resize == "central_crop_then_resize" and enc.crop_fraction == 1.0
    resize = f"resize to {size}" if plain else _RESIZE_WORDS[enc.resize].format(
        crop=f"{enc.crop_fraction:.1%}", size=size, scaled=scaled)
    steps = ["decode to RGB (EXIF orientation applied, transparency on white)", resize,
             f"interpolation: {_INTERPOLATION_WORDS[enc.interpolation]}"
             + (", antialiased when shrinking" if enc.antialias else "")]
    scale = "pixels as 0–255" if enc.value_range == 255.0 else "pixels / 255 (0–1)"
    if enc.channel_order == "BGR":
        steps.append("reorder channels to BGR")
    if any(m != 0 for m in enc.mean) or any(s != 1 for s in enc.std):
        lo = [(0 - m) / s for m, s in zip(enc.mean, enc.std, strict=True)]
        hi = [(enc.value_range - m) / s for m, s in zip(enc.mean, enc.std, strict=True)]
        steps.append(f"{scale}, then (x − mean) / std with mean {_triple(enc.mean)}, std "
                     f"{_triple(enc.std)} → range {_range(lo, hi)}")
    else:
        steps.append(scale)
    steps.append(f"layout {enc.layout} (batch × " + ("channels × height × width)"
                 if enc.layout == "NCHW" else "height × width × channels)"))
    return steps


def _triple(values: tuple[float, ...]) -> str:
    return "(" + ", ".join(f"{v:g}" for v in values) + ")"


def _range(lo: list[float], hi: list[float]) -> str:
    if max(lo) - min(lo) < 1e-6 and max(hi) - min(hi) < 1e-6:
        return f"[{lo[0]:.3g}, {hi[0]:.3g}]"
    return f"[{min(lo):.3g}, {max(hi):.3g}] per channel"


def decoder_words(decoder: dict[str, Any] | None) -> list[str]:
    """The label decoder in words: which classes, where the background class sits."""
    if not decoder:
        return ["none recorded: the outputs are returned as tensors"]
    dec = Decoder.from_dict(decoder)
    named = dec.num_classes - dec.background_offset
    what = "ImageNet-1k (WordNet ids and names shipped with tf2torch)" if dec.label_set \
        else "the package's own class names"
    words = [f"{dec.num_classes} scores → softmax → the top classes, named from {what}"]
    if dec.background_offset:
        words.append(f"index 0 is TF-slim's 'background' class; indices 1–{named} are the "
                     f"{named} named classes")
    if dec.labels is not None:
        shown = ", ".join(dec.labels[:8]) + (", …" if len(dec.labels) > 8 else "")
        words.append(f"classes: {shown}")
    return words


def load_snippet(card: Card) -> str:
    """Python that loads the package and uses it, to copy and paste."""
    lines = ["import tf2torch", "", f'model = tf2torch.load("{card.name}")   '
             "# or the path of the package folder",
             "model.net                    # a plain torch.nn.Module, eval mode"]
    if card.encoder and card.decoder:
        lines.append('model.classify("photo.jpg", top=5)   # encoder + net + decoder')
    elif card.encoder:
        lines += ["batch = model.encoder(\"photo.jpg\")   # the recorded pre-processing",
                  "outputs = model.net(batch)"]
    else:
        shape = ", ".join(str(d) for d in card.input.get("shape", []))
        lines += ["import torch", f"outputs = model.net(torch.zeros(1, {shape}))"]
    return "\n".join(lines)


def cli_snippet(card: Card) -> str:
    lines = [f"tf2torch show {card.name}"]
    if card.encoder and card.decoder:
        lines.append(f"tf2torch predict {card.name} photo.jpg --top 5")
    lines.append(f"tf2torch export {card.name} --onnx {card.name}.onnx")
    return "\n".join(lines)


def mapping_words(card: Card) -> str | None:
    m = card.mapping
    if not m:
        return None
    return (f"{m.get('used')} source tensors mapped, {len(m.get('ignored', []))} ignored with "
            f"a reason, nothing missing; {'EMA shadows' if m.get('ema') else 'raw weights'} used")
