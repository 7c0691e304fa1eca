"""The command line's edge on a TF-written stand-in release: nothing left in the temp folder,
references that are present but unreadable are errors, every failure is one line.
"""

from __future__ import annotations

import json
import os
import tarfile
import tempfile
import warnings
from pathlib import Path

import pytest

from tf2torch.cli import main

tf = pytest.importorskip("tensorflow")


def run(capsys: pytest.CaptureFixture, *argv: object) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def release(standin):
    return standin(0.35, 96)


@pytest.fixture
def tmpdir_watch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the temp folder at an empty one, to see what a command leaves there."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("tf2torch-"))


def _repack(release, archive: Path, drop: tuple[str, ...] = (),
            garble: tuple[str, ...] = ()) -> Path:
    """The release's files as a `.tgz`, without `drop` and with `garble`d ones truncated."""
    folder = release.prefix.parent
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(folder.iterdir()):
            if any(path.name.endswith(s) for s in drop):
                continue
            if any(path.name.endswith(s) for s in garble):
                cut = archive.parent / path.name
                cut.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
                path = cut
            tar.add(path, arcname=f"./{path.name}")
    return archive


def test_nothing_left_in_the_temp_folder(release, capsys, tmpdir_watch: Path,
                                         tmp_path: Path) -> None:
    archive = release.archive
    assert run(capsys, "inspect", archive)[0] == 0
    assert run(capsys, "verify", archive, "--json")[0] == 0
    assert run(capsys, "convert", archive, "-o", tmp_path / "pkg")[0] == 0
    assert _leftovers(tmpdir_watch) == []
    # failures: a bad option after reading, and an archive whose checkpoint is corrupt
    assert run(capsys, "convert", archive, "-o", tmp_path / "pkg")[0] == 2  # exists
    broken = _repack(release, tmp_path / release.archive.name, garble=(".index",))
    for command in ("inspect", "convert", "verify"):
        code, _, err = run(capsys, command, broken)
        assert code == 2 and "(member mobilenet_v2_0.35_96.ckpt.index)" in err, err
        assert "tf2torch-" not in err  # named as the archive's member, not a temp path
    assert _leftovers(tmpdir_watch) == []


def test_interrupted_convert_leaves_nothing(release, capsys, tmpdir_watch: Path,
                                            tmp_path: Path, monkeypatch) -> None:
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("tf2torch.api.convert_source", interrupted)
    code, _out, err = run(capsys, "convert", release.archive, "-o", tmp_path / "pkg",
                         "--no-verify")
    assert code == 130
    assert err.strip().splitlines() == [
        f"tf2torch convert {release.archive}: interrupted; nothing half-written was left"]
    assert not (tmp_path / "pkg").exists() and _leftovers(tmpdir_watch) == []


@pytest.mark.parametrize(("garble", "drop", "culprit"), [
    ("_frozen.pb", (), "mobilenet_v2_0.35_96_frozen.pb"),
    ("tests.h5", ("_frozen.pb", ".tflite"), "tests.h5"),
])
def test_unreadable_reference_is_an_error(release, capsys, tmp_path: Path, garble: str,
                                          drop: tuple[str, ...], culprit: str) -> None:
    archive = _repack(release, tmp_path / release.archive.name, drop, (garble,))
    code, out, err = run(capsys, "convert", archive, "-o", tmp_path / "pkg")
    assert code == 2, out + err
    assert f"{archive} (member {culprit})" in err and "not verified" not in out
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "pkg").exists()


def test_why_a_conversion_is_not_verified(release, capsys, tmp_path: Path) -> None:
    code, out, _ = run(capsys, "convert", release.archive, "-o", tmp_path / "a", "--no-verify")
    assert code == 0 and "not verified: verification turned off (--no-verify)" in out
    bare = _repack(release, tmp_path / release.archive.name,
                   drop=("_frozen.pb", ".tflite", "tests.h5", ".keras"))
    code, out, _ = run(capsys, "convert", bare, "-o", tmp_path / "b", "--json")
    assert code == 0 and "nothing to verify against" in json.loads(out)["unverified"]


def test_internal_error_is_one_line_naming_command_input_and_stage(
        release, capsys, tmp_path: Path, monkeypatch) -> None:
    def broken(*args, **kwargs):
        raise ValueError("something\nwent wrong")

    monkeypatch.setattr("tf2torch.api.convert_source", broken)
    argv = ("convert", release.archive, "-o", tmp_path / "pkg", "--no-verify")
    code, _, err = run(capsys, *argv)
    assert code == 3
    assert err.strip().splitlines() == [
        f"tf2torch convert {release.archive}: internal error while in stage 'convert': "
        "ValueError: something went wrong; rerun with --debug for the traceback"]
    code, _, err = run(capsys, *argv, "--debug")
    assert code == 3 and "Traceback (most recent call last)" in err and "def broken" not in err


def test_third_party_warnings_only_with_verbose(release, capsys, tmp_path: Path) -> None:
    assert run(capsys, "convert", release.archive, "-o", tmp_path / "pkg", "--no-verify")[0] == 0
    shown = {}
    for flags in ((), ("--verbose",)):
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            code, _, err = run(capsys, "export", tmp_path / "pkg", "--onnx",
                               tmp_path / f"m{len(flags)}.onnx", *flags)
        assert code == 0, err
        shown[flags] = {type(w.message).__name__ for w in seen if "torch" in w.filename}
    assert shown[()] == set()
    assert shown[("--verbose",)]  # torch's tracer does warn: the quiet run hid it


def test_a_reader_that_goes_away_ends_the_command_quietly(tmp_path: Path) -> None:
    """`tf2torch list | head -1`: the rest of the output has nowhere to go. Exit 141 (as a
    shell reports SIGPIPE) and no message, not an internal error."""
    import subprocess
    import sys

    home = tmp_path / "home"
    script = ("import sys; from tf2torch.cli import main; "
              "sys.argv = ['tf2torch', 'list', '--json']; sys.exit(main())")
    env = {**os.environ, "TF2TORCH_HOME": str(home)}
    # a repository listing long enough to overflow a pipe nobody reads
    for i in range(400):
        (home / f"model_{i:03d}").mkdir(parents=True)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait() == 141, err
    assert err == ""


def test_the_command_process_ends_without_teardown_yet_whole(release, tmp_path: Path) -> None:
    """As its own process, a command ends with `os._exit` after its exit handlers: they
    ran, its output is whole, its exit code kept, its temporary folders gone."""
    import subprocess
    import sys

    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {**os.environ, "TF2TORCH_HOME": str(tmp_path / "home"), "TMPDIR": str(temp)}
    mark = tmp_path / "exit-handler-ran"
    script = ("import atexit, sys; from pathlib import Path; "
              f"atexit.register(Path({str(mark)!r}).write_text, 'yes'); "
              "from tf2torch.cli import main; sys.exit(main())")
    done = subprocess.run([sys.executable, "-c", script, "inspect", str(release.archive),
                           "--json"], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)  # the whole document, flushed
    assert _leftovers(temp) == [] and mark.read_text() == "yes"
    done = subprocess.run([sys.executable, "-c", script, "convert", str(tmp_path / "no.tgz")],
                          capture_output=True, text=True, env=env)
    assert done.returncode == 2 and "no such archive" in done.stderr
