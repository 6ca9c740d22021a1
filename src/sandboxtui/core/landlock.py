"""The legacy Landlock model of a mount plan: what Landlock can and cannot express.

Landlock only adds access: read (and execute) beneath `/` or the readable roots, full access
beneath the writable roots and `/dev/null`. It cannot take access away beneath a granted
directory, so denied paths and read-only carveouts inside granted trees are *unenforced*: the
launch proceeds and each one is named in a warning. Split filesystem entries that need such a
subtraction are not expressible at all and stay on bubblewrap.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from sandboxtui.core.diagnostics_model import Diagnostic, Severity
from sandboxtui.core.plan import MountPlan, Rule, RuleKind
from sandboxtui.core.policy import Access

# The device nodes a command needs, the only part of the host's /dev Landlock grants (read):
# granting all of / would let a root launcher read raw disks, and with them every masked file.
# (/dev/fd and /dev/std* are symlinks into /proc/self/fd, which stays readable.)
SAFE_DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom",
                "/dev/tty", "/dev/ptmx", "/dev/pts")


def _root_without_dev() -> list[str]:
    """Read access "beneath /" as Landlock rules that leave out /dev: every other entry of /
    (one that appears later is not granted: less access, never more), and the safe devices."""
    try:
        names = sorted(os.listdir("/"))
    except OSError:
        names = []
    return [f"/{n}" for n in names if n != "dev"] + [
        d for d in SAFE_DEVICES if os.path.exists(d)]


# Rule kinds whose subtraction the legacy model tolerates as "unenforced, with a warning".
_BUILTIN_SUBTRACTIONS = (RuleKind.SENSITIVE, RuleKind.PROTECTED, RuleKind.RUNTIME,
                         RuleKind.PROC)


@dataclass(frozen=True)
class LandlockModel:
    read_roots: tuple[str, ...]
    write_roots: tuple[str, ...]
    unenforced: tuple[Rule, ...]  # denials / read-only carveouts Landlock cannot apply
    inexpressible: tuple[Rule, ...]  # split entries that keep the policy on bubblewrap
    # directories listable (not readable) beneath: `/` when read access is full, so `ls /` and
    # `ls /dev` work while no device but the safe ones can be opened
    list_roots: tuple[str, ...] = ()

    @property
    def expressible(self) -> bool:
        return not self.inexpressible

    def warnings(self) -> list[Diagnostic]:
        host_dev = Diagnostic(
            Severity.WARNING, "landlock-host-dev",
            "legacy Landlock shows the host's /proc: host-wide /proc files (host timers, keys, "
            "every host command line) are readable, which bubblewrap's fresh procfs does not "
            "have; of the host's /dev only " + ", ".join(SAFE_DEVICES) + " can be opened",
            "use the bubblewrap pipeline (features.use_legacy_landlock = false)")
        return [host_dev] + [
            Diagnostic(
                Severity.WARNING, "landlock-unenforced",
                f"legacy Landlock cannot enforce {r.access.value} on {r.path} ({r.reason}): "
                "the command CAN " + ("create it" if r.missing else "read it"
                                      if r.access is Access.NONE else "write it"),
                "use the bubblewrap pipeline (features.use_legacy_landlock = false)")
            for r in self.unenforced
        ]


def landlock_model(plan: MountPlan) -> LandlockModel:
    reads: list[str] = []
    writes: list[str] = ["/dev/null"]
    unenforced: list[Rule] = []
    inexpressible: list[Rule] = []
    for rule in plan.rules:
        # Read-only beneath / already covers the host-global /proc files; a hidden /proc
        # (--no-proc) is a subtraction Landlock cannot make.
        if rule.kind in (RuleKind.DEVICE, RuleKind.KERNEL) or (
                rule.kind is RuleKind.PROC and rule.access is not Access.NONE):
            continue
        # What Landlock grants here is what the nearest ancestor rule grants.
        granted = Access.NONE if rule.path == "/" else plan.rule_for(
            os.path.dirname(rule.path)).access
        if rule.missing and rule.access is not Access.RW:
            if granted is Access.RW:
                unenforced.append(rule)
            continue
        if rule.access is Access.RW:
            writes.append(rule.path)
        elif rule.access is Access.RO:
            if granted is Access.RW:
                (unenforced if rule.kind in _BUILTIN_SUBTRACTIONS else inexpressible).append(rule)
            elif rule.kind is RuleKind.BASE or granted is Access.NONE:
                reads.append(rule.path)
        elif granted is not Access.NONE:
            (unenforced if rule.kind in _BUILTIN_SUBTRACTIONS else inexpressible).append(rule)
    listable: tuple[str, ...] = ()
    if "/" in reads:
        reads = [p for p in reads if p != "/"] + _root_without_dev()
        listable = ("/",)
    return LandlockModel(tuple(reads), tuple(writes), tuple(unenforced), tuple(inexpressible),
                         listable)
