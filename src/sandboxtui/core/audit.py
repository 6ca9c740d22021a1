"""The approvals audit log: one JSON line per request and per decision, crash-safe.

Location: `$XDG_STATE_HOME/sandboxtui/audit.jsonl` (default `~/.local/state`). Each line is
written with a single `write()` on an `O_APPEND` descriptor and fsynced before the caller goes
on, so concurrent writers (a TUI and several headless runs) never interleave inside a line and a
recorded decision survives a crash. A process killed mid-write can still leave a torn tail (the
kernel may stop a large write on SIGKILL): the next writer starts its line on a fresh line, and
the reader skips any line that is not a complete JSON object, with a note, so reading never
breaks.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class AuditError(Exception):
    """The audit log cannot be written or read: the message names the path and the cause."""


def default_audit_path(env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    state = env.get("XDG_STATE_HOME", "")
    if not os.path.isabs(state):  # a relative XDG_* value is ignored, as the XDG spec says
        state = os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(state, "sandboxtui", "audit.jsonl")


@dataclass(frozen=True)
class AuditLog:
    """Appends records to one audit file; the directory is created 0700, the file 0600."""

    path: str

    def append(self, record: Mapping[str, Any]) -> None:
        line = json.dumps(record, separators=(",", ":"), sort_keys=True).encode() + b"\n"
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
    records: tuple[dict[str, Any], ...]
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
    records: list[dict[str, Any]] = []
    skipped: list[str] = []
    lines = data.split(b"\n")
    for number, raw in enumerate(lines, 1):
        if not raw:
            continue
        torn = number == len(lines)  # no trailing newline: the write never finished
        try:
            record = json.loads(raw)
        except ValueError:
            record = None
        if torn or not isinstance(record, dict):
            what = "incomplete last line (a writer was killed mid-write)" if torn else \
                "line is not a complete JSON object"
            skipped.append(f"{path}:{number}: skipped {len(raw)} bytes: {what}")
            continue
        records.append(record)
    return AuditRead(path, tuple(records), tuple(skipped))
