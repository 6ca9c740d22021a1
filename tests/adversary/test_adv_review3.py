"""Found by a review of the hardening's own code: a placeholder whose name became a symlink
after planning was skipped (bwrap then mounted over the link's target, and the name stayed
creatable), the neutraliser judged a file unchanged by its modification time (which a command
can set back), and a setup that could not be watched left the launch waiting forever."""

from __future__ import annotations

import os
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest
from conftest import Runner, chown_tree, git, make_workspace

from sandboxtui.core import launch, setup_check
from sandboxtui.core.bwrap import SandboxSetupError, launch_files
from sandboxtui.core.config import resolve
from sandboxtui.core.mask_stage import split_ops
from sandboxtui.core.plan import OpKind, build_plan


def test_a_placeholder_name_turned_symlink_after_planning_is_refused(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "elsewhere").mkdir()
    plan = build_plan(resolve(env={}), str(ws), env={})
    assert any(op.kind is OpKind.BLOCK_MISSING_DIR and op.dest == str(ws / ".git")
               for op in plan.ops)
    (ws / ".git").symlink_to(ws / "elsewhere")  # planted between the plan and the launch
    with pytest.raises(SandboxSetupError, match="became a symlink"), \
            launch_files(plan, seccomp_fd=None, status_fd=None):
        pass
    assert (ws / ".git").is_symlink() and not os.listdir(ws / "elsewhere")


def test_setup_checks_cover_placeholders(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    plan = build_plan(resolve(env={}), str(ws), env={})
    with launch_files(plan, seccomp_fd=None, status_fd=None):
        kinds = {e.kind for e in setup_check.expected(plan, split_ops(plan).bwrap)}
    assert OpKind.BLOCK_MISSING_DIR in kinds


def test_an_unwatchable_setup_is_refused_not_left_waiting(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As when /proc/PID/syscall cannot be read (Yama ptrace_scope >= 2): the sandbox is
    killed and the launch refused (exit 4), never run unchecked nor left blocked."""
    monkeypatch.setattr(setup_check, "wait_blocked", lambda *_a, **_k: False)
    plan = build_plan(resolve(env={}), str(tmp_path), env={})
    spec = launch.prepare(plan, ["/bin/echo", "RAN"])
    start = time.monotonic()
    running = launch.start(spec, capture=True)
    guard = threading.Timer(20, running.cancel)  # the test itself must not hang on a regression
    guard.start()
    try:
        out = b"".join(e.data for e in running.events() if e.stream == "stdout")
        result = running.wait()
    finally:
        guard.cancel()
    assert time.monotonic() - start < 20
    assert result.exit_code == 4 and "cannot watch" in (result.error or ""), result
    assert b"RAN" not in out


def test_an_in_place_edit_with_its_time_set_back_is_still_neutralised(
        shared_dir: Path) -> None:
    """Legacy Landlock cannot keep `.git` read-only: a command rewrites the user's alias in
    place with one of the same length that runs code, and sets the file's time back."""
    base = Path(tempfile.mkdtemp(dir=shared_dir))
    base.chmod(0o755)
    ws = make_workspace(base)
    own = "checkout --progress --recurse-submodules --no-guess"  # the user's own alias
    git(ws, "config", "alias.co", own)
    chown_tree(ws, "nobody")
    mark = f"/tmp/pwned-{os.urandom(4).hex()}"
    evil = f"!touch {mark}".ljust(len(own))  # the same length: the file's size stays
    script = ("import os\np = '.git/config'\nst = os.stat(p)\ndata = open(p).read()\n"
              f"new = data.replace({own!r}, {evil!r})\n"
              "assert len(new) == len(data)\n"
              "fd = os.open(p, os.O_WRONLY)\nos.write(fd, new.encode())\nos.close(fd)\n"
              "os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))\nprint('EDITED')\n")
    runner = Runner("nobody", "system", shared_dir / "config.toml", "legacy")
    argv = [*runner.prefix(), "run", "--config", str(runner.config), "--cwd", str(ws),
            *runner.bwrap_options(), "--", "python3", "-c", script]
    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)
    assert "EDITED" in r.stdout, r.stderr
    assert "touch" not in (ws / ".git" / "config").read_text(), r.stderr
    assert "removed alias.co" in r.stderr
