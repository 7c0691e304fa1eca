"""Hand-written architectures, one file per family, each with its weight-mapping rules.

`ARCHITECTURES` is the registry: a source whose tensors an entry `recognises` is converted by
building that entry's module from a config read off the tensors and mapping weights by its
rules.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from torch import nn

from tf2torch.conversion.zoo import mobilenet_v2
from tf2torch.conversion.zoo.mapping import Ignore, Rule


@dataclass(frozen=True)
class ZooArchitecture:
    name: str
    recognises: Callable[[Mapping[str, tuple[int, ...]]], bool]
    infer_config: Callable[..., Any]
    config_from_dict: Callable[[Mapping], Any]
    build: Callable[[Any], nn.Module]
    rules: tuple[Rule, ...]
    ignores: tuple[Ignore, ...]
    parse_release_name: Callable[[str], tuple[float, int] | None]
    multiply_adds: Callable[[Any], int]  # one image's, from the config alone


ARCHITECTURES: dict[str, ZooArchitecture] = {
    "mobilenet_v2": ZooArchitecture(
        name="mobilenet_v2",
        recognises=lambda shapes: f"{mobilenet_v2.SCOPE}/Conv/weights" in shapes,
        infer_config=mobilenet_v2.infer_config,
        config_from_dict=mobilenet_v2.MobileNetV2Config.from_dict,
        build=mobilenet_v2.MobileNetV2,
        rules=mobilenet_v2.RULES,
        ignores=mobilenet_v2.IGNORES,
        parse_release_name=mobilenet_v2.parse_release_name,
        multiply_adds=mobilenet_v2.multiply_adds,
    ),
}


def find_architecture(shapes: Mapping[str, tuple[int, ...]]) -> ZooArchitecture | None:
    return next((a for a in ARCHITECTURES.values() if a.recognises(shapes)), None)
