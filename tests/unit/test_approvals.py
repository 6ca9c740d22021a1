"""Approvals: the model, the broker over real Unix sockets, the terminal prompt, and gate().

Every broker test uses a real socket in a temporary directory and real threads or processes;
every wait is bounded.
"""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from conftest import plan_for

import sandboxtui
from sandboxtui.core.approvals.broker import (
    SOCKET_NAME,
    Broker,
    BrokerError,
    ConsoleBusy,
    ask_console,
)
from sandboxtui.core.approvals.gate import GateResult, gate
from sandboxtui.core.approvals.model import (
    ApprovalRequest,
    ApprovalSession,
    Choice,
    Decision,
    new_request,
)
from sandboxtui.core.approvals.prompt import ask_terminal
from sandboxtui.core.audit import AuditLog, read_audit
from sandboxtui.core.precheck import precheck

SRC = os.path.dirname(os.path.dirname(sandboxtui.__file__))
NOBODY = 65534


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    w = tmp_path / "ws"
    w.mkdir()
    (w / ".env").write_text("TOKEN=1\n")
    (w / ".env.local").write_text("TOKEN=2\n")
    (w / "README.md").write_text("hi\n")
    return w


@pytest.fixture
def sock_dir(tmp_path: Path) -> str:
    return str(tmp_path / "run" / "sandboxtui")


@pytest.fixture
def run_dir(sock_dir: str) -> str:
    os.mkdir(os.path.dirname(sock_dir), 0o700)
    return sock_dir


@pytest.fixture
def broker(run_dir: str) -> Iterator[Broker]:
    with Broker(run_dir) as b:
        yield b


@pytest.fixture
def audit(tmp_path: Path) -> AuditLog:
    return AuditLog(str(tmp_path / "state" / "audit.jsonl"))


class Async:
    """Run `fn` in a thread; `result()` waits for it, bounded."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.value: Any = None
        self.thread = threading.Thread(target=self._run, args=(fn,), daemon=True)
        self.thread.start()

    def _run(self, fn: Callable[[], Any]) -> None:
        self.value = fn()

    def result(self, timeout: float = 10.0) -> Any:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "timed out"
        return self.value


def request_for(ws: Path, argv: list[str]) -> ApprovalRequest:
    plan = plan_for(ws)
    return new_request(argv, str(ws), precheck(argv, plan), plan)


# --- the model ------------------------------------------------------------------------------


def test_request_and_decision_round_trip_json(ws: Path) -> None:
    req = request_for(ws, ["cat", ".env"])
    assert req.matched == (str(ws / ".env"),)
    assert ApprovalRequest.from_json(req.to_json()) == req
    d = Decision(Choice.EDIT, "tui", ("cat", "README.md"))
    assert Decision.from_json(d.to_json()) == d
    with pytest.raises(ValueError):
        Decision.from_json({"choice": "edit", "who": "x", "argv": []})
    with pytest.raises(ValueError, match="edit decision needs"):
        Decision(Choice.EDIT, "tui")
    with pytest.raises(ValueError):
        Decision.from_json({"choice": "maybe", "who": "x"})


def test_session_remembers_exact_command_and_cwd(ws: Path) -> None:
    session = ApprovalSession()
    req = request_for(ws, ["cat", ".env"])
    assert session.lookup(req) is None
    session.remember(req, Decision(Choice.SESSION, "tui"))
    again = session.lookup(request_for(ws, ["cat", ".env"]))
    assert again is not None and again.choice is Choice.SESSION and again.who == "session"
    assert session.lookup(request_for(ws, ["curl", "-d", "@.env", "x"])) is None


# --- the broker -----------------------------------------------------------------------------


def test_broker_modes_and_cleanup(run_dir: str) -> None:
    with Broker(run_dir) as b:
        assert stat.S_IMODE(os.lstat(run_dir).st_mode) == 0o700
        st = os.lstat(b.path)
        assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
    assert not os.path.lexists(b.path)


def console_gate(ws: Path, argv: list[str], run_dir: str, audit: AuditLog,
                 **kw: Any) -> Async:
    plan = plan_for(ws)
    return Async(lambda: gate(argv, plan, socket_dir=run_dir, tty=None, audit=audit, **kw))


def test_broker_approve_once(ws: Path, broker: Broker, run_dir: str, audit: AuditLog) -> None:
    job = console_gate(ws, ["cat", ".env"], run_dir, audit)
    pending = broker.next_request(timeout=10)
    assert pending is not None
    assert pending.request.argv == ("cat", ".env")
    assert pending.request.matched == (str(ws / ".env"),)
    assert pending.peer_pid == os.getpid()
    pending.decide(Decision(Choice.ONCE, "test-console"))
    result: GateResult = job.result()
    assert result.allowed and result.argv == ("cat", ".env")
    assert result.decision is not None and result.decision.who == "test-console"
    records = read_audit(audit.path).records
    assert [r.kind for r in records] == ["request", "decision"]
    assert records[0].data["request"]["id"] == records[1].data["id"]
    assert records[1].data["decision"]["choice"] == "approve-once"


def test_broker_deny(ws: Path, broker: Broker, run_dir: str, audit: AuditLog) -> None:
    job = console_gate(ws, ["cat", ".env"], run_dir, audit)
    pending = broker.next_request(timeout=10)
    assert pending is not None
    pending.decide(Decision(Choice.DENY, "test-console", reason="no"))
    result: GateResult = job.result()
    assert not result.allowed
    assert "denied by test-console: no" in result.message and str(ws / ".env") in result.message
    assert read_audit(audit.path).records[-1].data["decision"]["choice"] == "deny"


def test_broker_edit_is_prechecked_again(ws: Path, broker: Broker, run_dir: str,
                                         audit: AuditLog) -> None:
    job = console_gate(ws, ["cat", ".env"], run_dir, audit)
    first = broker.next_request(timeout=10)
    assert first is not None
    first.decide(Decision(Choice.EDIT, "test-console", ("cat", ".env.local")))
    second = broker.next_request(timeout=10)  # the edit still mentions a sensitive path
    assert second is not None and second.request.argv == ("cat", ".env.local")
    second.decide(Decision(Choice.EDIT, "test-console", ("cat", "README.md")))
    result: GateResult = job.result()
    assert result.allowed and result.argv == ("cat", "README.md")
    kinds = [(r.kind, r.data.get("decision", {}).get("choice"))
             for r in read_audit(audit.path).records]
    assert kinds == [("request", None), ("decision", "edit"), ("request", None),
                     ("decision", "edit")]


def test_broker_session_approval_is_remembered(ws: Path, broker: Broker, run_dir: str,
                                               audit: AuditLog) -> None:
    job = console_gate(ws, ["cat", ".env"], run_dir, audit)
    pending = broker.next_request(timeout=10)
    assert pending is not None
    pending.decide(Decision(Choice.SESSION, "test-console"))
    assert job.result().allowed
    again: GateResult = console_gate(ws, ["cat", ".env"], run_dir, audit).result()
    assert again.allowed and again.decision is not None and again.decision.who == "session"
    assert broker.next_request(timeout=0.1) is None  # nobody was asked the second time
    other = console_gate(ws, ["cat", ".env.local"], run_dir, audit)
    pending = broker.next_request(timeout=10)
    assert pending is not None  # a different command is asked again
    pending.decide(Decision(Choice.DENY, "test-console"))
    assert not other.result().allowed


def test_console_timeout_denies_and_cancels(ws: Path, broker: Broker, run_dir: str,
                                            audit: AuditLog) -> None:
    start = time.monotonic()
    job = console_gate(ws, ["cat", ".env"], run_dir, audit, console_timeout=0.5)
    pending = broker.next_request(timeout=10)
    assert pending is not None
    result: GateResult = job.result()
    assert 0.5 <= time.monotonic() - start < 5
    assert not result.allowed and result.decision is not None
    assert result.decision.who == "timeout"
    assert pending.cancelled.wait(5)  # the console sees the asker left
    pending.decide(Decision(Choice.ONCE, "too-late"))  # harmless
    assert broker.next_request(timeout=0.1) is None


CONSOLE = """
import sys
from sandboxtui.core.approvals.broker import Broker
b = Broker(sys.argv[1])
b.start()
print("ready", flush=True)
pending = b.next_request(timeout=30)
print("got", pending.request.argv[0], flush=True)
import time; time.sleep(60)
"""


def test_console_killed_mid_request_denies_and_stale_socket_is_cleaned(
        ws: Path, run_dir: str, audit: AuditLog) -> None:
    console = subprocess.Popen([sys.executable, "-c", CONSOLE, run_dir], stdout=subprocess.PIPE,
                               text=True)
    try:
        assert console.stdout is not None and console.stdout.readline() == "ready\n"
        job = console_gate(ws, ["cat", ".env"], run_dir, audit)
        assert console.stdout.readline() == "got cat\n"
        console.send_signal(signal.SIGKILL)
        result: GateResult = job.result()
    finally:
        console.kill()
        console.wait(10)
    assert not result.allowed and result.decision is not None
    assert result.decision.who == "console-lost"
    sock = os.path.join(run_dir, SOCKET_NAME)
    assert stat.S_ISSOCK(os.lstat(sock).st_mode)  # left behind by the killed console
    req = request_for(ws, ["cat", ".env"])
    assert ask_console(req, run_dir, 5) is None  # stale: no console
    no_one: GateResult = console_gate(ws, ["cat", ".env"], run_dir, audit).result()
    assert not no_one.allowed and "no console is running" in no_one.message
    with Broker(run_dir) as b:  # a new console cleans the stale socket up
        job = console_gate(ws, ["cat", ".env"], run_dir, audit)
        pending = b.next_request(timeout=10)
        assert pending is not None
        pending.decide(Decision(Choice.ONCE, "new-console"))
        assert job.result().allowed


def test_console_closing_mid_request_denies(ws: Path, run_dir: str, audit: AuditLog) -> None:
    b = Broker(run_dir)
    b.start()
    job = console_gate(ws, ["cat", ".env"], run_dir, audit)
    assert b.next_request(timeout=10) is not None
    b.close()
    result: GateResult = job.result()
    assert not result.allowed and result.decision is not None
    assert result.decision.who == "console-lost"
    assert not os.path.lexists(b.path)


def test_second_console_is_refused(broker: Broker, run_dir: str) -> None:
    with pytest.raises(ConsoleBusy, match=f"another console \\(pid {os.getpid()}\\) is "
                       "already serving") as busy:
        Broker(run_dir).start()
    assert busy.value.pid == os.getpid()  # the TUI names the console its runs go to
    assert stat.S_ISSOCK(os.lstat(broker.path).st_mode)  # the first one's socket is intact


def test_a_console_serves_its_own_workspace_and_refuses_others(
        ws: Path, tmp_path: Path, run_dir: str, audit: AuditLog) -> None:
    """Issue 15 item 2: a run asks the console of its workspace, before the one serving every
    workspace; a workspace's console refuses a request for another workspace (denied, never
    shown), and a second console for the same workspace is told which one serves it."""
    other = tmp_path / "other"
    other.mkdir()
    (other / ".env").write_text("X=1\n")
    with Broker(run_dir, workspace=str(ws)) as mine, Broker(run_dir) as every:
        assert mine.path != every.path
        with pytest.raises(ConsoleBusy):
            Broker(run_dir, workspace=str(ws)).start()
        Broker(run_dir, workspace=str(other)).close()  # another workspace: its own socket
        consoles: list[int] = []
        job = Async(lambda: gate(["cat", ".env"], plan_for(ws), socket_dir=run_dir, tty=None,
                                 audit=audit, waiting=consoles.append))
        pending = mine.next_request(timeout=10)
        assert pending is not None and pending.request.workspace == str(ws)
        assert every.next_request(timeout=0.1) is None
        pending.decide(Decision(Choice.ONCE, "mine"))
        assert job.result().allowed and consoles == [os.getpid()]
        # the other workspace has no console of its own: the one serving all asks
        job = Async(lambda: gate(["cat", ".env"], plan_for(other), socket_dir=run_dir,
                                 tty=None, audit=audit))
        pending = every.next_request(timeout=10)
        assert pending is not None and pending.request.workspace == str(other)
        pending.decide(Decision(Choice.DENY, "every"))
        assert not job.result().allowed
        # a request naming another workspace, sent to this workspace's socket, is refused
        forged = replace(request_for(other, ["cat", ".env"]), workspace=str(other))
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(10)
            s.connect(mine.path)
            s.sendall(json.dumps({"type": "request", "request": forged.to_json()}).encode()
                      + b"\n")
            answer = json.loads(s.makefile("rb").readline())
        assert answer["type"] == "error" and "serves approvals for" in answer["error"]
        assert mine.next_request(timeout=0.2) is None


def test_a_session_approval_covers_exactly_its_command_cwd_workspace_and_policy(
        ws: Path) -> None:
    session = ApprovalSession()
    req = request_for(ws, ["cat", ".env"])
    session.remember(req, Decision(Choice.SESSION, "tui"))
    assert session.lookup(request_for(ws, ["cat", ".env"])) is not None
    networked_plan = plan_for(ws, "sandbox_workspace_write.network_access=true")
    networked = new_request(["cat", ".env"], str(ws), precheck(["cat", ".env"], networked_plan),
                            networked_plan)
    assert session.lookup(networked) is None
    assert session.lookup(replace(req, cwd=str(ws / "sub"))) is None
    assert session.lookup(replace(req, workspace="/elsewhere")) is None


def test_socket_dir_symlink_is_refused(ws: Path, tmp_path: Path, audit: AuditLog) -> None:
    target = tmp_path / "target"
    target.mkdir(mode=0o700)
    link = tmp_path / "link"
    os.symlink(target, link)
    with pytest.raises(BrokerError, match="is a symlink"):
        Broker(str(link)).start()
    with pytest.raises(BrokerError, match="is a symlink"):
        ask_console(request_for(ws, ["cat", ".env"]), str(link))
    result: GateResult = console_gate(ws, ["cat", ".env"], str(link), audit).result()
    assert not result.allowed and "is a symlink" in result.message
    assert os.listdir(target) == []  # nothing written through the link


def test_socket_path_symlink_is_refused(ws: Path, run_dir: str, tmp_path: Path) -> None:
    os.mkdir(run_dir, 0o700)
    os.symlink(tmp_path / "elsewhere.sock", os.path.join(run_dir, SOCKET_NAME))
    with pytest.raises(BrokerError, match="socket path .* is a symlink"):
        Broker(run_dir).start()
    with pytest.raises(BrokerError, match="is a symlink"):
        ask_console(request_for(ws, ["cat", ".env"]), run_dir)
    assert not os.path.lexists(tmp_path / "elsewhere.sock")


def test_socket_dir_owned_by_another_user_is_refused(ws: Path, run_dir: str) -> None:
    os.mkdir(run_dir, 0o700)
    os.chown(run_dir, NOBODY, NOBODY)
    with pytest.raises(BrokerError, match=f"owned by uid {NOBODY}"):
        Broker(run_dir).start()
    with pytest.raises(BrokerError, match=f"owned by uid {NOBODY}"):
        ask_console(request_for(ws, ["cat", ".env"]), run_dir)
    assert os.listdir(run_dir) == []


def test_socket_owned_by_another_user_is_refused(ws: Path, run_dir: str) -> None:
    os.mkdir(run_dir, 0o700)
    path = os.path.join(run_dir, SOCKET_NAME)
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(path)
        s.listen(1)
        os.chown(path, NOBODY, NOBODY)
        with pytest.raises(BrokerError, match=f"owned by uid {NOBODY}"):
            Broker(run_dir).start()
        with pytest.raises(BrokerError, match=f"owned by uid {NOBODY}"):
            ask_console(request_for(ws, ["cat", ".env"]), run_dir)
    assert os.lstat(path).st_uid == NOBODY  # not removed


def test_loose_socket_dir_is_refused(run_dir: str) -> None:
    os.mkdir(run_dir, 0o755)
    os.chmod(run_dir, 0o755)
    with pytest.raises(BrokerError, match="must be 0700"):
        Broker(run_dir).start()


def test_a_regular_file_at_the_socket_path_is_not_deleted(run_dir: str) -> None:
    os.mkdir(run_dir, 0o700)
    path = os.path.join(run_dir, SOCKET_NAME)
    Path(path).write_text("precious")
    with pytest.raises(BrokerError, match="not a socket"):
        Broker(run_dir).start()
    assert Path(path).read_text() == "precious"


INTRUDER = """
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
req = {"id": "x", "argv": ["cat", ".env"], "cwd": "/", "hits": [], "profile": None,
       "time": 0.0, "pid": 1}
s.sendall(json.dumps({"type": "request", "request": req}).encode() + b"\\n")
print(s.makefile().readline(), end="")
"""


def test_second_uid_is_refused_by_peercred(ws: Path, audit: AuditLog) -> None:
    """`nobody` can reach the socket (test-only modes) and is still refused by SO_PEERCRED."""
    base = tempfile.mkdtemp(prefix="sandboxtui-peercred-")
    try:
        os.chmod(base, 0o711)
        run_dir = os.path.join(base, "sandboxtui")
        with Broker(run_dir) as b:
            os.chmod(run_dir, 0o711)  # test-only: production keeps 0700 and 0600
            os.chmod(b.path, 0o666)
            proc = subprocess.run(
                ["/usr/sbin/runuser", "-u", "nobody", "--", "/usr/bin/python3", "-c", INTRUDER,
                 b.path], capture_output=True, text=True, timeout=30)
            assert proc.returncode == 0, proc.stderr  # it connected: the modes let it in
            assert f"peer uid {NOBODY} refused" in proc.stdout
            assert [uid for _pid, uid in b.refused] == [NOBODY]
            assert b.next_request(timeout=0.2) is None  # never queued for the console
            # The loose test-only modes make our own client refuse the socket ...
            loose: GateResult = console_gate(ws, ["cat", ".env"], run_dir, audit).result()
            assert not loose.allowed and "must be 0700" in loose.message
            # ... and with the modes restored, the broker still serves its own user.
            os.chmod(run_dir, 0o700)
            job = console_gate(ws, ["cat", ".env"], run_dir, audit)
            pending = b.next_request(timeout=10)
            assert pending is not None
            pending.decide(Decision(Choice.ONCE, "test-console"))
            assert job.result().allowed
    finally:
        shutil.rmtree(base)


def test_malformed_request_gets_an_error(broker: Broker) -> None:
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(broker.path)
        s.sendall(b'{"type": "request", "request": {"argv": "cat .env"}}\n')
        assert b'"type":"error"' in s.makefile("rb").readline()
    assert broker.next_request(timeout=0.1) is None


# --- the terminal ---------------------------------------------------------------------------


@pytest.fixture
def terminal() -> Iterator[tuple[int, str]]:
    master, slave = pty.openpty()
    yield master, os.ttyname(slave)
    os.close(master)
    os.close(slave)


def read_until(fd: int, marker: bytes, timeout: float = 10.0) -> bytes:
    out = b""
    deadline = time.monotonic() + timeout
    while marker not in out:
        remaining = deadline - time.monotonic()
        assert remaining > 0, out
        if select.select([fd], [], [], remaining)[0]:
            out += os.read(fd, 4096)
    return out


@pytest.mark.parametrize(("keys", "choice", "argv"), [
    (b"o\n", Choice.ONCE, None),
    (b"what\ns\n", Choice.SESSION, None),
    (b"d\n", Choice.DENY, None),
    (b"e\ncat 'READ ME.md'\n", Choice.EDIT, ("cat", "READ ME.md")),
])
def test_terminal_prompt(ws: Path, terminal: tuple[int, str], keys: bytes, choice: Choice,
                         argv: tuple[str, ...] | None) -> None:
    master, tty = terminal
    job = Async(lambda: ask_terminal(request_for(ws, ["cat", ".env"]), tty))
    shown = read_until(master, b"[o]nce / [s]ession / [e]dit / [d]eny? ")
    assert b"cat .env" in shown and str(ws / ".env").encode() in shown
    os.write(master, keys)
    decision: Decision = job.result()
    assert decision.choice is choice and decision.who == "terminal" and decision.argv == argv


def test_terminal_prompt_escapes_control_characters(ws: Path,
                                                    terminal: tuple[int, str]) -> None:
    """A command cannot repaint the screen to hide what it does."""
    master, tty = terminal
    sneaky = ["cat", ".env\x1b[2K\rcat README.md"]
    job = Async(lambda: ask_terminal(request_for(ws, sneaky), tty))
    shown = read_until(master, b"[d]eny? ")
    assert b"\x1b" not in shown and b"\\x1b[2K\\r" in shown
    os.write(master, b"d\n")
    assert job.result().choice is Choice.DENY


def test_terminal_end_of_input_denies(ws: Path, terminal: tuple[int, str]) -> None:
    master, tty = terminal
    job = Async(lambda: ask_terminal(request_for(ws, ["cat", ".env"]), tty))
    read_until(master, b"[d]eny? ")
    os.write(master, b"\x04")  # ^D at the start of a line: end of input
    decision: Decision = job.result()
    assert decision.choice is Choice.DENY


def test_no_terminal_means_no_answer(ws: Path, tmp_path: Path) -> None:
    req = request_for(ws, ["cat", ".env"])
    assert ask_terminal(req, str(tmp_path / "missing")) is None
    (tmp_path / "file").write_text("")
    assert ask_terminal(req, str(tmp_path / "file")) is None


def test_gate_asks_the_terminal_without_a_console(ws: Path, sock_dir: str, audit: AuditLog,
                                                  terminal: tuple[int, str]) -> None:
    master, tty = terminal
    plan = plan_for(ws)
    job = Async(lambda: gate(["cat", ".env"], plan, socket_dir=sock_dir, tty=tty, audit=audit))
    read_until(master, b"[d]eny? ")
    os.write(master, b"o\n")
    result: GateResult = job.result()
    assert result.allowed and result.decision is not None and result.decision.who == "terminal"


# --- gate() without a console ---------------------------------------------------------------


def test_gate_clean_command_is_not_audited(ws: Path, sock_dir: str, audit: AuditLog) -> None:
    result = gate(["cat", "README.md"], plan_for(ws), socket_dir=sock_dir, tty=None,
                  audit=audit)
    assert result.allowed and result.decision is None
    assert not os.path.exists(audit.path)


def test_gate_block_mode(ws: Path, sock_dir: str, audit: AuditLog) -> None:
    plan = plan_for(ws, 'sensitive_path_precheck_mode="block"')
    result = gate(["sh", "-c", "cat <.env"], plan, socket_dir=sock_dir, tty=None, audit=audit)
    assert not result.allowed
    assert "blocked by sensitive_path_precheck_mode = block" in result.message
    assert str(ws / ".env") in result.message
    records = read_audit(audit.path).records
    assert records[-1].data["decision"]["who"] == "policy"


def test_gate_off_mode(ws: Path, sock_dir: str, audit: AuditLog) -> None:
    plan = plan_for(ws, 'sensitive_path_precheck_mode="off"')
    result = gate(["cat", ".env"], plan, socket_dir=sock_dir, tty=None, audit=audit)
    assert result.allowed and result.precheck.skipped
    assert "precheck is off" in result.message


def test_gate_without_console_or_terminal_denies(ws: Path, sock_dir: str,
                                                 audit: AuditLog) -> None:
    result = gate(["cat", ".env"], plan_for(ws), socket_dir=sock_dir, tty=None, audit=audit)
    assert not result.allowed and result.decision is not None
    assert result.decision.who == "unattended"
    assert "no console is running and there is no terminal" in result.message


def test_gate_in_process_decider_and_session(ws: Path, sock_dir: str,
                                             audit: AuditLog) -> None:
    asked: list[ApprovalRequest] = []

    def decide(req: ApprovalRequest) -> Decision:
        asked.append(req)
        return Decision(Choice.SESSION, "tui")

    session = ApprovalSession()
    plan = plan_for(ws)
    for _ in range(2):
        result = gate(["cat", ".env"], plan, session=session, decide=decide,
                      socket_dir=sock_dir, tty=None, audit=audit)
        assert result.allowed
    assert len(asked) == 1  # the second run was covered by the session
    assert [r.data["decision"]["who"] for r in read_audit(audit.path).records
            if r.kind == "decision"] == ["tui", "session"]


def test_gate_denies_when_the_audit_log_cannot_be_written(ws: Path, sock_dir: str,
                                                          tmp_path: Path) -> None:
    (tmp_path / "blocker").write_text("")
    audit = AuditLog(str(tmp_path / "blocker" / "audit.jsonl"))  # parent is a file
    called: list[ApprovalRequest] = []
    result = gate(["cat", ".env"], plan_for(ws), socket_dir=sock_dir, tty=None, audit=audit,
                  decide=lambda r: called.append(r) or Decision(Choice.ONCE, "tui"))
    assert not result.allowed and "could not be audited" in result.message
    assert called == []  # never asked: an approval that leaves no trace is not given
