"""Find every weight of a Keras model in its HDF5 weights, by layer name.

Two layouts exist:
- Keras 3 `model.weights.h5` (inside `.keras`): `layers/<tracker name>/vars/<i>`, nested models
  under `layers/<tracker>/layers/...`. Groups carry the layer's name in `vars.attrs["name"]`
  (Keras ≥ 3.?); older files are matched by Keras's tracker names (snake_case class + counter).
  Variables are positional within one layer, so their roles come from `VAR_ROLES`.
- Legacy HDF5 (`model.save("x.h5")` in Keras 2 or 3): `model_weights/<layer>` with a
  `weight_names` attribute ("conv/kernel:0", "seq/dense/kernel", ...).
Every weight gets a stable name `<layer path>/<role>`, e.g. `block1_conv1/kernel` or
`inner_model/conv/bias`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import h5py

from tf2torch.errors import SourceError
from tf2torch.sources.keras.graph import LayerConfig, is_model, layer_name


def _conv_roles(cfg: dict) -> list[str]:
    return ["kernel"] + (["bias"] if cfg.get("use_bias", True) else [])


def _separable_roles(cfg: dict) -> list[str]:
    return ["depthwise_kernel", "pointwise_kernel"] + (["bias"] if cfg.get("use_bias", True) else [])


def _bn_roles(cfg: dict) -> list[str]:
    roles = (["gamma"] if cfg.get("scale", True) else []) + (["beta"] if cfg.get("center", True) else [])
    return [*roles, "moving_mean", "moving_variance"]


def _ln_roles(cfg: dict) -> list[str]:
    center = cfg.get("center", True) and not cfg.get("rms_scaling", False)
    return (["gamma"] if cfg.get("scale", True) else []) + (["beta"] if center else [])


# Roles of a Keras 3 layer's positional variables, in creation order, by class.
VAR_ROLES: dict[str, Callable[[dict], list[str]]] = {
    "Conv1D": _conv_roles, "Conv2D": _conv_roles, "Conv3D": _conv_roles,
    "Conv1DTranspose": _conv_roles, "Conv2DTranspose": _conv_roles,
    "Conv3DTranspose": _conv_roles, "DepthwiseConv1D": _conv_roles,
    "DepthwiseConv2D": _conv_roles, "Dense": _conv_roles,
    "SeparableConv1D": _separable_roles, "SeparableConv2D": _separable_roles,
    "BatchNormalization": _bn_roles, "LayerNormalization": _ln_roles,
    "Normalization": lambda cfg: ["mean", "variance", "count"],
    "PReLU": lambda cfg: ["alpha"],
    "LayerScale": lambda cfg: ["gamma"],
    "Embedding": lambda cfg: ["embeddings"],
}


def _snake_case(name: str) -> str:
    """Keras's `naming.to_snake_case`, used for tracker names in old Keras 3 files."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    name = re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()
    return "private" + name if name[0] == "_" else name


def _decode(value: Any) -> str:
    return value.decode("utf8") if isinstance(value, bytes) else str(value)


def keras3_weights(h5: h5py.File, model: LayerConfig) -> dict[str, h5py.Dataset]:
    """Weights of a Keras 3 `model.weights.h5`, by `<layer path>/<role>`."""
    found: dict[str, h5py.Dataset] = {}
    _walk_keras3(h5, model, "", found)
    return found


def _walk_keras3(group: h5py.Group, model: LayerConfig, prefix: str,
                 found: dict[str, h5py.Dataset]) -> None:
    layers = model["config"]["layers"]
    children = group.get("layers", None)
    if children is None:
        return
    by_name = {}
    for key in children:
        vars_group = children[key].get("vars")
        if vars_group is not None and "name" in vars_group.attrs:
            by_name[_decode(vars_group.attrs["name"])] = children[key]
    tracker_names = _tracker_names(layers)
    for layer in layers:
        name = layer_name(layer)
        sub = by_name.get(name)
        if sub is None:
            sub = children.get(tracker_names[name])
        if sub is None:
            continue
        if is_model(layer):
            _walk_keras3(sub, layer, f"{prefix}{name}/", found)
            continue
        variables = sub.get("vars")
        if variables is None or len(variables) == 0:
            continue
        roles_of = VAR_ROLES.get(layer["class_name"])
        roles = roles_of(layer.get("config", {})) if roles_of else []
        for i in range(len(variables)):
            role = roles[i] if i < len(roles) and len(roles) == len(variables) else str(i)
            found[f"{prefix}{name}/{role}"] = _dataset(variables, str(i))


def _dataset(group: h5py.Group, name: str) -> h5py.Dataset:
    # Group[name] builds a File object per dataset (slow with Python file objects).
    return h5py.Dataset(h5py.h5d.open(group.id, name.encode()), readonly=True)


def _tracker_names(layers: list[LayerConfig]) -> dict[str, str]:
    counts: dict[str, int] = {}
    names = {}
    for layer in layers:
        cls = layer["class_name"]
        base = "functional" if cls in ("Functional", "Model") else _snake_case(cls)
        n = counts.get(base, 0)
        counts[base] = n + 1
        names[layer_name(layer)] = base if n == 0 else f"{base}_{n}"
    return names


def legacy_weights(h5: h5py.File, model: LayerConfig) -> dict[str, h5py.Dataset]:
    """Weights of a legacy Keras 2/3 `.h5` model file, by `<layer path>/<role>`."""
    group = h5.get("model_weights", h5)
    if "layer_names" not in group.attrs:
        raise SourceError("HDF5 file has no 'layer_names': not a Keras model file")
    layers = {layer_name(layer): layer for layer in _top_layers(model)}
    found: dict[str, h5py.Dataset] = {}
    for name in map(_decode, group.attrs["layer_names"]):
        layer_group = group[name]
        weight_names = [_decode(w) for w in layer_group.attrs.get("weight_names", [])]
        inner = _inner_paths(layers[name]) if name in layers and is_model(layers[name]) else None
        for weight_name in weight_names:
            parts = weight_name.split("/")
            role = parts[-1].split(":")[0]
            path = name if inner is None else _owner_path(name, parts[:-1], inner, weight_name)
            found[f"{path}/{role}"] = _dataset(layer_group, weight_name)
    return found


def _top_layers(model: LayerConfig) -> list[LayerConfig]:
    return model["config"]["layers"]


def _inner_paths(model: LayerConfig, prefix: str = "") -> dict[str, str]:
    """Layer name → path below `model`, for every layer of nested models (first wins)."""
    paths: dict[str, str] = {}
    for layer in model["config"]["layers"]:
        name = layer_name(layer)
        paths.setdefault(name, prefix + name)
        if is_model(layer):
            for inner, path in _inner_paths(layer, f"{prefix}{name}/").items():
                paths.setdefault(inner, path)
    return paths


def _owner_path(model_name: str, scopes: list[str], inner: dict[str, str], weight: str) -> str:
    # Keras 2 names weights "<layer>/kernel:0"; Keras 3 may prefix scopes ("seq/dense/kernel").
    for scope in reversed(scopes):
        if scope in inner:
            return f"{model_name}/{inner[scope]}"
    raise SourceError(f"weight {weight!r} of nested model {model_name!r} names no layer in it")


def iter_layers(model: LayerConfig, prefix: str = "") -> Iterator[tuple[str, LayerConfig]]:
    """Every non-model layer with its path, nested models expanded."""
    for layer in model["config"]["layers"]:
        name = layer_name(layer)
        if is_model(layer):
            yield from iter_layers(layer, f"{prefix}{name}/")
        else:
            yield prefix + name, layer
