"""`gate()`: the one call a launcher makes before running a command.

It runs the precheck and, in `ask` mode, obtains a decision from (in order) the session's
remembered approvals, an in-process decider (the TUI's own run panel), a running console (the
TUI's broker, over a Unix socket), the terminal, or, with none of these, denies. Every request and
decision is appended to the audit log; if that fails, the command is denied (an approval must
leave a trace).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sandboxtui.core.approvals.broker import DEFAULT_CONSOLE_TIMEOUT, BrokerError, ask_console
from sandboxtui.core.approvals.model import (
    ApprovalRequest,
    ApprovalSession,
    Choice,
    Decision,
    deny,
    new_request,
)
from sandboxtui.core.approvals.prompt import ask_terminal
from sandboxtui.core.audit import (
    AuditError,
    AuditLog,
    decision_record,
    default_audit_path,
    request_record,
)
from sandboxtui.core.plan import MountPlan
from sandboxtui.core.policy import PrecheckMode
from sandboxtui.core.precheck import PrecheckResult, precheck

MAX_EDITS = 10  # edit -> precheck -> edit ... is bounded


@dataclass(frozen=True)
class GateResult:
    """What the launcher does: run `argv` if `allowed`, else print `message` and exit 3."""

    allowed: bool
    argv: tuple[str, ...]
    decision: Decision | None  # None: nothing matched, or the precheck is off
    message: str
    precheck: PrecheckResult


def gate(
    argv: Sequence[str],
    plan: MountPlan,
    *,
    cwd: str | None = None,
    session: ApprovalSession | None = None,
    decide: Callable[[ApprovalRequest], Decision] | None = None,
    socket_dir: str | None = None,
    tty: str | None = "/dev/tty",
    console_timeout: float = DEFAULT_CONSOLE_TIMEOUT,
    waiting: Callable[[int], None] | None = None,
    audit: AuditLog | None = None,
) -> GateResult:
    """Precheck `argv` and, in ask mode, get a decision; every request and decision is audited.

    `decide` is an in-process decider (the TUI run panel, called in a worker thread); without it
    a running console is asked over the socket (`waiting(pid)` once the console, process `pid`,
    has the request), then the terminal `tty` (None: never ask), and with neither the command
    is denied.
    """
    cwd = plan.cwd if cwd is None else cwd
    audit = AuditLog(default_audit_path()) if audit is None else audit
    deciders = _Deciders(session, decide, socket_dir, tty, console_timeout, waiting)
    current = tuple(argv)
    decision: Decision | None = None
    for _ in range(MAX_EDITS + 1):
        result = precheck(current, plan, cwd)
        if not result.matched:
            note = "sensitive-path precheck is off" if result.skipped else "no sensitive paths"
            return GateResult(True, current, decision, note, result)
        request = new_request(current, cwd, result, plan)
        try:
            decision = _audited_decision(request, result.mode, deciders, audit)
        except AuditError as exc:
            return _unaudited(current, result, exc)
        if decision.choice is not Choice.EDIT:
            return _verdict(current, result, decision)
        current = decision.argv or ()  # edited (never empty): precheck the new command again
    return GateResult(False, current, decision,
                      f"denied: {MAX_EDITS} edits in a row still mention a sensitive path",
                      result)


@dataclass(frozen=True)
class _Deciders:
    """Where a decision comes from, in the order `_decide` asks (after block mode)."""

    session: ApprovalSession | None
    decide: Callable[[ApprovalRequest], Decision] | None
    socket_dir: str | None
    tty: str | None
    console_timeout: float
    waiting: Callable[[int], None] | None


def _audited_decision(request: ApprovalRequest, mode: PrecheckMode, deciders: _Deciders,
                      audit: AuditLog) -> Decision:
    """The decision on `request`; the request is recorded before asking and the decision before
    it counts (AuditError otherwise), and only then is it remembered for the session."""
    audit.append(request_record(request.time, request.to_json()))
    decision = _decide(request, mode, deciders)
    audit.append(decision_record(decision.time, request.id, decision.to_json()))
    if decision.choice is Choice.SESSION and deciders.session is not None:
        deciders.session.remember(request, decision)
    return decision


def _decide(request: ApprovalRequest, mode: PrecheckMode, deciders: _Deciders) -> Decision:
    if mode is PrecheckMode.BLOCK:
        return _blocked()
    session = deciders.session
    earlier = session.lookup(request) if session is not None else None
    if earlier is not None:
        return earlier
    if deciders.decide is not None:
        return deciders.decide(request)
    try:
        decision = ask_console(request, deciders.socket_dir, deciders.console_timeout,
                               deciders.waiting)
    except BrokerError as exc:
        return deny("error", f"approval console unusable: {exc}")
    if decision is None and deciders.tty is not None:
        decision = ask_terminal(request, deciders.tty)
    if decision is None:
        return deny("unattended", "approval needed, but no console is running and there is no "
                    "terminal to ask on")
    return decision


def _verdict(argv: tuple[str, ...], result: PrecheckResult, decision: Decision) -> GateResult:
    """The result of an approval or a denial (an edit is prechecked again instead)."""
    if decision.approved:
        return GateResult(True, argv, decision,
                          f"approved ({decision.choice.value}) by {decision.who}", result)
    return GateResult(False, argv, decision, _denial(result, decision), result)


def _unaudited(argv: tuple[str, ...], result: PrecheckResult, exc: AuditError) -> GateResult:
    """Denied: an approval must leave a trace (in block mode, say first why it was blocked)."""
    if result.mode is PrecheckMode.BLOCK:
        blocked = _blocked()
        return GateResult(False, argv, blocked, f"{_denial(result, blocked)}\n"
                          f"(not recorded: {exc})", result)
    return GateResult(False, argv, deny("error", str(exc)),
                      f"denied: the approval could not be audited: {exc}", result)


def _blocked() -> Decision:
    return deny("policy", "sensitive_path_precheck_mode = block")


def _denial(result: PrecheckResult, decision: Decision) -> str:
    head = ("blocked by sensitive_path_precheck_mode = block" if decision.who == "policy"
            else f"denied by {decision.who}: {decision.reason}")
    mentions = "".join(f"\n  {line}" for line in result.describe().splitlines())
    return f"{head}; the command mentions:{mentions}"
