"""Concurrent launches (issue 11, item 16): launches sharing the per-user runtime directory must
neither break nor leak each other's files, and a workspace changing under a launch must not
let a masked file through."""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import CANARY, Runner, chown_tree, make_workspace


def _runtime_dir(runner: Runner) -> Path:
    """The runner's per-user runtime directory, as its own sandboxtui computes it."""
    code = "from sandboxtui.core.paths import runtime_dir; print(runtime_dir())"
    argv = [*runner.prefix()[:-2], "-c", code]
    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
    out = subprocess.run(argv, capture_output=True, text=True, check=True, env=env)
    return Path(out.stdout.strip())


def _burst(runner: Runner, ws: Path, n: int, command: list[str]) -> list[subprocess.
                                                                        CompletedProcess[str]]:
    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(lambda _: runner.run(ws, command), range(n)))


def test_twelve_concurrent_launches_all_succeed_and_leave_nothing(runner: Runner,
                                                                  workspace: Path) -> None:
    """One launch's stale-directory sweep must not remove another's fresh launch directory,
    and one launch's cleanup must not drop another's placeholder record (`.agents` is missing
    in the workspace, so every launch binds a placeholder over it)."""
    chown_tree(workspace, runner.user)
    assert not (workspace / ".agents").exists()
    base = _private_runtime_dir(runner)
    # other launches of this user (other tests) may be running: compare with before
    before = set(base.glob("launch-*")) | set((base / "placeholders").iterdir())
    for _ in range(4):
        results = _burst(runner, workspace, 12, ["true"])
        failures = [(r.returncode, r.stderr[-300:]) for r in results if r.returncode != 0]
        assert failures == []
    assert not os.path.lexists(workspace / ".agents"), "a placeholder leaked"
    after = set(base.glob("launch-*")) | set((base / "placeholders").iterdir())
    # what our launches (all ended) left; another test's launch still running is not ours
    left = [p.name for p in after - before if not _alive(p.name.removeprefix("launch-"))]
    assert left == []


def _own(path: Path, runner: Runner) -> None:
    if runner.user != "root":
        subprocess.run(["chown", f"{runner.user}:", str(path)], check=True)


def _private_runtime_dir(runner: Runner) -> Path:
    base = _runtime_dir(runner)
    for d in (base, base / "placeholders"):
        if not d.exists():
            d.mkdir(mode=0o700)
            _own(d, runner)
    return base


def test_a_fresh_launch_directory_is_not_swept_before_its_launch_locks_it(
        runner: Runner, workspace: Path) -> None:
    """A launch directory exists a moment before its launch locks it. Another launch's sweep
    in that moment must leave it alone while its creator (here: this process) lives."""
    chown_tree(workspace, runner.user)
    fresh = _private_runtime_dir(runner) / f"launch-{os.getpid()}-{os.urandom(6).hex()}"
    fresh.mkdir(mode=0o700)
    _own(fresh, runner)
    try:
        assert runner.run(workspace, ["true"]).returncode == 0
        assert fresh.is_dir(), "another launch's sweep removed a live launch's directory"
    finally:
        if fresh.exists():
            fresh.rmdir()


def test_a_live_launchs_placeholder_record_is_not_dropped(runner: Runner,
                                                          workspace: Path) -> None:
    """A launch records its placeholders before it creates them. Another launch's cleanup in
    that moment must not delete the record (the placeholder would then leak for good)."""
    chown_tree(workspace, runner.user)
    record = _private_runtime_dir(runner) / "placeholders" / f"{os.getpid()}-live.json"
    pending = workspace / "sub" / ".agents"
    record.write_text(f'["{pending}"]')
    _own(record, runner)
    fd = os.open(record, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # the live launch holds its record
        assert runner.run(workspace, ["true"]).returncode == 0
        assert record.exists(), "another launch's cleanup dropped a live launch's record"
    finally:
        os.close(fd)
        record.unlink(missing_ok=True)


def _alive(name: str) -> bool:
    """Is the process whose pid starts `name` (`PID-...`) alive?"""
    try:
        os.kill(int(name.split("-", 1)[0]), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError):
        return True
    return True


def _renamer(ws: Path, stop: threading.Event) -> None:
    """Swap the directory holding `.env` between two names every few ms, as a running sandbox
    could."""
    a, b = ws / "conf", ws / "conf2"
    while not stop.is_set():
        for src, dst in ((a, b), (b, a)):
            with contextlib.suppress(OSError):
                os.rename(src, dst)
            time.sleep(0.002)


@pytest.mark.parametrize("pipeline", ["bwrap"])
def test_a_directory_renamed_during_the_launch_never_unmasks_the_secret(
        runner: Runner, shared_dir: Path, pipeline: str) -> None:
    """The scan sees `conf/.env`; by the time bwrap mounts, `conf` may have become `conf2`.
    Whatever the timing, the secret is never read, and no stray empty `.env` is left on the
    host."""
    base = Path(tempfile.mkdtemp(dir=shared_dir))
    base.chmod(0o755)
    ws = make_workspace(base)
    (ws / "conf").mkdir()
    (ws / "conf" / ".env").write_text(f"SECRET={CANARY}\n")
    chown_tree(ws, runner.user)
    stop = threading.Event()
    mover = threading.Thread(target=_renamer, args=(ws, stop), daemon=True)
    mover.start()
    leaked, codes = 0, set()
    deadline = time.monotonic() + 15
    try:
        for _ in range(40):
            if time.monotonic() > deadline:
                break
            r = runner.run(ws, ["sh", "-c", "n=.e; cat conf/${n}nv conf2/${n}nv 2>/dev/null; true"])
            codes.add(r.returncode)
            assert r.returncode in (0, 4), r.stderr
            leaked += CANARY in r.stdout
    finally:
        stop.set()
        mover.join()
    assert leaked == 0, f"{leaked} launches read the secret"
    assert codes <= {0, 4}
    envs = sorted(str(p.relative_to(ws)) for p in ws.rglob(".env") if p.stat().st_size == 0)
    assert envs == [], f"stray empty .env files on the host: {envs}"
