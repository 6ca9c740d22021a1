"""Headless noise (issue 15, item 16): `run` prints each warning once per workspace and day
(errors always); `--verbose` prints every one, every time."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from conftest import Runner, chown_tree, make_workspace

WARNING = "sandboxtui: warning: sensitive files (.env, .env.*) that appear after"


def test_each_warning_once_per_workspace_and_day(runner: Runner, shared_dir: Path) -> None:
    base = Path(tempfile.mkdtemp(dir=shared_dir))
    base.chmod(0o755)
    ws = make_workspace(base)
    state = base / "state"
    state.mkdir()
    chown_tree(base, runner.user)
    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"} | {
        "XDG_STATE_HOME": str(state)}

    def run(*options: str) -> str:
        argv = [*runner.prefix(), "run", "--config", str(runner.config), "--cwd", str(ws),
                *runner.bwrap_options(), *options, "--", "true"]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)
        assert done.returncode == 0, done.stderr
        return done.stderr

    assert WARNING in run()
    assert WARNING not in run()  # the same workspace, the same day
    assert WARNING in run("--verbose")
