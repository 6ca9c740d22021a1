"""The one launch use case, for the CLI and the TUI alike: precheck, approval, prepare,
launch, and what it came to.

    outcome = run(plan, argv, approve=..., launch=...)
    match outcome:
        case Denied(): ...    # the precheck matched and the approver said no, or what the
                              # command names changed while it was asked: exit 3
        case Refused(): ...   # nothing ran: the sandbox cannot be enforced (4), the command
                              # cannot be run (126/127), bad input (2)
        case Ran(): ...       # the command ran: outcome.result.exit_code is the exit code

How a command is approved (`approve`: a running TUI, the terminal, an in-process modal) and how
it is run (`launch`: sharing the terminal, captured and streamed, handed the terminal by a
suspended TUI) are the caller's; the sequence and its outcomes are this module's.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sandboxtui.core.launch import LaunchSpec, prepare
from sandboxtui.core.outcome import ExitCode, LaunchError, RunResult
from sandboxtui.core.plan import RuleKind, build_plan
from sandboxtui.core.policy import Access
from sandboxtui.core.precheck import PrecheckResult, precheck

if TYPE_CHECKING:
    from sandboxtui.core.approvals.gate import GateResult
    from sandboxtui.core.diagnostics import Capabilities
    from sandboxtui.core.plan import MountPlan
    from sandboxtui.core.precheck import PrecheckHit


@dataclass(frozen=True)
class Denied:
    """The precheck matched a sensitive path and the approver (or `block` mode) said no."""

    command: tuple[str, ...]
    message: str
    exit_code: int = ExitCode.DENIED


@dataclass(frozen=True)
class Refused:
    """Nothing ran: why, and the exit code that says so."""

    command: tuple[str, ...]
    message: str
    exit_code: int


@dataclass(frozen=True)
class Ran:
    """The command ran (as approved: an approver may have edited it)."""

    spec: LaunchSpec
    result: RunResult
    approval: str = ""  # what the approver decided, when one was asked

    @property
    def command(self) -> tuple[str, ...]:
        return self.spec.command

    @property
    def exit_code(self) -> int:
        return self.result.exit_code


RunOutcome = Denied | Refused | Ran
Approver = Callable[[Sequence[str], "MountPlan"], "GateResult"]


def approver_edit(asked: Sequence[str], spec: LaunchSpec) -> str | None:
    """What the caller is told before the launch when the approver changed its command."""
    if tuple(asked) == spec.command:
        return None
    return f"approver changed the command to: {shlex.join(spec.command)}"


def run(plan: MountPlan, argv: Sequence[str], *, approve: Approver,
        launch: Callable[[LaunchSpec], RunResult], caps: Capabilities | None = None
        ) -> RunOutcome:
    """Precheck `argv`; when it names a sensitive path, ask `approve` (which may edit it) and
    plan again, since the files may have changed while it was asked; prepare the launch;
    `launch` it. LaunchError from any step is a Refused outcome."""
    command, approval = tuple(argv), ""
    try:
        if precheck(command, plan).matched:
            verdict = approve(command, plan)
            if not verdict.allowed:
                return Denied(command, verdict.message)
            command = verdict.argv
            approval = verdict.message if verdict.decision is not None else ""
            plan = replanned(plan)
            now = precheck(command, plan)
            if weakened := unmasked_since(verdict.precheck, now):
                return Denied(command, _changed_message(PrecheckResult(now.mode, weakened)))
        spec = prepare(plan, command, caps=caps)
        return Ran(spec, launch(spec), approval)
    except LaunchError as exc:
        return Refused(command, exc.message, exc.exit_code)


def replanned(plan: MountPlan) -> MountPlan:
    """`plan`'s policy planned again now (reusing its scan of the directories unchanged
    since): a secret created while an approval was awaited is masked too."""
    mounts_proc = any(r.kind is RuleKind.PROC and r.access is not Access.NONE
                      for r in plan.rules)
    return build_plan(plan.policy, plan.cwd, mount_proc=mounts_proc, reuse=plan)


def unmasked_since(approved: PrecheckResult, now: PrecheckResult) -> tuple[PrecheckHit, ...]:
    """The hits of `now` the approver did not see as they are: a new one, or one the sandbox
    masked then and does not mask now. A hit gone or masked since only protects more."""
    seen = {(h.word, h.path): h.enforced for h in approved.hits}
    return tuple(h for h in now.hits
                 if (h.word, h.path) not in seen or (seen[h.word, h.path] and not h.enforced))


def _changed_message(weakened: PrecheckResult) -> str:
    """Why an approved command does not run: the approval was for other files."""
    return ("denied: while the approval was awaited, the sensitive paths the command names "
            f"changed, so the approval does not cover them:\n{weakened.describe()}\n"
            "nothing ran: run it again to decide on what is there now")
