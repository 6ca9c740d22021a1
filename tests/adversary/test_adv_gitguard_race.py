"""The post-run neutraliser acts as the launcher (perhaps root) while another sandbox may still
run on the same workspace: that sandbox can swap a repository's `hooks` (or `.git`) for a
symlink to a host directory at any moment (RENAME_EXCHANGE). Reproduced before the fix: the
root launcher renamed host executables to `*.sandboxtui-disabled` and moved others into the
workspace. Now it acts only through descriptors opened without following symlinks."""

from __future__ import annotations

import ctypes
import multiprocessing
import shutil
import tempfile
from pathlib import Path

import pytest

from sandboxtui.core import gitguard

RENAME_EXCHANGE = 2
AT_FDCWD = -100


def _flip(a: str, b: str, stop: multiprocessing.synchronize.Event) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    while not stop.is_set():
        libc.renameat2(AT_FDCWD, a.encode(), AT_FDCWD, b.encode(), RENAME_EXCHANGE)


def _host_dir() -> tuple[Path, dict[str, bytes]]:
    host = Path(tempfile.mkdtemp(prefix="sandboxtui-hostbin-", dir="/var/tmp"))
    for i in range(8):
        tool = host / f"tool{i}"
        tool.write_text(f"#!/bin/sh\necho {i}\n")
        tool.chmod(0o755)
    return host, {p.name: p.read_bytes() for p in host.iterdir()}


@pytest.mark.parametrize("target", ["hooks", "config"])
def test_a_swapped_hooks_dir_or_config_never_leads_outside(tmp_path: Path, target: str) -> None:
    ws = tmp_path / "ws"
    (ws / "new" / ".git" / "hooks").mkdir(parents=True)
    git_dir = ws / "new" / ".git"
    (git_dir / "HEAD").write_text("ref: refs/heads/main\n")
    host, contents = _host_dir()
    host_config = host / "config"
    host_config.write_text("[core]\n\tfsmonitor = keep-me\n")
    try:
        before = gitguard.snapshot([str(ws)], None)
        stop = multiprocessing.Event()
        for _ in range(30):
            # what a command leaves: a new hook and a code-running setting, and the link the
            # racing sandbox swaps in for `target`
            link = git_dir / f"{target}-link"
            for path in (git_dir / "hooks", git_dir / "config", link):
                if path.is_symlink() or path.is_file():
                    path.unlink()
                elif path.is_dir():
                    shutil.rmtree(path)
            (git_dir / "hooks").mkdir()
            hook = git_dir / "hooks" / "post-checkout"
            hook.write_text("#!/bin/sh\n")
            hook.chmod(0o755)
            (git_dir / "config").write_text("[core]\n\tfsmonitor = touch /tmp/x\n")
            link.symlink_to(host / "config" if target == "config" else host)
            flipper = multiprocessing.Process(
                target=_flip, args=(str(git_dir / target), str(link), stop))
            flipper.start()
            try:
                gitguard.neutralise(before, [str(ws)])
            finally:
                stop.set()
                flipper.join(5)
                stop.clear()
        assert sorted(p.name for p in host.iterdir()) == sorted([*contents, "config"])
        assert {n: (host / n).read_bytes() for n in contents} == contents
        assert host_config.read_text() == "[core]\n\tfsmonitor = keep-me\n"
    finally:
        shutil.rmtree(host)


def test_the_neutraliser_still_works_without_a_race(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    git_dir = ws / "new" / ".git"
    (git_dir / "hooks").mkdir(parents=True)
    (git_dir / "HEAD").write_text("ref: refs/heads/main\n")
    before = gitguard.snapshot([str(ws)], None)
    (git_dir / "config").write_text("[core]\n\tfsmonitor = touch /tmp/x\n\tbare = false\n")
    hook = git_dir / "hooks" / "pre-commit"
    hook.write_text("#!/bin/sh\n")
    hook.chmod(0o755)
    done = gitguard.neutralise(before, [str(ws)])
    assert any("removed core.fsmonitor" in line for line in done), done
    assert "fsmonitor" not in (git_dir / "config").read_text()
    assert "bare = false" in (git_dir / "config").read_text()
    assert not hook.exists() and (git_dir / "hooks" / "pre-commit.sandboxtui-disabled").exists()
    assert not [p for p in git_dir.iterdir() if p.name.startswith(".config.sandboxtui-")]
