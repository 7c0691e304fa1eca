"""MobileNetV2 as TF-slim builds it (`nets/mobilenet/mobilenet_v2.py`), in PyTorch.

Module names mirror the slim scopes (`Conv`, `expanded_conv_3.expand`, `Logits.Conv2d_1c_1x1`)
so the weight rules below stay regular and errors read like the checkpoint.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields

import numpy as np
import torch
from torch import nn

from tf2torch.conversion.zoo.layers import SamePad2d, conv_out_size
from tf2torch.conversion.zoo.mapping import Ignore, Rule, depthwise_to_oihw, hwio_to_oihw
from tf2torch.errors import MappingError


@dataclass(frozen=True)
class Stage:
    """One row of the architecture table: `repeats` blocks of the same width."""

    expansion: int
    channels: int
    repeats: int
    stride: int


# (expansion, channels, repeats, stride) — the paper's Table 2, as slim's V2_DEF builds it.
STAGES: tuple[Stage, ...] = (
    Stage(1, 16, 1, 1),
    Stage(6, 24, 2, 2),
    Stage(6, 32, 3, 2),
    Stage(6, 64, 4, 2),
    Stage(6, 96, 3, 1),
    Stage(6, 160, 3, 2),
    Stage(6, 320, 1, 1),
)
STEM_CHANNELS = 32
LAST_CHANNELS = 1280
RELEASED_MULTIPLIERS = (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)
RELEASED_SIZES = (96, 128, 160, 192, 224)
SCOPE = "MobilenetV2"


def make_divisible(value: float, divisor: int = 8, min_value: int = 8) -> int:
    """Slim's channel rounding: nearest multiple of 8, never more than 10% below `value`."""
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


@dataclass(frozen=True)
class MobileNetV2Config:
    """Everything that fixes the network's shape and training behaviour."""

    depth_multiplier: float = 1.0
    input_size: int = 224
    num_classes: int = 1001
    last_channels: int | None = None  # None: 1280, scaled only for multipliers above 1
    dropout: float = 0.2              # slim: keep_prob 0.8
    bn_epsilon: float = 1e-3
    bn_decay: float = 0.997           # slim's training_scope; PyTorch momentum = 1 − decay

    def __post_init__(self) -> None:
        checks = {
            "depth_multiplier": self.depth_multiplier > 0,
            "input_size": self.input_size >= 32,
            "num_classes": self.num_classes >= 1,
            "last_channels": self.last_channels is None or self.last_channels >= 1,
            "dropout": 0.0 <= self.dropout < 1.0,
            "bn_epsilon": self.bn_epsilon > 0,
            "bn_decay": 0.0 <= self.bn_decay < 1.0,
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"MobileNetV2Config.{name}={getattr(self, name)!r} is out of range")

    @property
    def stem_width(self) -> int:
        return make_divisible(STEM_CHANNELS * self.depth_multiplier)

    @property
    def last_width(self) -> int:
        if self.last_channels is not None:
            return self.last_channels
        if self.depth_multiplier > 1.0:
            return make_divisible(LAST_CHANNELS * self.depth_multiplier)
        return LAST_CHANNELS

    def stage_widths(self) -> list[int]:
        return [make_divisible(s.channels * self.depth_multiplier) for s in STAGES]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping) -> MobileNetV2Config:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"MobileNetV2Config: unknown field(s) {sorted(unknown)}")
        return cls(**data)


class ConvBN(nn.Module):
    """Conv + BatchNorm, with ReLU6 (`activation=True`) or none (the linear bottleneck).

    Stride 1 uses the conv's own symmetric padding (exactly SAME for odd kernels); stride 2
    gets a `SamePad2d` in front, since TF pads the extra row/column only after.
    """

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, groups: int,
                 activation: bool, in_size: int, config: MobileNetV2Config) -> None:
        super().__init__()
        asymmetric = stride > 1 and kernel > 1
        self.pad = SamePad2d(kernel, stride, built_for=(in_size, in_size)) if asymmetric \
            else nn.Identity()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, padding=0 if asymmetric else kernel // 2,
                              groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=config.bn_epsilon, momentum=1.0 - config.bn_decay)
        self.act = nn.ReLU6(inplace=True) if activation else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(self.pad(x))))


class InvertedResidual(nn.Module):
    """expand (1×1, ReLU6) → depthwise (3×3, ReLU6) → project (1×1, linear), + skip if shapes allow."""

    def __init__(self, cin: int, cout: int, expansion: int, stride: int, in_size: int,
                 config: MobileNetV2Config) -> None:
        super().__init__()
        hidden = cin * expansion
        # slim's first block has no expand scope at all (expansion 1)
        self.expand = ConvBN(cin, hidden, 1, 1, 1, True, in_size, config) if expansion != 1 \
            else nn.Identity()
        self.depthwise = ConvBN(hidden, hidden, 3, stride, hidden, True, in_size, config)
        self.project = ConvBN(hidden, cout, 1, 1, 1, False, conv_out_size(in_size, stride),
                              config)
        self.use_skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.depthwise(self.expand(x)))
        return x + y if self.use_skip else y


class Logits(nn.Module):
    """Global average pool → dropout → 1×1 conv with bias → (N, classes) logits."""

    def __init__(self, cin: int, config: MobileNetV2Config) -> None:
        super().__init__()
        self.Dropout = nn.Dropout(config.dropout)
        self.Conv2d_1c_1x1 = nn.Conv2d(cin, config.num_classes, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.mean(dim=(2, 3), keepdim=True)
        return self.Conv2d_1c_1x1(self.Dropout(x)).flatten(1)


def block_scopes() -> list[tuple[str, Stage, int]]:
    """Slim scope names of the inverted-residual blocks in order, with their stage and stride."""
    scopes, index = [], 0
    for stage in STAGES:
        for repeat in range(stage.repeats):
            name = "expanded_conv" if index == 0 else f"expanded_conv_{index}"
            scopes.append((name, stage, stage.stride if repeat == 0 else 1))
            index += 1
    return scopes


class MobileNetV2(nn.Module):
    """Float32 NCHW images in [-1, 1] → logits over `num_classes` (index 0 = background)."""

    def __init__(self, config: MobileNetV2Config) -> None:
        super().__init__()
        self.config = config
        size = config.input_size
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        layers["Conv"] = ConvBN(3, config.stem_width, 3, 2, 1, True, size, config)
        size, cin = conv_out_size(size, 2), config.stem_width
        widths = dict(zip(STAGES, config.stage_widths(), strict=True))
        for name, stage, stride in block_scopes():
            cout = widths[stage]
            layers[name] = InvertedResidual(cin, cout, stage.expansion, stride, size, config)
            size, cin = conv_out_size(size, stride), cout
        layers["Conv_1"] = ConvBN(cin, config.last_width, 1, 1, 1, True, size, config)
        self.features = nn.Sequential(layers)
        self.Logits = Logits(config.last_width, config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.Logits(self.features(x))


def multiply_adds(config: MobileNetV2Config) -> int:
    """One image's multiply-adds, from the table and the input size (no forward pass)."""
    size = conv_out_size(config.input_size, 2)
    total = size * size * config.stem_width * 3 * 9
    cin = config.stem_width
    widths = dict(zip(STAGES, config.stage_widths(), strict=True))
    for _, stage, stride in block_scopes():
        hidden = cin * stage.expansion
        expand = size * size * cin * hidden if stage.expansion != 1 else 0
        size = conv_out_size(size, stride)
        total += expand + size * size * hidden * (9 + widths[stage])  # depthwise + project
        cin = widths[stage]
    return total + size * size * cin * config.last_width + config.last_width * config.num_classes


# --- weight mapping: slim variable names → module parameters -------------------------------

_BN = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean",
       "moving_variance": "running_var"}
_UNIT = r"(?P<scope>(?:Conv|Conv_1|expanded_conv(?:_\d+)?)(?:/(?:expand|depthwise|project))?)"

RULES: tuple[Rule, ...] = (
    Rule(rf"{SCOPE}/{_UNIT}/depthwise_weights", "features/{scope}/conv/weight", depthwise_to_oihw),
    Rule(rf"{SCOPE}/{_UNIT}/weights", "features/{scope}/conv/weight", hwio_to_oihw),
    *(Rule(rf"{SCOPE}/{_UNIT}/BatchNorm/{tf}", f"features/{{scope}}/bn/{pt}")
      for tf, pt in _BN.items()),
    Rule(rf"{SCOPE}/Logits/Conv2d_1c_1x1/weights", "Logits/Conv2d_1c_1x1/weight", hwio_to_oihw),
    Rule(rf"{SCOPE}/Logits/Conv2d_1c_1x1/biases", "Logits/Conv2d_1c_1x1/bias"),
)

IGNORES: tuple[Ignore, ...] = (
    Ignore(r"global_step", "training step counter"),
    Ignore(r".*/(Momentum|RMSProp|RMSProp_1|Adam|Adam_1)", "optimizer slot"),
    Ignore(r"(beta1_power|beta2_power)", "optimizer state"),
)


# --- configuration from a checkpoint's shapes ----------------------------------------------

def _width(shapes: Mapping[str, tuple[int, ...]], name: str) -> int:
    key = f"{SCOPE}/{name}"
    if key not in shapes:
        raise MappingError(f"missing tensor {key}: not a TF-slim MobileNetV2 checkpoint?")
    return shapes[key][-1]


def infer_config(shapes: Mapping[str, tuple[int, ...]], input_size: int = 224,
                 **overrides: object) -> MobileNetV2Config:
    """Read the depth multiplier, last width and class count off the tensors' shapes.

    The multiplier is the first candidate (released ones first, then a 0.05 grid) whose
    rounded widths equal every width in the checkpoint, so a 0.35 and a 0.5 model — equal
    at the stem — are told apart by their later stages.
    """
    found = [_width(shapes, "Conv/weights")]
    found += [_width(shapes, f"{name}/project/weights") for name, _, _ in _stage_heads()]
    last = _width(shapes, "Conv_1/weights")
    classes = _width(shapes, "Logits/Conv2d_1c_1x1/weights")
    grid = [round(m, 2) for m in np.arange(0.05, 3.0001, 0.05)]
    for multiplier in (*RELEASED_MULTIPLIERS, *grid):
        probe = MobileNetV2Config(depth_multiplier=multiplier)
        if [probe.stem_width, *probe.stage_widths()] == found:
            values = {"depth_multiplier": multiplier, "input_size": input_size,
                      "num_classes": classes, "last_channels": last, **overrides}
            return MobileNetV2Config(**values)  # type: ignore[arg-type]
    raise MappingError(
        f"channel widths {found} (stem, then each stage) match no depth multiplier of "
        "MobileNetV2; is this a MobileNetV2 checkpoint?"
    )


def _stage_heads() -> list[tuple[str, Stage, int]]:
    """The first block of each stage: where the width of that stage can be read."""
    seen, heads = set(), []
    for name, stage, stride in block_scopes():
        if stage not in seen:
            seen.add(stage)
            heads.append((name, stage, stride))
    return heads


def parse_release_name(name: str) -> tuple[float, int] | None:
    """`mobilenet_v2_1.4_224` → (1.4, 224); None for names that are not slim releases."""
    match = re.search(r"mobilenet_v2_(\d+(?:\.\d+)?)_(\d+)", name)
    return (float(match.group(1)), int(match.group(2))) if match else None
