"""The per-workspace cache directory is bound writable inside; its cache home must lie where
no sandbox can reach, or a running sandbox could swap it for a symlink (reproduced with HOME =
the workspace: a later launch bound /var/tmp/secretdir writable). Real launches, root and
nobody."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from conftest import Runner, chown_tree

PROBE = ('echo "cache=${npm_config_cache:-none}"; touch "$HOME/.cache/x" 2>/dev/null && echo W; '
         'true')


def _run(runner: Runner, ws: Path, home: Path) -> subprocess.CompletedProcess[str]:
    prefix = runner.prefix()
    env = {k: v for k, v in os.environ.items() if k not in ("XDG_RUNTIME_DIR",
                                                            "XDG_CACHE_HOME")}
    if "env" in prefix:
        prefix.insert(prefix.index("env") + 1, f"HOME={home}")
    else:
        env["HOME"] = str(home)
    argv = [*prefix, "run", "--config", str(runner.config), "--cwd", str(ws),
            *runner.bwrap_options(), "--", "sh", "-c", PROBE]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)


def test_a_cache_home_inside_a_writable_root_gets_no_cache(runner: Runner,
                                                          workspace: Path) -> None:
    (workspace / ".cache").mkdir()
    chown_tree(workspace, runner.user)
    r = _run(runner, workspace, workspace)  # HOME = the workspace
    assert r.returncode == 0, r.stderr
    assert "cache=none" in r.stdout, r.stdout
    assert "cache-in-writable-root" in r.stderr or "writable root" in r.stderr, r.stderr
    assert not (workspace / ".cache" / "sandboxtui").exists()


def test_a_cache_home_outside_gets_its_workspace_cache(runner: Runner, workspace: Path,
                                                       shared_dir: Path) -> None:
    home = Path("/var/tmp") / f"sandboxtui-cachehome-{os.urandom(4).hex()}"
    home.mkdir()
    try:
        chown_tree(home, runner.user)
        chown_tree(workspace, runner.user)
        r = _run(runner, workspace, home)
        assert r.returncode == 0, r.stderr
        cache = r.stdout.split("cache=")[1].split()[0]
        assert cache.startswith(f"{home}/.cache/sandboxtui/workspaces/"), r.stdout
        assert "W" not in r.stdout.split()  # the home's own .cache stays read-only
    finally:
        subprocess.run(["rm", "-rf", str(home)], check=False)
