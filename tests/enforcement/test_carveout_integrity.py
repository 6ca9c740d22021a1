"""Carveouts must stay where they are and the policy must stay what it is, against the kernel.

Two escapes found in review: renaming a workspace that lives inside another writable mount
moved its `.git` mount away and let a new `.git` be created at the old path; and a command whose
workspace is $HOME could rewrite sandboxtui's own config, so the next launch ran unsandboxed.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import pytest
from conftest import RUNNERS, Runner, chown_tree, make_workspace


def run_as(runner: Runner, cwd: Path, script: str, env: dict[str, str] | None = None
           ) -> subprocess.CompletedProcess[str]:
    argv = [*runner.prefix(), "run", "--config", str(runner.config), "--cwd", str(cwd),
            *runner.bwrap_options(), "--", "sh", "-c", script]
    base = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
    return subprocess.run(argv, capture_output=True, text=True, timeout=60,
                          env={**base, **(env or {})})


@pytest.mark.parametrize("params", RUNNERS, ids=lambda p: "-".join(p))
def test_a_workspace_inside_tmp_cannot_be_renamed_from_under_its_carveouts(
    params: tuple[str, str], shared_dir: Path
) -> None:
    runner = Runner(*params, shared_dir / "config.toml")  # /tmp is writable: ws is inside it
    base = Path(tempfile.mkdtemp(dir=shared_dir))
    base.chmod(0o755)
    (base / "mid").mkdir()
    ws = make_workspace(base / "mid")
    chown_tree(base, runner.user)  # only the sandbox stands in the way of these renames
    before = (ws / ".git" / "config").read_bytes()
    done = run_as(runner, ws, "cd .. && mv ws ws-moved; echo mv=$?; "
                  "cd .. && mv mid mid-moved; echo up=$?; "
                  "mkdir -p mid/ws/.git 2>&1; echo x > mid/ws/.git/config 2>&1; true")
    assert "mv=1" in done.stdout and "up=1" in done.stdout, done.stdout + done.stderr
    assert done.stderr.count("Device or resource busy") == 2
    assert (ws / ".git" / "config").read_bytes() == before
    assert sorted(os.listdir(base)) == ["mid"] and "ws" in os.listdir(base / "mid")


@pytest.mark.parametrize("params", RUNNERS[::2], ids=lambda p: "-".join(p))
def test_a_command_cannot_rewrite_sandboxtuis_own_config(
    params: tuple[str, str], shared_dir: Path
) -> None:
    runner = Runner(*params, shared_dir / "config.toml")
    home = Path(tempfile.mkdtemp(dir=shared_dir))
    home.chmod(0o755)
    chown_tree(home, runner.user)
    attack = ("mkdir -p ~/.config/sandboxtui 2>&1; "
              "echo 'sandbox_mode = \"danger-full-access\"' > ~/.config/sandboxtui/config.toml;"
              " echo rc=$?; echo x > ~/.local/state/sandboxtui/audit.jsonl; echo audit=$?")
    # the runner's --config names an explicit file; the attack targets the default one
    prefix = runner.prefix()
    if "env" in prefix:  # runuser resets HOME: hand it over explicitly
        prefix.insert(prefix.index("env") + 1, f"HOME={home}")
    argv = [*prefix, "run", "--cwd", str(home), *runner.bwrap_options(), "--",
            "sh", "-c", attack]
    base = {k: v for k, v in os.environ.items()
            if k not in ("XDG_RUNTIME_DIR", "XDG_CONFIG_HOME", "XDG_STATE_HOME")}
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60,
                          env={**base, "HOME": str(home)})
    assert "rc=2" in done.stdout and "audit=2" in done.stdout, done.stdout + done.stderr
    assert "Read-only file system" in done.stderr
    assert not (home / ".config" / "sandboxtui" / "config.toml").exists()
