"""Another local user squats a victim's runtime directory (attack review, H4): as nobody,
`mkdir -m700 /tmp/sandboxtui-1` before uid 1 (daemon, who has no /run/user/1) ever runs; every
`run` of uid 1 without XDG_RUNTIME_DIR used to exit 4. Launches now keep their files in a fresh
private directory of their own, hidden in the sandbox and removed at exit; the squatted
directory is never used, and approvals (whose socket a headless run must find by name) are
refused there with the remedy."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import SRC, chown_tree, make_workspace, python_for

VICTIM, SQUATTER = "daemon", "nobody"
SQUATTED = f"/tmp/sandboxtui-{1}"


@pytest.fixture
def squatted() -> Iterator[str]:
    if os.geteuid() != 0:
        pytest.skip("needs root: the test runs as two other users")
    if os.path.lexists(SQUATTED) or os.path.exists("/run/user/1"):
        pytest.skip(f"{SQUATTED} or /run/user/1 exists already")
    subprocess.run(["runuser", "-u", SQUATTER, "--", "mkdir", "-m700", SQUATTED], check=True)
    yield SQUATTED
    shutil.rmtree(SQUATTED)


def _as_victim(ws: Path, command: list[str]) -> subprocess.CompletedProcess[str]:
    import sysconfig

    home = ws.parent / "home"
    home.mkdir(exist_ok=True)
    chown_tree(home, VICTIM)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home),
           "PYTHONPATH": f"{SRC}:{sysconfig.get_paths()['purelib']}"}
    config = ws.parent / "config.toml"
    config.write_text("")
    argv = ["runuser", "-u", VICTIM, "--", "env", "-i", *(f"{k}={v}" for k, v in env.items()),
            python_for(SQUATTER), "-m", "sandboxtui", "run", "--config", str(config), "--cwd",
            str(ws), "--", *command]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)


@pytest.fixture
def victim_ws(shared_dir: Path) -> Path:
    base = Path(tempfile.mkdtemp(dir=shared_dir))
    base.chmod(0o755)
    ws = make_workspace(base)
    chown_tree(base, VICTIM)
    return ws


def test_a_squatted_runtime_directory_does_not_stop_launches(squatted: str,
                                                             victim_ws: Path) -> None:
    # Inside, the launch's own runtime directory is hidden like the shared one would be.
    peek = 'for d in /tmp/sandboxtui-1-*; do ls -A "$d" && echo "LISTED $d"; done; echo ran'
    r = _as_victim(victim_ws, ["sh", "-c", peek])
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1] == "ran" and "LISTED" not in r.stdout, r.stdout
    assert os.listdir(squatted) == [] and os.stat(squatted).st_uid != 1
    assert glob.glob("/tmp/sandboxtui-1-*") == [], "the launch's own directory was left"


def test_approvals_are_refused_in_a_squatted_directory_with_the_remedy(
        squatted: str, victim_ws: Path) -> None:
    r = _as_victim(victim_ws, ["cat", ".env"])
    assert r.returncode == 3, r.stderr
    assert f"socket directory {squatted} is owned by uid" in r.stderr, r.stderr
    assert "set XDG_RUNTIME_DIR" in r.stderr, r.stderr
