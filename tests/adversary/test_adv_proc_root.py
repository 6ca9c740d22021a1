"""Tracebacks are bugs (issue 11): a command line, an `explain` argument or a patch that names a
path through a link this user may not read (`/proc/1/root`, EACCES on readlink) gets a clear
answer and a documented exit code, as root and as nobody."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from conftest import CANARY, Runner, chown_tree


def _cli(runner: Runner, ws: Path, *args: str,
         stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    command, rest = args[0], args[1:]
    argv = [*runner.prefix(), command, "--config", str(runner.config), "--cwd", str(ws),
            *runner.bwrap_options(), *rest]
    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env,
                          input=stdin)


def test_proc_pid_root_paths_get_clear_answers(runner: Runner, workspace: Path) -> None:
    chown_tree(workspace, runner.user)
    # The launcher may not read the host's /proc/1/root; inside, it is the sandbox's own root.
    run = runner.run(workspace, ["cat", "/proc/1/root/etc/hostname"])
    assert "Traceback" not in run.stderr
    assert run.returncode == 0, run.stderr
    # A sensitive name behind the unreadable link is still flagged.
    run = _cli(runner, workspace, "run", "-c", 'sensitive_path_precheck_mode="block"', "--",
               "cat", f"/proc/1/root{workspace}/.env")
    assert run.returncode == 3 and ".env" in run.stderr, run.stderr
    assert CANARY not in run.stdout
    explain = _cli(runner, workspace, "explain", "/proc/1/root/etc/x")
    assert "Traceback" not in explain.stderr
    assert explain.returncode == 0 and "access:   ro" in explain.stdout, explain.stderr
    diff = "--- /dev/null\n+++ /proc/1/root/tmp/x\n@@ -0,0 +1 @@\n+x\n"
    patch = _cli(runner, workspace, "patch", "-", stdin=diff)
    assert "Traceback" not in patch.stderr
    assert patch.returncode == 3 and "outside the workspace" in patch.stderr, patch.stderr


def test_config_paths_and_workspace_links_through_proc_pid_root(runner: Runner,
                                                                workspace: Path) -> None:
    """Configured roots through `/proc/1/root` and a workspace symlink into it: planned as
    written (a warning, or a refusal), never a traceback."""
    (workspace / "into-init").symlink_to("/proc/1/root/tmp")
    chown_tree(workspace, runner.user)
    roots = ['-c', 'sandbox_workspace_write.writable_roots=["/proc/1/root/tmp"]',
             '-c', 'read_access={mode="restricted",readable_roots=["/proc/1/root/etc"]}']
    for command in ("plan", "explain"):
        args = [command, *roots] + (["/proc/1/root/tmp/x"] if command == "explain" else [])
        done = _cli(runner, workspace, *args)
        assert "Traceback" not in done.stderr, done.stderr
        assert done.returncode == 0, done.stderr
    run = _cli(runner, workspace, "run", *roots, "--", "true")
    assert "Traceback" not in run.stderr
    assert run.returncode in (0, 4), run.stderr
    diff = "--- /dev/null\n+++ b/into-init/x\n@@ -0,0 +1 @@\n+x\n"
    patch = _cli(runner, workspace, "patch", "-", stdin=diff)
    assert "Traceback" not in patch.stderr
    assert patch.returncode == 3, patch.stderr
