"""The audit log: appends, crash safety under kill -9, torn lines, unreadable logs."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

import sandboxtui
from sandboxtui.cli import main, render_audit_record
from sandboxtui.core.audit import (
    AuditError,
    AuditLog,
    DecisionRecord,
    GitNeutralisedRecord,
    RequestRecord,
    decision_record,
    default_audit_path,
    git_neutralised_record,
    parse_record,
    read_audit,
    request_record,
)
from sandboxtui.core.terminal import inert

SRC = os.path.dirname(os.path.dirname(sandboxtui.__file__))  # importable by `nobody`


def test_default_path_follows_xdg_state_home(tmp_path: Path) -> None:
    assert default_audit_path({"XDG_STATE_HOME": str(tmp_path)}) == \
        str(tmp_path / "sandboxtui" / "audit.jsonl")
    assert default_audit_path({}).endswith("/.local/state/sandboxtui/audit.jsonl")


def test_append_and_read_back_with_private_modes(tmp_path: Path) -> None:
    log = AuditLog(str(tmp_path / "state" / "sandboxtui" / "audit.jsonl"))
    log.append(parse_record({"kind": "request", "id": "a"}))
    log.append(parse_record({"kind": "decision", "id": "a", "decision": {"choice": "deny"}}))
    read = read_audit(log.path)
    assert [r.kind for r in read.records] == ["request", "decision"]
    assert read.skipped == ()
    assert stat.S_IMODE(os.stat(log.path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(log.path)).st_mode) == 0o700


def test_torn_tail_is_skipped_and_the_next_line_starts_fresh(tmp_path: Path) -> None:
    log = AuditLog(str(tmp_path / "audit.jsonl"))
    log.append(parse_record({"kind": "request", "id": "1"}))
    with open(log.path, "ab") as fh:
        fh.write(b'{"kind": "decision", "id": "1", "deci')  # a writer died here
    read = read_audit(log.path)
    assert [r.data["id"] for r in read.records] == ["1"]
    assert len(read.skipped) == 1 and "incomplete last line" in read.skipped[0]
    log.append(parse_record({"kind": "request", "id": "2"}))
    read = read_audit(log.path)
    assert [r.data["id"] for r in read.records] == ["1", "2"]
    assert len(read.skipped) == 1 and "not a complete JSON object" in read.skipped[0]


def test_missing_log_reads_empty(tmp_path: Path) -> None:
    assert read_audit(str(tmp_path / "none.jsonl")).records == ()


def test_symlinked_log_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("")
    os.symlink(target, tmp_path / "audit.jsonl")
    with pytest.raises(AuditError, match="cannot open audit log"):
        AuditLog(str(tmp_path / "audit.jsonl")).append(parse_record({"kind": "request"}))
    assert target.read_text() == ""


WRITER = """
import sys
import tempfile
from sandboxtui.core.audit import AuditLog, parse_record
log = AuditLog(sys.argv[1])
payload = "x" * (4 << 20)
n = 0
print("ready", flush=True)
while True:
    log.append(parse_record({"kind": "request", "n": n, "payload": payload}))
    n += 1
"""


def test_survives_kill_9_mid_write(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    torn_seen = False
    for _ in range(3):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)],
                                stdout=subprocess.PIPE)
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        time.sleep(0.4)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=10) == -signal.SIGKILL
        read = read_audit(str(path))
        assert read.records, "complete records must be readable"
        assert all(len(r.data["payload"]) == 4 << 20 for r in read.records)
        torn_seen = torn_seen or bool(read.skipped)
    ns = [r.data["n"] for r in read_audit(str(path)).records]
    assert ns.count(0) == 3  # three writers, each one's records all present and intact
    AuditLog(str(path)).append(parse_record({"kind": "decision", "n": -1}))
    assert read_audit(str(path)).records[-1].data == {"kind": "decision", "n": -1}


def test_cli_prints_and_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    log = AuditLog(default_audit_path())
    log.append(parse_record({"kind": "request", "time": 1.0, "request": {
        "id": "r1", "argv": ["cat", ".env"], "cwd": "/w", "matched": ["/w/.env"]}}))
    log.append(parse_record({"kind": "decision", "time": 2.0, "id": "r1", "decision": {
        "choice": "deny", "who": "terminal", "reason": "denied on the terminal"}}))
    assert main(["approvals"]) == 0
    out = capsys.readouterr().out
    assert "cat .env" in out and "/w/.env" in out and "deny" in out and "terminal" in out
    assert main(["approvals", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [r["kind"] for r in data["records"]] == ["request", "decision"]
    assert data["skipped"] == []


def test_cli_unreadable_log_exits_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    os.makedirs(os.path.dirname(default_audit_path()))
    os.mkdir(default_audit_path())  # a directory where the log should be: EISDIR even as root
    assert main(["approvals"]) == 2
    assert "cannot read audit log" in capsys.readouterr().err


def test_unreadable_log_as_unprivileged_user(tmp_path: Path) -> None:
    """Another user's 0600 log: `approvals` run as `nobody` says why and exits 2."""
    state = Path(tempfile.mkdtemp(prefix="sandboxtui-audit-"))
    try:
        os.chmod(state, 0o755)
        log = AuditLog(default_audit_path({"XDG_STATE_HOME": str(state)}))
        log.append(parse_record({"kind": "request"}))
        os.chmod(os.path.dirname(log.path), 0o755)  # the directory is open, the file is not
        proc = subprocess.run(
            ["/usr/sbin/runuser", "-u", "nobody", "--", "/usr/bin/python3", "-m", "sandboxtui",
             "approvals"],
            env={"PATH": "/usr/bin:/bin", "XDG_STATE_HOME": str(state), "PYTHONPATH": SRC},
            capture_output=True, text=True, timeout=60)
    finally:
        shutil.rmtree(state)
    assert proc.returncode == 2, proc.stderr
    assert f"cannot read audit log {log.path}: Permission denied" in proc.stderr


def test_every_record_sandboxtui_writes_reads_back_typed(tmp_path: Path) -> None:
    """The writers and the reader share one parser: what is written reads back as its kind,
    and the line on disk is the record's data."""
    log = AuditLog(str(tmp_path / "audit.jsonl"))
    written = [
        request_record(1.0, {"id": "r1", "argv": ["cat", ".env"], "cwd": "/w",
                             "matched": ["/w/.env"], "hits": [], "pid": 7}),
        decision_record(2.0, "r1", {"choice": "edit", "who": "tui", "argv": ["cat", "x"],
                                    "reason": "", "time": 2.0}),
        git_neutralised_record(3.0, "/w", ["git", "init"], ["removed core.fsmonitor"]),
    ]
    for record in written:
        log.append(record)
    read = read_audit(log.path).records
    assert read == tuple(written)
    request, decision, git = read
    assert isinstance(request, RequestRecord) and request.argv == ("cat", ".env")
    assert request.matched == ("/w/.env",) and request.data["request"]["pid"] == 7
    assert isinstance(decision, DecisionRecord) and decision.edited == ("cat", "x")
    assert decision.id == "r1" and decision.choice == "edit"
    assert isinstance(git, GitNeutralisedRecord) and git.actions == ("removed core.fsmonitor",)


HOSTILE = [
    {},
    {"kind": "request", "time": "soon", "request": {"argv": 5, "matched": [1]}},
    {"kind": "request", "request": "x"},
    {"kind": "decision", "time": 10 ** 400, "decision": "x\x1b[2J"},
    {"kind": "decision", "time": float("nan"), "decision": {}},
    {"kind": "decision", "time": 1e300, "decision": {"argv": 3, "reason": None}},
    {"kind": "git-neutralised", "argv": ["a"], "actions": "rm -rf"},
    {"kind": ["request"], "time": [], "request": {"argv": []}},
    {"kind": None, "time": True},
    {"kind": "decision", "decision": {"choice": {"a": [1, 2]}, "who": 5, "argv": [None]}},
]


@pytest.mark.parametrize("data", HOSTILE)
def test_any_json_object_parses_and_renders_as_one_line(data: dict[str, object]) -> None:
    from sandboxtui.widgets.approvals_queue import audit_row

    record = parse_record(data)
    line = render_audit_record(record)
    assert "\n" not in inert(line)
    assert len(audit_row(record)) == 4


def test_a_deeply_nested_line_is_skipped_not_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    path.write_text('{"kind": "request", "x": ' + "[" * 100000 + "\n"
                    + '{"kind": "request", "x": ' + "[" * 500 + "]" * 500 + "}\n")
    read = read_audit(str(path))
    assert len(read.skipped) == 1 and "not a complete JSON object" in read.skipped[0]
    assert len(read.records) == 1
    assert render_audit_record(read.records[0]).startswith("unreadable record")
