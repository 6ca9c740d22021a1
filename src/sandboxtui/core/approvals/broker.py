"""The approvals broker: a Unix-socket server a console (the TUI) runs, and the client a headless
`sandboxtui run` uses to ask it.

A console serves one workspace (socket `console-HASH.sock`, HASH from the workspace's path) or,
when its user opted in, every workspace (`console.sock`); a headless run asks its own workspace's
console first, then the one serving all, and a console refuses a request for a workspace it does
not serve. The socket lives in the per-user runtime directory (`paths.shared_runtime_dir()`:
`$XDG_RUNTIME_DIR/sandboxtui/`, else `/tmp/sandboxtui-UID`, never `$TMPDIR`), which every sandbox
gets hidden: directory 0700 and socket 0600, both must be owned by the current user and not be
symlinks, and each side checks the other's uid with `SO_PEERCRED`, and that the other is no
sandboxed command (one with a seccomp filter or no-new-privs, as every sandboxed process has: the
legacy pipeline cannot hide a runtime directory in a writable `/tmp`, where a command could
otherwise pose as the console and answer approvals itself). The protocol is JSON lines: the client
sends `{"type": "request", "request": {...}}` and gets back `{"type": "decision", "decision":
{...}}` or `{"type": "error", "error": "..."}`. A console that closes the connection before
deciding means deny.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import queue
import select
import socket
import stat
import struct
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from sandboxtui.core.approvals.model import (
    ApprovalRequest,
    ApprovalSession,
    Choice,
    Decision,
    deny,
)
from sandboxtui.core.outcome import SandboxtuiError
from sandboxtui.core.paths import shared_runtime_dir

SOCKET_NAME = "console.sock"  # the console serving every workspace
MAX_LINE = 1 << 20  # a request or decision line longer than this is refused
MAX_WAITING = 32  # requests waiting for a console's decision at once; more are refused
DEFAULT_CONSOLE_TIMEOUT = 300.0


class BrokerError(SandboxtuiError):
    """The broker socket or its directory is unsafe or unusable: the message says why."""


class ConsoleBusy(BrokerError):
    """Another console already serves these approvals: process `pid`."""

    def __init__(self, message: str, pid: int) -> None:
        super().__init__(message)
        self.pid = pid


def socket_name(workspace: str | None) -> str:
    """The socket of the console serving `workspace` (None: the one serving every workspace)."""
    if workspace is None:
        return SOCKET_NAME
    digest = hashlib.sha256(workspace.encode(errors="surrogateescape")).hexdigest()
    return f"console-{digest[:16]}.sock"


# --- the socket: location and safety checks -----------------------------------------------------


def default_socket_dir(env: Mapping[str, str] | None = None) -> str:
    """The per-user runtime directory, which every sandbox gets hidden: a sandboxed command can
    neither inject nor intercept approval requests there."""
    return shared_runtime_dir(env)


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
                          f"{os.geteuid()}; refusing to use it (remedy: set XDG_RUNTIME_DIR "
                          "to a private directory of yours, e.g. /run/user/"
                          f"{os.geteuid()}, for the TUI and headless runs alike, or have "
                          "root remove it)")
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
    Requests already approved for the session are answered without asking. `workspace`: the
    one workspace whose requests it serves (None: every workspace's); other requests, and
    more than MAX_WAITING waiting at once, are refused (their runs are denied).
    """

    def __init__(self, socket_dir: str | None = None, *, workspace: str | None = None,
                 session: ApprovalSession | None = None,
                 on_request: Callable[[PendingRequest], None] | None = None) -> None:
        self.socket_dir = default_socket_dir() if socket_dir is None else socket_dir
        self.workspace = workspace
        self.path = os.path.join(self.socket_dir, socket_name(workspace))
        self.session = ApprovalSession() if session is None else session
        self.on_request = on_request
        self.requests: queue.Queue[PendingRequest] = queue.Queue()
        self.refused: list[tuple[int, int]] = []  # (pid, uid) of peers refused by SO_PEERCRED
        self._listener: socket.socket | None = None
        self._ino: int | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._waiting = 0  # requests queued and not yet answered

    def start(self) -> None:
        """Create the directory and socket (cleaning a stale socket) and start serving."""
        _claim_socket_path(self.socket_dir, self.path)
        listener = _listen(self.path)
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
            if why := _peer_refusal(pid, uid):
                self.refused.append((pid, uid))
                with contextlib.suppress(OSError):
                    _send(conn, {"type": "error", "error": why})
                return
            request = _read_request(conn)
            if request is None:
                return
            if why := self._refusal(request):
                with contextlib.suppress(OSError):
                    _send(conn, {"type": "error", "error": why})
                return
            decision = self.session.lookup(request) or self._ask(conn, request, pid)
            if decision is None:
                return
            if decision.choice is Choice.SESSION:
                self.session.remember(request, decision)
            conn.settimeout(10.0)
            with contextlib.suppress(OSError):
                _send(conn, {"type": "decision", "decision": decision.to_json()})

    def _refusal(self, request: ApprovalRequest) -> str | None:
        """Why this console will not ask about `request`, or None."""
        if self.workspace is not None and request.workspace != self.workspace:
            return (f"this console serves approvals for {self.workspace} only, not for "
                    f"{request.workspace}")
        return None

    def _ask(self, conn: socket.socket, request: ApprovalRequest, pid: int) -> Decision | None:
        """Queue the request and wait for the console; None if the asker went away. Past
        MAX_WAITING waiting requests, a deny without asking."""
        with self._lock:
            if self._waiting >= MAX_WAITING:
                return deny("console", f"{MAX_WAITING} requests are already waiting for this "
                            "console; refused without asking")
            self._waiting += 1
        try:
            return self._wait_for(conn, PendingRequest(request, pid))
        finally:
            with self._lock:
                self._waiting -= 1

    def _wait_for(self, conn: socket.socket, pending: PendingRequest) -> Decision | None:
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


def _claim_socket_path(socket_dir: str, path: str) -> None:
    """Make `socket_dir` (0700, ours) if needed and free `path` of a stale socket; a console
    still serving there, or anything unsafe, is a BrokerError."""
    try:
        os.mkdir(socket_dir, 0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        raise BrokerError(f"cannot create socket directory {socket_dir}: "
                          f"{exc.strerror}") from exc
    _check_private_dir(socket_dir)
    if _check_socket(path):
        if (pid := _console_pid(path)) is not None:
            raise ConsoleBusy(f"another console (pid {pid}) is already serving approvals on "
                              f"{path}", pid)
        os.unlink(path)  # stale: its console died without cleaning up


def _listen(path: str) -> socket.socket:
    """A socket listening at `path`, mode 0600."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        listener.bind(path)
        os.chmod(path, 0o600)
        listener.listen(16)
    except OSError as exc:
        listener.close()
        raise BrokerError(f"cannot listen on {path}: {exc.strerror}") from exc
    return listener


def _peer_refusal(pid: int, uid: int) -> str | None:
    """Why the broker refuses a client (another uid, or a sandboxed command), or None."""
    if uid != os.geteuid():
        return f"peer uid {uid} refused: this console only serves uid {os.geteuid()}"
    if confined := sandboxed_peer(pid):
        return f"refused: {confined}"
    return None


def _read_request(conn: socket.socket) -> ApprovalRequest | None:
    """The client's request, or None: it sent nothing, or an unreadable request (it is told)."""
    try:
        line = _recv_line(conn, time.monotonic() + 10.0)
        if line is None:
            return None
        return ApprovalRequest.from_json(json.loads(line)["request"])
    except (TimeoutError, ValueError, KeyError, TypeError, AttributeError) as exc:
        with contextlib.suppress(OSError):
            _send(conn, {"type": "error", "error": f"bad request: {exc!r}"})
        return None


def _console_pid(path: str) -> int | None:
    """The pid of the console serving on `path`, or None when the socket is stale."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC) as probe:
        try:
            probe.connect(path)
        except OSError as exc:
            if exc.errno in (errno.ECONNREFUSED, errno.ENOENT):
                return None
            raise BrokerError(f"cannot probe {path}: {exc.strerror}") from exc
        return peer_uid(probe)[0]


# --- asking (the headless side) -----------------------------------------------------------------


def ask_console(request: ApprovalRequest, socket_dir: str | None = None,
                timeout: float = DEFAULT_CONSOLE_TIMEOUT,
                waiting: Callable[[int], None] | None = None) -> Decision | None:
    """The decision of the console serving the request's workspace, else of the one serving
    every workspace, or None when neither is reachable. `waiting(pid)` is called once a console
    (process `pid`) has the request.

    A console that does not answer within `timeout`, or closes the connection first, is a deny.
    An unsafe socket path raises BrokerError (a stranger's socket must not approve commands).
    """
    socket_dir = default_socket_dir() if socket_dir is None else socket_dir
    if not os.path.lexists(socket_dir):
        return None
    _check_private_dir(socket_dir)
    for name in (socket_name(request.workspace), SOCKET_NAME):
        path = os.path.join(socket_dir, name)
        if not _check_socket(path):
            continue
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC) as sock:
            try:
                sock.connect(path)
            except OSError as exc:
                if exc.errno in (errno.ECONNREFUSED, errno.ENOENT):
                    continue  # stale socket: the console is gone
                raise BrokerError(f"cannot connect to {path}: {exc.strerror}") from exc
            pid = _check_console(sock, path)
            if waiting is not None:
                waiting(pid)
            return _exchange(sock, request, timeout)
    return None


def _check_console(sock: socket.socket, path: str) -> int:
    """The pid of the console at the other end of `sock`, which must run as this user and be
    no sandboxed command: a stranger's or a sandbox's socket must not approve commands."""
    pid, uid = peer_uid(sock)
    if uid != os.geteuid():
        raise BrokerError(f"the console on {path} runs as uid {uid}, not {os.geteuid()}")
    if confined := sandboxed_peer(pid):
        raise BrokerError(f"the console on {path} is not sandboxtui's: {confined}; "
                          "refusing to ask it")
    return pid


def _exchange(sock: socket.socket, request: ApprovalRequest, timeout: float) -> Decision:
    """Send the request and read the console's decision; any other outcome is a deny."""
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
