"""Model packages: `model.safetensors` + `card.json` + a generated `README.md` (+ `labels.txt`).

The layout is that of a model-hub repository (config + safetensors + README), so a package
folder can be pushed as-is. Writing goes through `repository.staged_write`, so a package is
either complete or absent.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from tf2torch.errors import PackageError
from tf2torch.packages.card import Card, check_string_sizes
from tf2torch.packages.codecs import Decoder, Encoder, Prediction
from tf2torch.packages.repository import staged_write
from tf2torch.util.files import open_regular

WEIGHTS = "model.safetensors"
CARD = "card.json"


def sha256_file(path: Path) -> str:
    """The sha256 of a package file: a regular file, never followed through a link."""
    digest = hashlib.sha256()
    with open_regular(path, path.name, PackageError, follow=False) as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def state_for_saving(net: nn.Module) -> dict[str, torch.Tensor]:
    """Contiguous tensors, no two sharing memory (safetensors refuses aliases); copied only
    where that is not so already (copying all 24 MB of MobileNetV2 cost 0.1-0.2 s)."""
    seen: set[int] = set()
    state = {}
    for key, tensor in net.state_dict().items():
        tensor = tensor.detach().cpu()  # a net on a GPU is saved from host memory
        storage = tensor.untyped_storage()
        whole = tensor.is_contiguous() and storage.nbytes() == tensor.numel() * tensor.element_size()
        if not whole or storage.data_ptr() in seen:
            tensor = tensor.contiguous().clone()
        seen.add(tensor.untyped_storage().data_ptr())
        state[key] = tensor
    return state


def write_package(destination: Path, net: nn.Module, card_fields: dict[str, Any],
                  overwrite: bool = False, files: Mapping[str, bytes] | None = None) -> Card:
    """Write a complete package at `destination` atomically and return its card.

    `card_fields` is every card field except `weights_sha256`, which is computed here;
    `files` are optional package files (`attachments`) written with it.
    """
    for key, value in card_fields.items():  # before anything is written
        check_string_sizes(value, key)
    with staged_write(destination, overwrite) as stage:
        for name, data in (files or {}).items():
            (stage / name).write_bytes(data)
        save_file(state_for_saving(net), str(stage / WEIGHTS))
        card = Card(**card_fields, weights_sha256=sha256_file(stage / WEIGHTS))
        (stage / CARD).write_text(card.to_json(), encoding="utf-8")
        from tf2torch.packages.modelcard import render_readme

        (stage / "README.md").write_text(render_readme(card), encoding="utf-8")
    return card


def build_module(card: Card) -> nn.Module:
    """The card's architecture, built from its config (no source file needed)."""
    from tf2torch.conversion.zoo import ARCHITECTURES

    if card.architecture in ARCHITECTURES:
        arch = ARCHITECTURES[card.architecture]
        return arch.build(arch.config_from_dict(card.config))
    if card.architecture.endswith("-graph"):
        from tf2torch.conversion.graph import build_from_ir

        return build_from_ir(card.config["graph"], card.config.get("layout", "nhwc"))
    raise PackageError(f"card names unknown architecture {card.architecture!r}")


@dataclass
class LoadedModel:
    """A package in memory: the plain `nn.Module` plus its encoder, decoder and card."""

    net: nn.Module
    card: Card
    encoder: Encoder | None
    decoder: Decoder | None
    path: Path
    form: str = "eager module (trainable)"  # which form `net` is (`load(..., inference=True)`)

    @property
    def device(self) -> torch.device:
        """Where `net` runs: its first parameter's or buffer's device (`net.to("cuda")`
        moves it); the CPU for a form with neither."""
        for tensor in itertools.chain(self.net.parameters(), self.net.buffers()):
            return tensor.device
        return torch.device("cpu")

    def classify(self, images: Any, top: int = 5) -> list[list[Prediction]]:
        """Images (paths, PIL images, uint8 arrays, or a list of them) → top-k per image,
        run on the net's device."""
        if self.encoder is None or self.decoder is None:
            raise PackageError(f"{self.path}: this package has no encoder/decoder to classify with")
        batch = self.encoder(images).to(self.device)
        with torch.inference_mode():
            logits = self.net(batch)
        return self.decoder(logits.cpu(), top=top)

    def replace_head(self, labels: Sequence[str]) -> None:
        """Swap the classifier for a freshly initialised one over `labels` (for fine-tuning).

        The rest of the network keeps its converted weights; the decoder becomes `labels`.
        """
        if "num_classes" not in self.card.config:
            raise PackageError(f"{self.card.architecture}: no classifier head to replace")
        config = {**self.card.config, "num_classes": len(labels)}
        card = dataclasses.replace(self.card, config=config)
        net = build_module(card)
        keep = {k: v for k, v in self.net.state_dict().items()
                if net.state_dict()[k].shape == v.shape}
        net.load_state_dict(keep, strict=False)
        self.net, self.card = net.to(self.device).eval(), card
        self.decoder = Decoder.custom(labels)

    def save(self, destination: Path, name: str | None = None, overwrite: bool = False,
             note: str | None = None) -> Card:
        """Write this (possibly fine-tuned) model as a package, keeping encoder and labels.

        The original's verification figures are kept for reference, marked as such.
        """
        notes = list(self.card.notes) + ([note] if note else [])
        if self.decoder is not None and self.decoder.to_dict() != self.card.decoder:
            notes.append(f"classifier head replaced ({self.decoder.num_classes} classes); "
                         "verification figures are those of the original conversion")
        fields = {
            **{f.name: getattr(self.card, f.name) for f in dataclasses.fields(self.card)},
            "name": name or self.card.name,
            "decoder": self.decoder.to_dict() if self.decoder else None,
            "encoder": self.encoder.to_dict() if self.encoder else None,
            "parameters": sum(p.numel() for p in self.net.parameters()),
            "notes": notes,
        }
        fields.pop("weights_sha256")
        return write_package(destination, self.net, fields, overwrite=overwrite)


def _from_card(card_path: Path, part: str, make: Callable[[], Any]) -> Any:
    """Build one part of a package from its card; a malformed card field is one error
    naming the field, never a KeyError or TypeError from deep inside."""
    try:
        return make()
    except PackageError as exc:
        if str(card_path) in str(exc):
            raise
        raise PackageError(f"{card_path}: {exc}") from None
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        detail = f"missing key {exc}" if isinstance(exc, KeyError) else str(exc)
        raise PackageError(f"{card_path}: field {part!r} cannot be used ({detail})") from None


def _check_state(weights: Path, state: Mapping[str, torch.Tensor], net: nn.Module) -> None:
    """Every stored tensor has the dtype and shape the card's architecture expects (torch's
    `load_state_dict` would cast a changed dtype silently)."""
    expected = net.state_dict()
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        raise PackageError(
            f"{weights}: does not fit the card's architecture (missing {missing[:3]}, "
            f"unexpected {unexpected[:3]})")
    for key, tensor in state.items():
        want = expected[key]
        if tensor.dtype != want.dtype or tensor.shape != want.shape:
            raise PackageError(
                f"{weights}: tensor {key!r} is {str(tensor.dtype).removeprefix('torch.')} "
                f"{list(tensor.shape)}, the card's architecture expects "
                f"{str(want.dtype).removeprefix('torch.')} {list(want.shape)}")


def build_net(path: Path, card: Card) -> nn.Module:
    """The card's architecture with the package's weights, each checked against it."""
    net = _from_card(path / CARD, "config", lambda: build_module(card))
    weights = path / WEIGHTS
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError) as exc:
        raise PackageError(f"{weights}: unreadable ({exc})") from exc
    _check_state(weights, state, net)
    net.load_state_dict(state, strict=False)
    return net.eval()


def load_package(path: Path, with_net: bool = True) -> LoadedModel:
    """Read and check a package folder: card schema and field types, weights checksum,
    dtypes and shapes, labels. Package files are read only as regular files, never
    through a link. `with_net=False` leaves `net` None (a caller that may not need the
    eager module, `load(..., inference=True)` with a compiled form, builds it with
    `build_net` only if it must: a graph package's rebuild is most of its load time)."""
    card_path = path / "card.json"
    card = Card.read(card_path)
    weights = path / WEIGHTS
    try:
        actual = sha256_file(weights)
    except FileNotFoundError:
        raise PackageError(f"{path}: {WEIGHTS} is missing") from None
    if actual != card.weights_sha256:
        raise PackageError(
            f"{weights}: sha256 {actual[:12]}… does not match the card's "
            f"{card.weights_sha256[:12]}… (weights changed or truncated since conversion)"
        )
    net = build_net(path, card) if with_net else None
    encoder = _from_card(card_path, "encoder",
                         lambda: Encoder.from_dict(card.encoder) if card.encoder else None)
    decoder = _from_card(card_path, "decoder",
                         lambda: Decoder.from_dict(card.decoder) if card.decoder else None)
    return LoadedModel(net=net, card=card, encoder=encoder, decoder=decoder, path=path)
