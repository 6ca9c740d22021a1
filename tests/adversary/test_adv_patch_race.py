"""`sandboxtui patch` against a workspace a running sandbox changes under it (issue 11, item
17, and the EINVAL traceback): a directory swapped for a symlink to the outside with
renameat2(RENAME_EXCHANGE) while the patch runs must never make a write land outside the
workspace, and every outcome is a clean exit code, never a traceback. Also item 13: `patch`
never writes into a `.git` at any depth."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import Runner, chown_tree, git

from sandboxtui.core.config import resolve
from sandboxtui.core.patch import PatchConflict, PatchDenied, patch_workspace
from sandboxtui.core.plan import build_plan

# Swap `d` (a directory) and `l` (a symlink to the outside) as fast as possible, for at most
# 20 s (the test stops it earlier).
_RACER = """
import ctypes, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
a, b = (os.fsencode(p) for p in sys.argv[1:3])
end = time.monotonic() + 20
while time.monotonic() < end:
    libc.renameat2(-100, a, -100, b, 2)  # AT_FDCWD, RENAME_EXCHANGE
"""


def _setup(base: Path) -> tuple[Path, Path]:
    outside = base / "outside"
    outside.mkdir()
    (outside / "f.txt").write_text("same\n")
    ws = base / "ws"
    (ws / "d").mkdir(parents=True)
    (ws / "d" / "f.txt").write_text("same\n")
    (ws / "l").symlink_to(outside)
    return ws, outside


@contextmanager
def _racing(ws: Path, user: str = "root") -> Iterator[None]:
    prefix = [] if user == "root" else ["runuser", "-u", user, "--"]
    proc = subprocess.Popen([*prefix, sys.executable, "-c", _RACER, str(ws / "d"), str(ws / "l")])
    try:
        time.sleep(0.1)
        yield
    finally:
        proc.kill()
        proc.wait()


def _diff(i: int) -> str:
    return (f"--- /dev/null\n+++ b/d/new-{i}.txt\n@@ -0,0 +1 @@\n+created {i}\n"
            f"--- a/d/f.txt\n+++ b/d/f.txt\n@@ -1 +1 @@\n-same\n+same\n")


def _outside_untouched(outside: Path) -> None:
    assert sorted(p.name for p in outside.iterdir()) == ["f.txt"], "a patch landed outside"
    assert (outside / "f.txt").read_text() == "same\n"


def test_patch_never_lands_outside_during_a_rename_exchange_race(tmp_path: Path) -> None:
    ws, outside = _setup(tmp_path)
    plan = build_plan(resolve(overrides=["sensitive_paths=[]"]), str(ws), {})
    outcomes = {"applied": 0, "denied": 0, "conflict": 0}
    deadline = time.monotonic() + 12
    with _racing(ws):
        for i in range(400):
            if time.monotonic() > deadline:
                break
            try:
                patch_workspace(_diff(i), plan)
                outcomes["applied"] += 1
            except PatchDenied:
                outcomes["denied"] += 1
            except PatchConflict:
                outcomes["conflict"] += 1
    _outside_untouched(outside)
    assert outcomes["applied"] > 0, outcomes  # the race left room for some patches to apply


@pytest.mark.parametrize("user", ["root", "nobody"])
def test_the_patch_command_races_cleanly(user: str, shared_dir: Path) -> None:
    """The CLI, as root and as nobody: exit 0, 1 or 3, never a traceback, nothing outside."""
    runner = Runner(user, "system", shared_dir / "config.toml")
    base = Path(tempfile.mkdtemp(dir=shared_dir))
    base.chmod(0o755)
    ws, outside = _setup(base)
    chown_tree(base, runner.user)
    codes: set[int] = set()
    deadline = time.monotonic() + 8
    with _racing(ws, runner.user):
        for i in range(60):
            if time.monotonic() > deadline:
                break
            diff = base / f"p{i}.diff"
            diff.write_text(_diff(i))
            r = subprocess.run([*runner.prefix(), "patch", "--config", str(runner.config),
                                "--cwd", str(ws), "-c", "sensitive_paths=[]", str(diff)],
                               capture_output=True, text=True, timeout=30)
            codes.add(r.returncode)
            assert "Traceback" not in r.stderr, r.stderr
    _outside_untouched(outside)
    assert codes <= {0, 1, 3}, codes


@pytest.mark.parametrize("target", [".git/hooks/post-checkout", "sub/.git/hooks/pre-commit",
                                    "sub/.git/config", "vendor/lib/.git/info/attributes",
                                    "new/.git/config"])
def test_patch_refuses_to_write_into_any_git_directory(tmp_path: Path, target: str) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    git(ws, "init", "-q")
    (ws / "sub").mkdir()
    git(ws / "sub", "init", "-q")
    (ws / "vendor" / "lib").mkdir(parents=True)
    git(ws / "vendor" / "lib", "init", "-q")
    plan = build_plan(resolve(), str(ws), {})
    before = (ws / target).read_text() if (ws / target).exists() else None
    if before is None:
        diff = f"--- /dev/null\n+++ b/{target}\n@@ -0,0 +1 @@\n+#!/bin/sh\n"
    else:
        diff = f"--- a/{target}\n+++ b/{target}\n@@ -1 +1,2 @@\n {before.splitlines()[0]}\n+x\n"
    with pytest.raises(PatchDenied, match=r"\.git"):
        patch_workspace(diff, plan)
    assert ((ws / target).read_text() if (ws / target).exists() else None) == before
