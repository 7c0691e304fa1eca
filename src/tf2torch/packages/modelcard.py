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


def _verification_lines(card: Card) -> list[str]:
    ver = card.verification
    if not ver:
        return ["Not verified (no reference was available at conversion)."]
    lines = [
        f"Against {ver['reference']} on {ver['date']}: **{'PASS' if ver['passed'] else 'FAIL'}**",
        "",
        "| input | output | max abs diff | max rel diff | bound | top-1 | top-5 |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in ver["comparisons"]:
        top1 = "-" if row.get("top1_agreement") is None else f"{100 * row['top1_agreement']:.0f}%"
        top5 = "-" if row.get("top5_agreement") is None else f"{100 * row['top5_agreement']:.0f}%"
        bound = f"{row['bound']:.0e}"
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
