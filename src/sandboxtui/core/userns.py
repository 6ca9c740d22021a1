"""Why bwrap could not create its user namespace, and the remedies, safest first.

Ubuntu 24.04 and later restrict unprivileged user namespaces with AppArmor
(`kernel.apparmor_restrict_unprivileged_userns = 1`): `unshare(CLONE_NEWUSER)` still succeeds,
but the new namespace gets no capabilities, so bwrap's write of its uid map fails ("setting up
uid map: Permission denied"), or its loopback setup ("loopback: Failed RTM_NEWADDR"). A check
that only unshares sees nothing wrong: `probe_uid_map()` writes a uid map for real.

Nothing here runs on a launch that works: the facts are gathered only once bwrap has failed
(doctor's and the TUI's test launch, a refused `run`), to explain the failure.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass

from sandboxtui.core.diagnostics_model import Diagnostic, Severity
from sandboxtui.core.plan import MountPlan, RuleKind
from sandboxtui.core.policy import Access

RESTRICT_SYSCTL = "kernel.apparmor_restrict_unprivileged_userns"
SYSTEM_BWRAP = "/usr/bin/bwrap"  # the only path the distribution's bwrap profiles attach to
# bwrap's messages when its namespaces cannot be made (Ubuntu's two, max_user_namespaces = 0,
# Debian's unprivileged_userns_clone = 0, a container's seccomp profile)
_NAMESPACE_FAILURE = re.compile(r"uid map|gid map|RTM_NEWADDR|new namespace", re.IGNORECASE)
_UBUNTU_FAILURE = re.compile(r"setting up uid map|RTM_NEWADDR")
_UID_MAP_PROBE = """
import ctypes, os
uid = os.geteuid()
libc = ctypes.CDLL(None, use_errno=True)
if libc.unshare(0x10000000) != 0:  # CLONE_NEWUSER
    print("unshare:", os.strerror(ctypes.get_errno()))
    raise SystemExit
try:
    with open("/proc/self/uid_map", "w") as fh:
        fh.write(f"0 {uid} 1")
except OSError as exc:
    print("uid map:", exc.strerror)
else:
    print("ok")
"""


@dataclass(frozen=True)
class UsernsFacts:
    """What the kernel says about user namespaces here (None: no such sysctl)."""

    apparmor_restrict: str | None  # kernel.apparmor_restrict_unprivileged_userns
    max_user_namespaces: str | None  # user.max_user_namespaces
    unprivileged_userns_clone: str | None  # Debian's kernel.unprivileged_userns_clone
    uid_map: str  # the probe: "ok", "unshare: <error>" or "uid map: <error>"


def namespace_failure(message: str | None) -> bool:
    """Does bwrap's message say its namespaces could not be made?"""
    return message is not None and _NAMESPACE_FAILURE.search(message) is not None


def _sysctl(name: str) -> str | None:
    try:
        with open(f"/proc/sys/{name.replace('.', '/')}", encoding="ascii") as fh:
            return fh.read().strip()
    except OSError:
        return None


def probe_uid_map() -> str:
    """Create a user namespace and write its uid map, in a child process: "ok", or which
    step failed and why."""
    try:
        done = subprocess.run([sys.executable, "-I", "-S", "-c", _UID_MAP_PROBE],
                              capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unshare: the probe could not run ({exc})"
    return done.stdout.strip() or f"unshare: the probe failed ({done.stderr.strip()[-200:]})"


def userns_facts() -> UsernsFacts:
    return UsernsFacts(_sysctl(RESTRICT_SYSCTL), _sysctl("user.max_user_namespaces"),
                       _sysctl("kernel.unprivileged_userns_clone"), probe_uid_map())


def apparmor_profile(bwrap: str) -> str:
    """An AppArmor profile that lets this one bwrap binary create user namespaces."""
    return ("abi <abi/4.0>,\ninclude <tunables/global>\n\n"
            f"profile sandboxtui-bwrap \"{bwrap}\" flags=(unconfined) {{\n  userns,\n\n"
            "  include if exists <local/sandboxtui-bwrap>\n}\n")


def install_profile_command(bwrap: str) -> str:
    """One shell line that writes `apparmor_profile(bwrap)` and loads it."""
    import shlex

    text = apparmor_profile(bwrap).replace("\\", "\\\\").replace("%", "%%")
    target = "/etc/apparmor.d/sandboxtui-bwrap"
    return (f"printf {shlex.quote(text.replace(chr(10), chr(92) + 'n'))} | sudo tee {target} "
            f">/dev/null && sudo apparmor_parser -r {target}")


def _legacy_remedy(plan: MountPlan | None) -> str:
    """The legacy Landlock pipeline as a remedy, with what it would leave unenforced."""
    from sandboxtui.core.landlock import landlock_model

    head = ("the legacy Landlock pipeline (features.use_legacy_landlock = true; it needs no "
            "user namespace, for a launcher that is not root)")
    if plan is None:
        return f"{head}, which cannot enforce denied paths inside readable trees"
    model = landlock_model(plan)
    if not model.expressible:
        paths = ", ".join(r.path for r in model.inexpressible)
        return f"{head}, which cannot run this policy (its split entries for {paths})"
    # the sensitive files first: what a user most needs to know is left readable
    ranked = sorted(model.unenforced, key=lambda r: r.kind is not RuleKind.SENSITIVE)
    paths = [f"{r.path} ({'denied' if r.access is Access.NONE else 'read-only'})"
             for r in ranked]
    if not paths:
        return f"{head}; it shows the host's /proc"
    named = ", ".join(paths[:6]) + (f" and {len(paths) - 6} more" if len(paths) > 6 else "")
    return f"{head}, which does NOT enforce {named}, and shows the host's /proc"


def userns_diagnostic(bwrap: str, message: str, facts: UsernsFacts | None,
                      plan: MountPlan | None, euid: int) -> Diagnostic | None:
    """The cause and the remedies (safest first) of bwrap's namespace failure `message`, from
    the `facts` gathered after it; None when the failure is not about user namespaces."""
    probed = facts.uid_map if facts is not None else "ok"
    legacy = _legacy_remedy(plan)
    if (_UBUNTU_FAILURE.search(message) or probed.startswith("uid map:")
            or facts is not None and facts.apparmor_restrict == "1"
            and not probed.startswith("ok")):
        evidence = []
        if facts is not None and facts.apparmor_restrict == "1":
            evidence.append(f"{RESTRICT_SYSCTL} = 1 here")
        if probed.startswith("uid map:"):
            evidence.append(f"a test namespace was created but writing its uid map failed "
                            f"({probed.removeprefix('uid map: ')})")
        said = f" ({'; '.join(evidence)})" if evidence else ""
        distro = (f"or the distribution's bwrap-userns-restrict profile, which matches only "
                  f"{SYSTEM_BWRAP}" + ("" if bwrap == SYSTEM_BWRAP else
                                       f" (apt-get install bubblewrap: {bwrap} is in use)") +
                  ": sudo cp /usr/share/apparmor/extra-profiles/bwrap-userns-restrict "
                  "/etc/apparmor.d/ && sudo apparmor_parser -r "
                  "/etc/apparmor.d/bwrap-userns-restrict")
        return Diagnostic(
            Severity.ERROR, "userns-apparmor",
            f"{bwrap} cannot set up its user namespace ({message}): AppArmor restricts "
            f"unprivileged user namespaces (sysctl {RESTRICT_SYSCTL} = 1, Ubuntu 24.04 and "
            "later): creating one succeeds, but a program without an AppArmor profile that "
            f"allows `userns` may not write its uid map{said}",
            f"(1) an AppArmor profile for the bwrap in use ({bwrap}; the system's bwrap "
            f"profiles match only {SYSTEM_BWRAP}): {install_profile_command(bwrap)}; "
            f"(2) {distro}; (3) or {legacy}; (4) last, sudo sysctl -w {RESTRICT_SYSCTL}=0 "
            "lifts the restriction for every program on the machine, reopening the kernel "
            "attack surface it closes (code only a namespace's root may reach, reachable again "
            "by any local user)")
    if facts is not None and facts.max_user_namespaces == "0":
        return Diagnostic(
            Severity.ERROR, "userns-disabled",
            f"{bwrap} cannot create its user namespace ({message}): user namespaces are "
            "disabled on this machine (sysctl user.max_user_namespaces = 0)",
            f"(1) {legacy}; (2) last, sudo sysctl -w user.max_user_namespaces=15000 (and a "
            "file in /etc/sysctl.d/ to keep it), which lets every local program create user "
            "namespaces again")
    if facts is not None and facts.unprivileged_userns_clone == "0" and euid != 0:
        return Diagnostic(
            Severity.ERROR, "userns-disabled",
            f"{bwrap} cannot create its user namespace ({message}): unprivileged user "
            "namespaces are disabled (sysctl kernel.unprivileged_userns_clone = 0)",
            f"(1) {legacy}; (2) last, sudo sysctl -w kernel.unprivileged_userns_clone=1, "
            "which lets every local user create user namespaces")
    if probed.startswith("unshare:"):
        return Diagnostic(
            Severity.ERROR, "userns-refused",
            f"{bwrap} cannot create its user namespace ({message}): the kernel refuses new "
            f"user namespaces here ({probed.removeprefix('unshare: ')}; a container's "
            "seccomp profile?)",
            f"(1) {legacy}; (2) run where user namespaces are allowed (a container: allow "
            "unshare and clone with user namespaces in its seccomp profile)")
    return None


def explain_failure(bwrap: str, message: str | None, plan: MountPlan | None
                    ) -> Diagnostic | None:
    """After a bwrap launch failed during setup: is it the user namespace, and what to do?
    `message` is bwrap's last line when it was captured; None when it went to the terminal,
    and bwrap is run once more, captured, to get it."""
    from sandboxtui.core.diagnostics import bwrap_namespace_error

    if message is None:
        message = bwrap_namespace_error(bwrap)
    if not namespace_failure(message):
        return None
    assert message is not None  # namespace_failure() said so
    return userns_diagnostic(bwrap, message, userns_facts(), plan, os.geteuid())
