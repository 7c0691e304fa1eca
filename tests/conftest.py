"""Shared fixtures: stand-in TF-slim releases written by TensorFlow, cached between runs.

The cache lives in `<repo>/.cache/test-fixtures` (or `$TF2TORCH_TEST_CACHE`), keyed by the
release's parameters and `FIXTURE_VERSION`; everything is seeded, so a cached file equals a
fresh one.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch  # noqa: F401  - torch before tensorflow in one process, always

from web_repository import web_repo  # noqa: F401 - the web tests' repository (session-wide)

FIXTURE_VERSION = "5"  # 5: stand-ins whose logits depend on the image
REPO = Path(__file__).resolve().parents[1]


def fixture_cache() -> Path:
    root = Path(os.environ.get("TF2TORCH_TEST_CACHE") or REPO / ".cache" / "test-fixtures")
    return root / f"v{FIXTURE_VERSION}"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--forbid-skips", action="store_true",
                     help="fail the run if any test skipped (what `make test` uses), unless "
                          "TF2TORCH_OFFLINE=1 says the user knowingly runs without downloads")
    parser.addoption("--figures", metavar="FILE", default=None,
                     help="append each corpus test's measured figures to FILE (JSON lines), "
                          "for the tables in docs/ (`python tools/corpus_tables.py FILE`)")


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    skipped = terminalreporter.stats.get("skipped", [])
    if not skipped:
        return
    reasons: dict[str, int] = {}
    for report in skipped:
        reason = str(report.longrepr[-1]) if isinstance(report.longrepr, tuple) else str(
            report.longrepr)
        reasons[reason.removeprefix("Skipped: ")] = reasons.get(
            reason.removeprefix("Skipped: "), 0) + 1
    terminalreporter.section(f"{len(skipped)} test(s) skipped", sep="=", yellow=True)
    for reason, count in sorted(reasons.items(), key=lambda kv: -kv[1]):
        terminalreporter.write_line(f"{count:4d} × {reason}")
    if config.getoption("--forbid-skips") and not _opted_out():
        terminalreporter.write_line(
            "error: tests skipped in a run that forbids it (make test): a fixture it was meant "
            "to fetch or build is missing. Fix that, or set TF2TORCH_OFFLINE=1 (or "
            "TF2TORCH_SKIP_BROWSER=1) to skip knowingly.", red=True, bold=True)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter is not None else []
    if (skipped and session.config.getoption("--forbid-skips") and not _opted_out()
            and exitstatus == 0):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


# Variables a user sets to skip knowingly: no downloads (MediaPipe), no browser tests.
OPT_OUTS = ("TF2TORCH_OFFLINE", "TF2TORCH_SKIP_BROWSER")


def _opted_out() -> bool:
    return any(os.environ.get(name) == "1" for name in OPT_OUTS)


@pytest.fixture(scope="session")
def record_figures(request: pytest.FixtureRequest):
    """`record_figures(table, **row)`: append a corpus row to `--figures FILE`, if given; the
    rows are measured by the test that asserts on them, so the docs' tables come from a run."""
    target = request.config.getoption("--figures")

    def record(table: str, **row) -> None:
        if target:
            with open(target, "a") as out:
                out.write(json.dumps({"table": table, **row}) + "\n")

    return record


@pytest.fixture
def no_hang():
    """A reader that opens a FIFO or a device blocks forever: fail the test after 20 s
    instead of hanging CI (`pytestmark = pytest.mark.usefixtures("no_hang")`)."""
    import signal

    def hung(signum, frame):
        raise TimeoutError("blocked for 20 s: a FIFO or device was opened")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(20)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.fixture(autouse=True)
def _isolated_repository(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Every test gets an empty model repository, never the user's."""
    monkeypatch.setenv("TF2TORCH_HOME", str(tmp_path_factory.mktemp("tf2torch-home")))


@pytest.fixture(scope="session")
def standin():
    """Factory: `standin(multiplier, size, **options)` → `StandIn`, built once and cached."""
    pytest.importorskip("tensorflow")
    from tf2torch.references import standin as standin_module

    def make(multiplier: float, size: int, **options) -> standin_module.StandIn:
        tag = "-".join(f"{k}={v}" for k, v in sorted(options.items())) or "plain"
        folder = fixture_cache() / f"{standin_module.release_name(multiplier, size)}-{tag}"
        done = folder / "DONE"
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)
            standin_module.make_standin_release(folder, multiplier, size, **options)
            done.write_text("ok")
        name = standin_module.release_name(multiplier, size)
        inner = folder / name
        tflite = inner / f"{name}.tflite"
        archive = folder / f"{name}.tgz"
        return standin_module.StandIn(
            prefix=inner / f"{name}.ckpt", archive=archive if archive.exists() else None,
            tflite=tflite if tflite.exists() else None, tests_h5=inner / "tests.h5",
        )

    return make
