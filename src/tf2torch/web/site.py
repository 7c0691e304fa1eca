"""`tf2torch site OUT`: the repository's pages as static files, relative links only.

    OUT/index.html
    OUT/static/…                          style, filter script, sample photos
    OUT/models/NAME/index.html
    OUT/models/NAME/files/FILE            the package's downloads (copies)

Any web server, or a folder opened in a browser, can host it. There is no try-it (no server
to run the model); each page says how to get one.
"""

from __future__ import annotations

import importlib.resources
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tf2torch.errors import PackageError
from tf2torch.web import pages
from tf2torch.web.catalog import Catalog, Entry

SITE = pages.Site(static=True)
MARKER = ".tf2torch-site"  # written into OUT, so a later run may replace it safely


@dataclass
class SiteReport:
    out: Path
    pages: list[Path] = field(default_factory=list)
    files: int = 0
    bytes: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)


def write_site(home: Path, out: Path, names: Sequence[str] | None = None,
               weights: bool = True) -> SiteReport:
    """Write the site for the repository at `home` into `out` (replacing a previous site
    there, never another folder). `names` limits it to some packages; `weights=False` leaves
    the (large) weights out of the downloads."""
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not (out / MARKER).exists():
        raise PackageError(f"{out} exists and is not a site tf2torch wrote; give an empty or "
                           "new folder")
    catalog = Catalog(home)
    entries, skipped = catalog.entries()
    if names is not None:
        unknown = sorted(set(names) - {e.name for e in entries})
        if unknown:
            catalog.folder(unknown[0])  # raises NotServed naming close matches
        entries = [e for e in entries if e.name in names]
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        report = SiteReport(out, skipped=list(skipped))
        _copy_static(stage / "static")
        (stage / "index.html").write_text(pages.index_page(SITE, entries, skipped),
                                          encoding="utf-8")
        report.pages.append(out / "index.html")
        for entry in entries:
            _write_model(stage, entry, weights, report)
        (stage / MARKER).write_text("written by tf2torch site; safe to delete\n")
        _swap(stage, out)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return report


def _write_model(stage: Path, entry: Entry, weights: bool, report: SiteReport) -> None:
    folder = stage / "models" / entry.name
    (folder / "files").mkdir(parents=True)
    kept = [f for f in entry.files if weights or f.name != "model.safetensors"]
    for served in kept:
        shutil.copyfile(served.path, folder / "files" / served.name)
        report.files += 1
        report.bytes += served.size
    shown = Entry(entry.name, entry.folder, entry.card, tuple(kept), entry.fingerprint)
    (folder / "index.html").write_text(pages.model_page(SITE, shown), encoding="utf-8")
    report.pages.append(report.out / "models" / entry.name / "index.html")


def _copy_static(target: Path) -> None:
    source = importlib.resources.files("tf2torch.web") / "static"
    with importlib.resources.as_file(source) as folder:
        shutil.copytree(folder, target)


def _swap(stage: Path, out: Path) -> None:
    """Put the new site in place; the old one (if any) goes only once the new one is there."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
    os.replace(stage, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
