"""What commands print: JSON for scripts, short summaries of cards for people."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from typing import Any


def emit_json(data: object) -> None:
    """`--json` output: one document on stdout (progress bars and notes go to stderr)."""
    json.dump(data, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def card_summary(card: Any) -> dict:
    """A card as JSON, with a graph model's (large) IR elided."""
    data = asdict(card)
    if data["architecture"].endswith("-graph"):
        data["config"] = {"layout": data["config"].get("layout"), "graph": "…"}
    return data


def config_text(card: Any) -> str:
    """A zoo model's configuration in words, e.g. "(multiplier 1.4, 224×224, 1001 classes)"."""
    config = card.config
    if "depth_multiplier" in config:
        return (f"(multiplier {config['depth_multiplier']:g}, {config['input_size']}×"
                f"{config['input_size']}, {config['num_classes']} classes)")
    return ""
