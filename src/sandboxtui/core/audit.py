"""The approvals audit log: a JSON line per request, per decision and per git clean-up, crash-safe.

Location: `$XDG_STATE_HOME/sandboxtui/audit.jsonl` (default `~/.local/state`). Each line is
written with a single `write()` on an `O_APPEND` descriptor and fsynced before the caller goes
on, so concurrent writers (a TUI and several headless runs) never interleave inside a line and a
recorded decision survives a crash. A process killed mid-write can still leave a torn tail (the
kernel may stop a large write on SIGKILL): the next writer starts its line on a fresh line, and
the reader skips any line that is not a complete JSON object, with a note, so reading never
breaks.

Records are typed (`RequestRecord`, `DecisionRecord`, `GitNeutralisedRecord`), built and read
back by `parse_record` alone; a JSON object of any other shape (a damaged, planted or foreign
line) is an `UnknownRecord`, which every view shows as one inert line.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from sandboxtui.core.outcome import ExitCode, SandboxtuiError
from sandboxtui.core.paths import state_dir


class AuditError(SandboxtuiError):
    """The audit log cannot be written or read (exit 2): the message names the path and the
    cause."""

    exit_code = ExitCode.USAGE


def default_audit_path(env: Mapping[str, str] | None = None) -> str:
    return os.path.join(state_dir(env), "audit.jsonl")


# --- the records -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestRecord:
    """The gate asked for a decision on a command that mentions sensitive paths."""

    kind: ClassVar[str] = "request"
    time: float | None
    id: str
    argv: tuple[str, ...]
    cwd: str
    matched: tuple[str, ...]  # the sensitive paths the command mentions
    data: Mapping[str, Any]  # the line as written (the request's hits, profile and pid too)


@dataclass(frozen=True)
class DecisionRecord:
    """The decision on request `id`; `edited` is the approver's new command, if any."""

    kind: ClassVar[str] = "decision"
    time: float | None
    id: str
    choice: str
    who: str
    reason: str
    edited: tuple[str, ...] | None
    data: Mapping[str, Any]


@dataclass(frozen=True)
class GitNeutralisedRecord:
    """Code-running git settings the launcher removed after `argv` ran (one action each)."""

    kind: ClassVar[str] = "git-neutralised"
    time: float | None
    cwd: str
    argv: tuple[str, ...]
    actions: tuple[str, ...]
    data: Mapping[str, Any]


@dataclass(frozen=True)
class UnknownRecord:
    """A JSON object of a shape sandboxtui does not write: damaged, planted, or foreign."""

    kind: str
    time: float | None
    data: Mapping[str, Any]


AuditRecord = RequestRecord | DecisionRecord | GitNeutralisedRecord | UnknownRecord


def parse_record(data: Mapping[str, Any]) -> AuditRecord:
    """The typed record of one line's JSON object; never raises, whatever the object holds."""
    kind, time = data.get("kind"), _seconds(data.get("time"))
    request, decision = data.get("request"), data.get("decision")
    if (kind == "request" and isinstance(request, Mapping)
            and (argv := _strings(request.get("argv"))) is not None):
        return RequestRecord(time, _text(request.get("id")), argv, _text(request.get("cwd")),
                             _strings(request.get("matched")) or (), data)
    if kind == "decision" and isinstance(decision, Mapping):
        reason = decision.get("reason")
        return DecisionRecord(time, _text(data.get("id")), _text(decision.get("choice")),
                              _text(decision.get("who")), "" if reason is None else str(reason),
                              _strings(decision.get("argv")), data)
    if (kind == "git-neutralised" and (argv := _strings(data.get("argv"))) is not None
            and (actions := _strings(data.get("actions"))) is not None):
        return GitNeutralisedRecord(time, _text(data.get("cwd")), argv, actions, data)
    return UnknownRecord(_text(kind), time, data)


def request_record(time: float, request: Mapping[str, Any]) -> AuditRecord:
    """What the gate writes before it asks: `request` is the request's JSON."""
    return parse_record({"kind": "request", "time": time, "request": dict(request)})


def decision_record(time: float, request_id: str, decision: Mapping[str, Any]) -> AuditRecord:
    """What the gate writes once request `request_id` is decided: `decision` is its JSON."""
    return parse_record({"kind": "decision", "time": time, "id": request_id,
                         "decision": dict(decision)})


def git_neutralised_record(time: float, cwd: str, argv: Sequence[str],
                           actions: Sequence[str]) -> AuditRecord:
    """What the launcher writes after removing code-running git settings `argv` left behind."""
    return parse_record({"kind": "git-neutralised", "time": time, "cwd": cwd,
                         "argv": list(argv), "actions": list(actions)})


def format_time(seconds: float | None) -> str:
    """A record's local time for display, or "?" when it has none a clock can show."""
    if seconds is None:
        return "?"
    try:
        return datetime.fromtimestamp(seconds).strftime("%Y-%m-%d %H:%M:%S")
    except (ValueError, OverflowError, OSError):
        return "?"


def _seconds(value: object) -> float | None:
    if not isinstance(value, int | float | str):
        return None
    try:
        return float(value)
    except (ValueError, OverflowError):  # not a number, or an integer past float's range
        return None


def _text(value: object) -> str:
    return "?" if value is None else str(value)


def _strings(value: object) -> tuple[str, ...] | None:
    return tuple(map(str, value)) if isinstance(value, list) else None


# --- the log -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditLog:
    """Appends records to one audit file; the directory is created 0700, the file 0600."""

    path: str

    def append(self, record: AuditRecord) -> None:
        line = json.dumps(record.data, separators=(",", ":"), sort_keys=True).encode() + b"\n"
        directory = os.path.dirname(self.path)
        try:
            os.makedirs(directory, mode=0o700, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW
                         | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise AuditError(f"cannot open audit log {self.path}: {exc.strerror}") from exc
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise AuditError(f"audit log {self.path} is not a regular file")
            if st.st_size and os.pread(fd, 1, st.st_size - 1) != b"\n":
                line = b"\n" + line  # isolate a torn tail left by a killed writer
            written = os.write(fd, line)
            if written != len(line):
                raise AuditError(f"short write to audit log {self.path} ({written} of "
                                 f"{len(line)} bytes): disk full?")
            os.fsync(fd)
        except OSError as exc:
            raise AuditError(f"cannot write audit log {self.path}: {exc.strerror}") from exc
        finally:
            os.close(fd)


@dataclass(frozen=True)
class AuditRead:
    """What `read_audit` found: the complete records, and a note per line it had to skip."""

    path: str
    records: tuple[AuditRecord, ...]
    skipped: tuple[str, ...]


def read_audit(path: str) -> AuditRead:
    """All complete records of the log, oldest first; a missing log has none."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        return AuditRead(path, (), ())
    except OSError as exc:
        raise AuditError(f"cannot read audit log {path}: {exc.strerror}") from exc
    records: list[AuditRecord] = []
    skipped: list[str] = []
    lines = data.split(b"\n")
    for number, raw in enumerate(lines, 1):
        if not raw:
            continue
        torn = number == len(lines)  # no trailing newline: the write never finished
        try:
            record = json.loads(raw)
        except (ValueError, RecursionError):  # RecursionError: a planted line nested too deep
            record = None
        if torn or not isinstance(record, dict):
            what = "incomplete last line (a writer was killed mid-write)" if torn else \
                "line is not a complete JSON object"
            skipped.append(f"{path}:{number}: skipped {len(raw)} bytes: {what}")
            continue
        records.append(parse_record(record))
    return AuditRead(path, tuple(records), tuple(skipped))
