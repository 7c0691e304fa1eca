"""`list`, `show`, `remove`: the local repository. A bad entry is noted, never followed."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tf2torch.cli.render import card_summary, emit_json
from tf2torch.errors import PackageError


def list_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="machine-readable output on stdout "
                   "(a bad entry is a row with its name and an 'error')")


def _row(path: Path) -> dict:
    """A good package's summary, or the entry's name and what is wrong with it."""
    from tf2torch.packages import repository
    from tf2torch.packages.card import Card

    problem = repository.entry_problem(path)
    if problem is None:
        try:
            card = Card.read(path / "card.json")
        except PackageError as exc:
            problem = str(exc).removeprefix(f"{path / 'card.json'}: ")
    if problem is not None:
        return {"name": path.name, "error": problem}
    ver = card.verification
    return {"name": path.name, "architecture": card.architecture,
            "parameters": card.parameters, "source": card.source.get("file"),
            "verified": None if ver is None else ver.get("passed"), "created": card.created}


def list_packages(args: argparse.Namespace) -> int:
    from tf2torch.packages import repository

    rows = [_row(path) for path in repository.entries()]
    good = [r for r in rows if "error" not in r]
    if args.json:
        emit_json(rows)
        return 0
    if not good:
        print(f"the repository at {repository.home()} is empty" if not rows else
              f"the repository at {repository.home()} holds no readable package")
    else:
        print(f"{'name':32} {'architecture':16} {'params':>11}  verified  created")
        for r in good:
            verified = {None: "-", True: "yes", False: "NO"}.get(r["verified"], "?")
            print(f"{r['name']:32} {r['architecture']:16} {r['parameters']:>11,}  "
                  f"{verified:8}  {r['created']}")
    for r in rows:
        if "error" in r:
            print(f"note: {r['name']}: skipped, {r['error']}", file=sys.stderr)
    return 0


def show_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="repository name or package folder")
    p.add_argument("--json", action="store_true", help="machine-readable output on stdout")


def show(args: argparse.Namespace) -> int:
    from tf2torch.packages import repository
    from tf2torch.packages.card import MAX_CARD_BYTES, Card
    from tf2torch.util.files import read_regular

    path = repository.resolve(args.name)
    card = Card.read(path / "card.json")
    if args.json:
        emit_json(card_summary(card))
        return 0
    try:  # the package's own README only: never a link to another file
        text = read_regular(path / "README.md", "README.md", PackageError, follow=False,
                            limit=MAX_CARD_BYTES).decode("utf-8", "replace")
    except FileNotFoundError:
        raise PackageError(f"{path}: README.md is missing (tf2torch show --json prints the "
                           "card)") from None
    print(text)
    return 0


def remove_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="repository name (or a package folder)")


def remove(args: argparse.Namespace) -> int:
    from tf2torch.packages import repository

    print(f"removed {repository.remove(args.name)}")
    return 0
