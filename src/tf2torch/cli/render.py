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


def profile_table(profile: dict) -> str:
    """`convert --profile`: seconds per phase (the reference's own, in its process, indented
    under the phase that waited for them) and peak memory of each process."""
    lines = ["where the time went:"]
    for phase, seconds in profile.get("phases_s", {}).items():
        indent = "    " if ":" in phase else "  "
        lines.append(f"{indent}{phase:<58} {seconds:7.2f} s")
    lines.append(f"  {'total (this call)':<58} {profile.get('total_s', 0):7.2f} s")
    lines.append(f"peak memory: this process {profile.get('peak_rss_mib', 0):.0f} MiB"
                 + (f", TensorFlow worker {profile['reference_peak_rss_mib']:.0f} MiB"
                    if profile.get("reference_peak_rss_mib") else ""))
    return "\n".join(lines)
