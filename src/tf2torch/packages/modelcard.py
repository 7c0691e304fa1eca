"""The human-readable `README.md` of a package, generated from its card."""

from __future__ import annotations

from tf2torch.packages.card import Card


def render_readme(card: Card) -> str:
    src = card.source
    lines = [
        "---",
        "library_name: pytorch",
        f"license: {card.license}",
        "tags: [tf2torch, image-classification]" if card.decoder else "tags: [tf2torch]",
        "---",
        f"# {card.name}",
        "",
        f"PyTorch port of `{src.get('file')}` ({src.get('format')}), converted by tf2torch "
        f"{card.tf2torch_version} on {card.created}.",
        "",
        "## Source",
        f"- file: `{src.get('file')}`",
        f"- sha256: `{src.get('sha256')}`",
        *([f"- release: `{src['release']}`"] if src.get("release") else []),
        "",
        "## Architecture",
        f"- family: `{card.architecture}`",
        f"- parameters: {card.parameters:,}",
        *([f"- multiply-adds per image: {card.multiply_adds:,}"] if card.multiply_adds else []),
        f"- input: {card.input}",
        *_config_lines(card),
        "",
        "## Pre-processing",
        f"`{card.encoder}`" if card.encoder else "none recorded: feed the tensor the source expects",
        "",
        "## Labels",
        f"`{card.decoder}`" if card.decoder else "none recorded",
        "",
        *_quantization_lines(card),
        "## Verification",
        *_verification_lines(card),
        "",
        "## How to load",
        "```python",
        "import tf2torch",
        f'model = tf2torch.load("{card.name}")   # or the path of this folder',
        "model.net            # plain torch.nn.Module, eval mode",
        *(['model.classify("photo.jpg", top=5)'] if card.decoder and card.encoder else []),
        "```",
        "Weights alone: `safetensors.torch.load_file('model.safetensors')`.",
        "",
    ]
    if card.notes:
        lines += ["## Notes", *[f"- {note}" for note in card.notes], ""]
    return "\n".join(lines)


def _config_lines(card: Card) -> list[str]:
    if card.architecture.endswith("-graph"):
        graph = card.config.get("graph", {})
        return [f"- graph: {len(graph.get('nodes', []))} nodes, layout {card.config.get('layout')}"]
    return [f"- config: `{card.config}`"]


def _quantization_lines(card: Card) -> list[str]:
    q = card.quantization
    if not q:
        return []
    what = {"simulate": "simulates the file's integer arithmetic (fake quantization with "
                        "TFLite's rounding, scales and zero points)",
            "float": "is the dequantized float model (fine-tunable)"}[q["form"]]
    return ["## Quantization",
            f"The source is a {q['kind']} quantized model (weights {q['weights']}, "
            f"activations {q['activations'] or 'float'}); this port **{q['form']}** {what}.",
            f"Verification bound: {q['bound_rule']}.", ""]


def _verification_lines(card: Card) -> list[str]:
    ver = card.verification
    if not ver:
        return ["Not verified (no reference was available at conversion)."]
    status = f" ({ver['status'].replace('-', ' ')})" if ver.get("status", "match") != "match" \
        else ""
    lines = [
        f"Against {ver['reference']} on {ver['date']}: "
        f"**{'PASS' if ver['passed'] else 'FAIL'}**{status}",
        "",
        "| input | output | max abs diff | max rel diff | bound | top-1 | top-5 |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in ver["comparisons"]:
        top1 = "-" if row.get("top1_agreement") is None else f"{100 * row['top1_agreement']:.0f}%"
        top5 = "-" if row.get("top5_agreement") is None else f"{100 * row['top5_agreement']:.0f}%"
        bound = f"{row['bound']:.1e}"
        if row.get("against"):
            row = {**row, "case": f"{row['case']} [{row['against']}]"}
        if row.get("status", "match") not in ("match", "fail", "within-runtime-spread"):
            bound += f" ({row['status'].replace('-', ' ')})"
        if row.get("within_spread"):
            bound += f" (ok*: spread {row['reference_spread']:.1e})"
        lines.append(
            f"| {row['case']} | {row['output']} | {row['max_abs']:.2e} | {row['max_rel']:.2e} "
            f"| {bound} | {top1} | {top5} |"
        )
    if any(row.get("within_spread") for row in ver["comparisons"]):
        lines += ["", "ok*: above the bound, but within the spread of the original's own runtimes "
                  "on that input (TFLite's XNNPACK, builtin and reference kernels disagree as much)."]
    return lines
