"""The approvals socket lives in the one per-user runtime directory, hidden in every sandbox
(issue 11, item 18): with `XDG_RUNTIME_DIR` unset it used to fall back to `$TMPDIR`, which is
writable inside, so a sandboxed command could inject or intercept approval requests."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from conftest import Runner, chown_tree, make_workspace


def test_the_approvals_socket_directory_is_hidden_inside(runner: Runner,
                                                         shared_dir: Path) -> None:
    base = Path(tempfile.mkdtemp(dir=shared_dir))
    base.chmod(0o755)
    ws = make_workspace(base)
    tmpdir = ws / "tmpdir"
    tmpdir.mkdir()
    chown_tree(ws, runner.user)
    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"} | {
        "TMPDIR": str(tmpdir)}
    code = ("from sandboxtui.core.approvals.broker import default_socket_dir as d; "
            "from sandboxtui.core.paths import runtime_dir as r; print(d()); print(r())")
    out = subprocess.run([*runner.prefix()[:-2], "-c", code], capture_output=True, text=True,
                         check=True, env=env).stdout.split()
    socket_dir = out[0]
    # A sandboxed command (with $TMPDIR writable) tries to plant a socket directory of its own.
    plant = 'mkdir -p "$1" && echo planted > "$1/console.sock" && echo PLANTED'
    argv = [*runner.prefix(), "run", "--config", str(runner.config), "--cwd", str(ws),
            *runner.bwrap_options(), "--", "sh", "-c", plant, "sh", socket_dir]
    r = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)
    assert "PLANTED" not in r.stdout, r.stderr
    # (a TUI of this user may have a real socket there: only the planted file must not be)
    planted = os.path.join(socket_dir, "console.sock")
    assert not os.path.isfile(planted) and not os.path.islink(planted)
    assert socket_dir == out[1], "the approvals socket is not in the runtime directory"
