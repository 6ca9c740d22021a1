"""Filesystem entries that open a symlink under restricted read: the empty root gets the link.

`:minimal` expands to the platform paths, and on a merged-/usr system `/bin` and `/lib64` are
symlinks. Bound by their target alone they left the empty root without `/lib64`, so no dynamic
executable could start (exit 127): a policy that could run nothing.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from conftest import Runner, chown_tree

MINIMAL_ONLY = ["-c", 'read_access={mode="restricted", include_platform_defaults=false}',
                "-c", 'default_permissions="p"',
                "-c", 'permissions.p.filesystem={":minimal"="read"}']


def test_minimal_entry_recreates_the_platform_links(runner: Runner, shared_dir: Path) -> None:
    if not os.path.islink("/lib64"):
        raise AssertionError("this test expects a merged-/usr host (/lib64 -> usr/lib64)")
    ws = shared_dir / f"links-{runner.user}-{runner.bwrap}"
    ws.mkdir()
    chown_tree(ws, runner.user)
    argv = [*runner.prefix(), "run", "--config", str(runner.config), "--cwd", str(ws),
            *runner.bwrap_options(), *MINIMAL_ONLY, "--", "sh", "-c",
            "readlink /lib64 /bin; ls /root 2>&1; cat /etc/hostname >/dev/null && echo etc-read"]
    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[:2] == [os.readlink("/lib64"), os.readlink("/bin")], out.stdout
    assert "No such file or directory" in out.stdout  # /root is no platform path: not there
    assert "etc-read" in out.stdout
