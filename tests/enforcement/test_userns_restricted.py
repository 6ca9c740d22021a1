"""Machines where bwrap cannot make its user namespace: `run` refuses (exit 4) and, with
`doctor`, names the cause and the remedies.

Two real kernel states, as root and as `nobody`:
- Ubuntu's AppArmor restriction, through a bwrap stand-in that fails exactly as Ubuntu's bwrap
  does (its message, its exit code), since this kernel has no AppArmor;
- no user namespaces at all: `user.max_user_namespaces = 0`. That sysctl is per user
  namespace, so the test sets it in a user namespace of its own (every uid mapped to itself),
  where the kernel refuses new user namespaces to everything inside, exactly as with the
  host's sysctl at 0, while the host's value, which concurrent tests need, is never touched.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from conftest import Runner, chown_tree

from sandboxtui.core.userns import RESTRICT_SYSCTL, probe_uid_map

USERS = ["root", "nobody"]
UBUNTU_BWRAP = "#!/bin/sh\necho 'bwrap: setting up uid map: Permission denied' >&2\nexit 1\n"


@pytest.fixture
def standin(shared_dir: Path) -> Path:
    """A bwrap that fails as Ubuntu's does under kernel.apparmor_restrict_unprivileged_userns."""
    path = shared_dir / "ubuntu-bwrap"
    path.write_text(UBUNTU_BWRAP)
    path.chmod(0o755)
    return path


def cli(user: str, shared_dir: Path, ws: Path, *args: str) -> list[str]:
    runner = Runner(user, "vendored", shared_dir / "config.toml")
    return [*runner.prefix(), args[0], "--config", str(runner.config), "--cwd", str(ws),
            *args[1:]]


def sandboxtui(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)


@pytest.mark.parametrize("user", USERS)
def test_ubuntu_restriction_refuses_the_run_and_names_apparmor(
        user: str, shared_dir: Path, workspace: Path, standin: Path) -> None:
    chown_tree(workspace, user)
    use = ["-c", f'system_bwrap="{standin}"']
    done = sandboxtui(cli(user, shared_dir, workspace, "run", *use, "--", "touch", "ran"))
    assert done.returncode == 4, done.stderr
    assert not (workspace / "ran").exists()
    assert "AppArmor" in done.stderr and RESTRICT_SYSCTL in done.stderr
    assert f'profile sandboxtui-bwrap "{standin}"' in done.stderr
    assert "bwrap-userns-restrict" in done.stderr and "use_legacy_landlock" in done.stderr

    doctor = sandboxtui(cli(user, shared_dir, workspace, "doctor", "--json", *use))
    report = json.loads(doctor.stdout)
    assert report["pipeline"] is None
    cause = next(d for d in report["diagnostics"] if d["code"] == "userns-apparmor")
    assert "AppArmor" in cause["cause"] and "(4) last" in cause["remedy"]
    assert report["capabilities"]["userns"]["uid_map"] == "ok"  # this kernel has no AppArmor


def test_the_uid_map_probe_writes_a_real_uid_map() -> None:
    assert probe_uid_map() == "ok"


def without_user_namespaces(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    """Run `argv` as root in a user namespace (uids and gids mapped to themselves) whose
    user.max_user_namespaces is 0: no process inside may create another."""
    inner = 'echo 0 > /proc/sys/user/max_user_namespaces && exec "$@" </dev/null'
    # exec again once the map is written (the line on stdin says so): only then is the shell
    # root inside, capabilities and all, and may write the namespace's sysctl
    script = f'read _; exec sh -c \'{inner}\' sh "$@"'
    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
    proc = subprocess.Popen(["unshare", "--user", "--", "sh", "-c", script, "sh", *argv],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        ours = os.readlink("/proc/self/ns/user")
        deadline = time.monotonic() + 10
        while os.readlink(f"/proc/{proc.pid}/ns/user") == ours:
            assert time.monotonic() < deadline, "unshare did not make a user namespace"
            time.sleep(0.001)
        for name in ("uid_map", "gid_map"):
            with open(f"/proc/{proc.pid}/{name}", "w") as fh:
                fh.write("0 0 4294967295")
        out, err = proc.communicate("\n", timeout=60)
    finally:
        proc.kill()
        proc.wait()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.mark.skipif(os.geteuid() != 0, reason="maps every uid into a user namespace: root only")
@pytest.mark.parametrize("user", USERS)
def test_no_user_namespaces_refuses_the_run_and_names_the_sysctl(
        user: str, shared_dir: Path, workspace: Path) -> None:
    chown_tree(workspace, user)
    done = without_user_namespaces(cli(user, shared_dir, workspace, "run", "--", "touch", "ran"))
    assert done.returncode == 4, done.stderr
    assert not (workspace / "ran").exists()
    assert "user namespaces are disabled on this machine (sysctl user.max_user_namespaces = 0)" \
        in done.stderr
    assert "use_legacy_landlock" in done.stderr

    doctor = without_user_namespaces(cli(user, shared_dir, workspace, "doctor", "--json"))
    report = json.loads(doctor.stdout)
    assert report["pipeline"] is None
    assert "userns-disabled" in [d["code"] for d in report["diagnostics"]]
    assert report["capabilities"]["userns"]["uid_map"].startswith("unshare:")
    with open("/proc/sys/user/max_user_namespaces") as fh:
        assert int(fh.read()) > 0  # the host's own value was never touched
