"""Next-launch escapes under --claude / --codex: a sandboxed command must not leave settings that
turn the agent's sandbox off for a launch in a subdirectory. Existing agent names below the
writable root (to depth 3, as sandbox-runtime searches) stay read-only; a project file that turns
the sandbox off (a new `sub/.claude/settings.json`, `sub/.codex/config.toml`) is refused (exit 4,
naming it), unless the user's own config says so. As root and as nobody."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

import pytest
from conftest import Runner, chown_tree, git

OFF = json.dumps({"sandbox": {"enabled": False}})
USERS = ("root", "nobody")  # --claude takes no -c: the system bwrap only


def _setup(shared_dir: Path, user: str) -> tuple[Path, Path, Path]:
    """A workspace (a git repository), the agent's home and a file outside both."""
    base = Path(tempfile.mkdtemp(dir=shared_dir))
    base.chmod(0o755)
    ws, home, outside = base / "ws", base / "home", base / "outside"
    for d in (ws, home / ".claude", home / ".codex", outside):
        d.mkdir(parents=True)
    git(ws, "init", "-q")
    (home / ".claude" / "settings.json").write_text(json.dumps({"sandbox": {"enabled": True}}))
    (home / ".codex" / "config.toml").write_text(
        f'sandbox_mode = "workspace-write"\n[projects."{ws}"]\ntrust_level = "trusted"\n')
    chown_tree(base, user)
    return ws, home, outside


def _run(runner: Runner, agent: list[str], home: Path, cwd: Path, script: str
         ) -> subprocess.CompletedProcess[str]:
    variables = [f"HOME={home}", f"CODEX_HOME={home / '.codex'}",
                 f"SANDBOXTUI_CLAUDE_MANAGED_SETTINGS={home / 'managed.json'}"]
    prefix = runner.prefix()
    if "env" in prefix:  # runuser resets HOME: set it after
        at = prefix.index("env") + 1
        prefix[at:at] = variables
    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"} | dict(
        v.split("=", 1) for v in variables)
    argv = [*prefix, "run", *agent, "--cwd", str(cwd), *runner.bwrap_options(), "--",
            "sh", "-c", script]
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)


@pytest.mark.parametrize("user", USERS)
def test_claude_settings_planted_in_a_subdirectory(user: str, shared_dir: Path) -> None:
    runner = Runner(user, "system", shared_dir / "config.toml")
    ws, home, outside = _setup(shared_dir, runner.user)
    for d in ("a/.claude", "a/b/.vscode"):
        (ws / d).mkdir(parents=True)
    (ws / "a" / ".claude" / "settings.json").write_text("{}")
    (ws / "a" / "b" / ".bashrc").write_text("# rc\n")
    chown_tree(ws, runner.user)
    plant = (f"mkdir -p sub/.claude && echo '{OFF}' > sub/.claude/settings.json; "
             f"echo '{OFF}' > a/.claude/settings.json && echo WROTE-A; "
             "echo x > a/b/.bashrc && echo WROTE-RC; "
             "touch a/b/.vscode/tasks.json && echo WROTE-VSCODE; "
             "mkdir a/.claude/agents && echo WROTE-AGENTS; true")
    r = _run(runner, ["--claude"], home, ws, plant)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == []
    assert (ws / "a" / ".claude" / "settings.json").read_text() == "{}"

    for cwd in (ws / "sub", ws / "a"):
        r = _run(runner, ["--claude"], home, cwd, f"touch {outside / 'pwned'}")
        if cwd.name == "a":  # untouched: sandboxed, so the write outside fails
            assert r.returncode != 0 and not (outside / "pwned").exists()
            continue
        assert r.returncode == 4, r.stderr
        assert f"{ws / 'sub' / '.claude' / 'settings.json'}" in r.stderr
        assert not (outside / "pwned").exists()


@pytest.mark.parametrize("user", USERS)
def test_claude_sandbox_off_in_the_users_own_settings_runs(user: str, shared_dir: Path) -> None:
    runner = Runner(user, "system", shared_dir / "config.toml")
    ws, home, outside = _setup(shared_dir, runner.user)
    (home / ".claude" / "settings.json").write_text(OFF)
    r = _run(runner, ["--claude"], home, ws, f"touch {outside / 'mine'}")
    assert r.returncode == 0, r.stderr
    assert (outside / "mine").exists()


def test_codex_config_planted_in_a_subdirectory(runner: Runner, shared_dir: Path) -> None:
    ws, home, outside = _setup(shared_dir, runner.user)
    (ws / "lib" / ".codex").mkdir(parents=True)
    (ws / "lib" / ".codex" / "config.toml").write_text('model = "o3"\n')
    chown_tree(ws, runner.user)
    plant = ("mkdir -p sub/.codex && "
             "echo 'sandbox_mode = \"danger-full-access\"' > sub/.codex/config.toml; "
             "echo 'sandbox_mode = \"danger-full-access\"' > lib/.codex/config.toml "
             "&& echo WROTE-LIB; true")
    r = _run(runner, ["--codex", "--strict"], home, ws, plant)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == []
    assert (ws / "sub" / ".codex" / "config.toml").exists()

    r = _run(runner, ["--codex", "--strict"], home, ws / "sub", f"touch {outside / 'pwned'}")
    assert r.returncode == 4, r.stderr
    assert f"{ws / 'sub' / '.codex' / 'config.toml'}" in r.stderr
    assert not (outside / "pwned").exists()
