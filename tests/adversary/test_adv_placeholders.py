"""Placeholders for missing protected directories (issue 12, item 4): a missing `.git`,
`.codex` or `.agents` (and a git directory's missing `hooks`, `info`, ...) inside a writable
root is an empty read-only directory inside, over an empty directory on the host. Git and rg,
inside and on the host, take it for "nothing here" (a mode-000 file made git and rg fail with
"Permission denied", and host git say "invalid gitfile format"), while the sandbox still cannot
create, fill, remove or move it, and no placeholder outlives the launches."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from conftest import Runner, chown_tree, git

MISSING = (".git", ".codex", ".agents")
ENV = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"} | {"LC_ALL": "C"}


def _plain_workspace(shared_dir: Path, user: str) -> Path:
    """A directory under /tmp with a file and no `.git` anywhere above it."""
    base = Path(tempfile.mkdtemp(dir=shared_dir))
    base.chmod(0o755)
    ws = base / "ws"
    ws.mkdir()
    (ws / "notes.txt").write_text("hello\n")
    chown_tree(base, user)
    return ws


def _argv(runner: Runner, ws: Path, command: list[str], *options: str) -> list[str]:
    return [*runner.prefix(), "run", "--config", str(runner.config), "--cwd", str(ws),
            *runner.bwrap_options(), *options, "--", *command]


def _run(runner: Runner, ws: Path, script: str, *options: str) -> tuple[int, str]:
    """The launch's exit code and what the command printed (the launcher's own warnings,
    `sandboxtui: ...`, left out)."""
    done = subprocess.run(_argv(runner, ws, ["sh", "-c", script], *options),
                          capture_output=True, text=True, timeout=120, env=ENV)
    lines = (done.stdout + done.stderr).splitlines()
    return done.returncode, "\n".join(x for x in lines if not x.startswith("sandboxtui:"))


def _host_git_status(ws: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-C", str(ws), "status"], capture_output=True, text=True,
                          timeout=30, env=ENV)


INSIDE = """
git status; echo "git=$?"
rg -q hello; echo "rg=$?"
mkdir .git; echo "mkdir=$?"
touch .git/x; echo "touch=$?"
rmdir .git; echo "rmdir=$?"
mv .git moved; echo "mv=$?"
ls -A .git .codex .agents; echo "ls=$?"
"""


def test_a_missing_git_reads_as_no_repository_and_stays_uncreatable(
        runner: Runner, shared_dir: Path) -> None:
    assert shutil.which("rg") == "/usr/bin/rg", "ripgrep is not installed (.ci/run installs it)"
    ws = _plain_workspace(shared_dir, runner.user)
    code, out = _run(runner, ws, INSIDE)
    assert code == 0, out
    assert "not a git repository" in out and "git=128" in out
    assert "Permission denied" not in out and "rg=0" in out  # rg walks up past /tmp/.git
    # Occupied: cannot be created, filled, removed or moved away.
    assert "mkdir=0" not in out and "File exists" in out
    assert "touch=0" not in out and "Read-only file system" in out
    assert "rmdir=0" not in out and "mv=0" not in out
    assert out.count("Device or resource busy") == 2
    assert "ls=0" in out  # empty directories, listable
    assert sorted(os.listdir(ws)) == ["notes.txt"]  # nothing left behind


def test_host_git_sees_no_repository_while_the_sandbox_runs(runner: Runner,
                                                            shared_dir: Path) -> None:
    ws = _plain_workspace(shared_dir, runner.user)
    proc = subprocess.Popen(_argv(runner, ws, ["sleep", "4"]), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=ENV)
    try:
        deadline = time.monotonic() + 3
        while not (ws / ".git").is_dir() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert (ws / ".git").is_dir() and not (ws / ".git").is_symlink()
        assert os.listdir(ws / ".git") == []  # the host mount point: an empty directory
        status = _host_git_status(ws)
        assert status.returncode == 128, status.stderr
        assert "not a git repository" in status.stderr
        assert "invalid gitfile format" not in status.stderr
        assert proc.poll() is None, "the sandbox ended before the host was checked"
    finally:
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    for name in MISSING:
        assert not os.path.lexists(ws / name), f"placeholder {name} left on the host"


def test_missing_git_parts_are_empty_read_only_directories_under_config_and_hooks(
        runner: Runner, shared_dir: Path) -> None:
    """protect_git = "config-and-hooks" with no hooks/ nor info/: git works inside, the
    missing parts list empty and cannot be filled, created or removed; nothing is left."""
    ws = _plain_workspace(shared_dir, runner.user)
    git(ws, "init", "-q")
    for name in ("hooks", "info"):
        shutil.rmtree(ws / ".git" / name, ignore_errors=True)
    chown_tree(ws.parent, runner.user)
    script = """
git status --short; echo "git=$?"
ls -A .git/hooks .git/info; echo "ls=$?"
touch .git/hooks/pre-commit; echo "touch=$?"
mkdir .git/info; echo "mkdir=$?"
rmdir .git/hooks; echo "rmdir=$?"
"""
    code, out = _run(runner, ws, script, "-c", 'protect_git="config-and-hooks"',
                     "-c", "sandbox_workspace_write.exclude_slash_tmp=true")
    assert code == 0, out
    assert "git=0" in out and "ls=0" in out and "Permission denied" not in out
    assert "touch=0" not in out and "Read-only file system" in out
    assert "mkdir=0" not in out and "File exists" in out
    assert "rmdir=0" not in out and "Device or resource busy" in out
    for name in ("hooks", "info"):
        assert not os.path.lexists(ws / ".git" / name), f"placeholder .git/{name} left"


@pytest.mark.parametrize("name", [".git", ".agents"])
def test_a_non_empty_directory_planted_in_a_placeholder_is_not_removed(
        runner: Runner, shared_dir: Path, name: str) -> None:
    """The launcher removes only an empty placeholder directory of its own: what a host
    process put into one while the sandbox ran stays (and is then a real directory)."""
    ws = _plain_workspace(shared_dir, runner.user)
    proc = subprocess.Popen(_argv(runner, ws, ["sleep", "2"]), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=ENV)
    try:
        deadline = time.monotonic() + 3
        while not (ws / name).is_dir() and time.monotonic() < deadline:
            time.sleep(0.02)
        (ws / name).chmod(0o755)
        (ws / name / "kept").write_text("host\n")
    finally:
        proc.communicate(timeout=60)
    assert (ws / name / "kept").read_text() == "host\n"


@pytest.mark.parametrize("name", [".git", ".agents"])
def test_the_users_own_empty_directory_is_kept(runner: Runner, shared_dir: Path,
                                               name: str) -> None:
    """An empty directory at a protected name is planned like a placeholder (a concurrent
    launch's may stand there), but one the launch did not create is never removed."""
    ws = _plain_workspace(shared_dir, runner.user)
    (ws / name).mkdir(mode=0o755)
    chown_tree(ws, runner.user)
    code, out = _run(runner, ws, f"touch {name}/x; echo touch=$?; ls -A {name}; echo ls=$?")
    assert code == 0 and "touch=0" not in out and "ls=0" in out, out
    assert (ws / name).is_dir() and os.listdir(ws / name) == []


def _runtime_dir(runner: Runner) -> Path:
    code = "from sandboxtui.core.paths import runtime_dir; print(runtime_dir())"
    done = subprocess.run([*runner.prefix()[:-2], "-c", code], capture_output=True, text=True,
                          check=True, env=ENV)
    return Path(done.stdout.strip())


def test_a_crashed_launchs_placeholder_directories_are_removed_only_when_empty_and_ours(
        runner: Runner, shared_dir: Path) -> None:
    """A launch that died left its record and placeholder directories: the next launch of the
    user removes the empty ones of the placeholder mode, and keeps one that holds something
    or has another mode (no longer a placeholder of ours)."""
    ws = _plain_workspace(shared_dir, runner.user)
    left, filled, other = ws / "a" / ".agents", ws / "b" / ".codex", ws / "c" / ".git"
    for d in (left, filled, other):
        d.mkdir(parents=True)
    (filled / "kept").write_text("host\n")
    chown_tree(ws, runner.user)
    for d, mode in ((left, 0o555), (filled, 0o555), (other, 0o755)):
        d.chmod(mode)
    records = _runtime_dir(runner) / "placeholders"
    if not records.is_dir():  # a first launch makes it, private
        assert subprocess.run(_argv(runner, ws, ["true"]), env=ENV).returncode == 0
    record = records / "999999999-crashed.json"  # no such pid: nobody holds it
    record.write_text(f'["{left}", "{filled}", "{other}"]')
    chown_tree(record, runner.user)
    try:
        code, out = _run(runner, ws, "true")
        assert code == 0, out
        assert not os.path.lexists(left), "a crashed launch's placeholder was left"
        assert (filled / "kept").read_text() == "host\n"
        assert other.is_dir()
        assert not record.exists()  # judged: nothing of ours is left to remove
    finally:
        record.unlink(missing_ok=True)
