"""HTML pages from Jinja2 templates (package data): one renderer for the app and the site.

Links are relative everywhere (`root` leads back to the site's top from any page), so the
same pages work under `tf2torch serve` and as static files opened from a folder. The
static site links `…/index.html` explicitly, since a folder on disk has no directory index.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markdown_it import MarkdownIt

from tf2torch.packages.attachments import PER_LAYER_PLOT, PER_LAYER_REPORT
from tf2torch.web import describe
from tf2torch.web.catalog import Entry

SAMPLES = ("astronaut.jpg", "chelsea.jpg", "coffee.jpg")  # static/samples/, see its README


@dataclass(frozen=True)
class Site:
    """How the pages link: served by the app (`static=False`) or written as files."""

    static: bool = False

    def page(self, path: str) -> str:
        """A folder's page: `models/x/` served, `models/x/index.html` on disk."""
        return path + "index.html" if self.static else (path or "./")


@cache
def environment() -> Environment:
    env = Environment(loader=PackageLoader("tf2torch.web", "templates"),
                      autoescape=select_autoescape(default=True, default_for_string=True),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.globals.update(describe=describe, samples=SAMPLES)
    env.filters["count"] = describe.human_count
    return env


@cache
def _markdown() -> MarkdownIt:
    # raw HTML in a README is shown as text, never rendered: the page's content is data
    return MarkdownIt("commonmark", {"html": False}).enable("table")


def render(template: str, site: Site, root: str, **context: Any) -> str:
    return environment().get_template(template).render(site=site, root=root, **context)


def index_page(site: Site, entries: Sequence[Entry], unreadable: Sequence[tuple[str, str]],
               query: str = "", fmt: str = "") -> str:
    """Every row is on the page; those the filter leaves out are hidden, so the script can
    widen the filter again without a round trip."""
    formats = sorted({(e.format, e.format_name) for e in entries}, key=lambda f: f[1])
    items = [{"entry": e, "shown": e.matches(query, fmt), "search": e.search_text}
             for e in entries]
    return render("index.html", site, "", entries=items, total=len(entries), formats=formats,
                  query=query, fmt=fmt, unreadable=unreadable)


def model_page(site: Site, entry: Entry, result: Any = None, error: str | None = None) -> str:
    return render("model.html", site, "../../", entry=entry, card=entry.card,
                  layers=per_layer_summary(entry), readme=readme_html(entry), result=result,
                  error=error, classifies=entry.classifies, tryable=tryable(entry))


def error_page(site: Site, status: int, title: str, message: str, root: str = "") -> str:
    return render("error.html", site, root, status=status, title=title, message=message)


def tryable(entry: Entry) -> str | None:
    """How the model can be tried: 'image' (it has an encoder), 'array' (a .npy of its one
    input), or None (several inputs)."""
    if entry.card.encoder is not None:
        return "image"
    graph = entry.card.config.get("graph") or {}
    return "array" if len(graph.get("inputs", [None])) == 1 else None


def readme_html(entry: Entry) -> str | None:
    readme = entry.file("README.md")
    if readme is None or readme.size > 1 << 20:
        return None
    text = readme.path.read_text(encoding="utf-8", errors="replace")
    if text.startswith("---\n"):  # the model-hub front matter is metadata, not prose
        text = text.split("\n---\n", 1)[-1]
    return _markdown().render(text)


def per_layer_summary(entry: Entry) -> dict[str, Any] | None:
    """The recorded per-layer comparison, if any: verdict, first failure, rows, plot."""
    report = entry.file(PER_LAYER_REPORT.name)
    plot = entry.file(PER_LAYER_PLOT.name)
    if report is None and plot is None:
        return None
    summary: dict[str, Any] = {"plot": plot is not None, "rows": [], "reference": None,
                               "passed": None, "diagnosis": None, "first": None, "within": 0,
                               "error": None}
    if report is not None:
        try:
            data = json.loads(report.path.read_text(encoding="utf-8"))
            layers = data["layers"]
            summary.update(
                reference=data["reference"], passed=data["passed"],
                diagnosis=data.get("diagnosis"), first=data.get("first_failure"),
                within=sum(bool(r["passed"]) for r in layers),
                rows=[{"net": r["net"] or "<output>", "ref": r["ref"], "op": r["op"],
                       "shape": "×".join(map(str, r["shape"])), "max_abs": f"{r['max_abs']:.2e}",
                       "bound": f"{r['bound']:.0e}", "passed": r["passed"]} for r in layers])
        except (ValueError, KeyError, TypeError) as exc:
            summary["error"] = f"{PER_LAYER_REPORT.name} is unreadable ({exc})"
    return summary
