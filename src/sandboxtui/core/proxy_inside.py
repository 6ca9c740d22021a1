"""The byte relay of proxy mode, and the program that starts the inside bridge. Stdlib only.

`Relay` moves bytes between accepted connections and fresh upstream connections, all in one
thread (a selector loop): the host side runs it in a daemon thread of the launch (Unix socket
-> configured proxy), the sandbox side in a bridge process (127.0.0.1:PORT -> Unix socket).

Inside the sandbox this file runs as the sandbox's first process, through the system
interpreter and without site or environment (`python3 -I -S -c BOOT FD ...`), because the
launcher's own interpreter (a venv) may not be readable there. `main()` then:

1. loads the exec stage (`exec_stage.py`, sent as source on a file descriptor) for
   `apply_seccomp`, and reads the compiled proxy-mode filter;
2. binds one loopback listener per route, so connections queue from this moment on;
3. forks the bridge twice over, so that it is not the command's child (a command that waits
   for "all its children" must not wait for it, and Yama lets processes trace their
   descendants), makes it non-dumpable (no /proc/PID/mem, /proc/PID/fd for the command), sends
   its stdio to /dev/null, and enters the private bridge directory through its descriptor: the
   directory is never mounted into the sandbox, so only the bridge can reach the sockets;
4. waits for the bridge to say it is live, closes every bridge descriptor, applies the filter
   (no new AF_UNIX sockets from here on), and execs the command. When the command ends, bwrap
   takes the PID namespace down; the bridge also watches the command through a pidfd and ends
   with it by itself.

Exit codes before exec: 4 when the bridge or the filter cannot be set up, 126/127 when the
command is not executable / not found.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import selectors
import socket
import sys
from collections.abc import Callable

BUFFER = 256 * 1024  # per direction: reading pauses while this much waits to be written
PR_SET_DUMPABLE = 4

Connect = Callable[[], socket.socket]


class _Flow:
    """One direction of a connection: bytes read from `src`, waiting for `dst`."""

    __slots__ = ("src", "dst", "buf", "eof", "done")

    def __init__(self, src: socket.socket, dst: socket.socket) -> None:
        self.src, self.dst = src, dst
        self.buf = bytearray()
        self.eof = False  # src said EOF
        self.done = False  # EOF passed on to dst


class _Pair:
    def __init__(self, a: socket.socket, b: socket.socket) -> None:
        self.flows = (_Flow(a, b), _Flow(b, a))
        self.socks = (a, b)

    def events(self, sock: socket.socket) -> int:
        out, into = (self.flows[0], self.flows[1]) if sock is self.socks[0] else (
            self.flows[1], self.flows[0])
        ev = 0
        if not out.eof and len(out.buf) < BUFFER:
            ev |= selectors.EVENT_READ
        if into.buf:
            ev |= selectors.EVENT_WRITE
        return ev


class Relay:
    """Accepts on `routes` (listener, upstream connector) and relays until `stop()`, or until
    the descriptor `until` (a pidfd) becomes readable."""

    def __init__(self, routes: list[tuple[socket.socket, Connect]], until: int | None = None
                 ) -> None:
        self._routes = routes
        self._until = until
        self._wake_r, self._wake_w = socket.socketpair()
        self._sel = selectors.DefaultSelector()
        self._pairs: set[_Pair] = set()
        self.stopped = False

    def stop(self) -> None:
        """From any thread: end `run()` (it closes every relayed connection)."""
        self.stopped = True
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")

    def run(self) -> None:
        sel = self._sel
        for listener, connect in self._routes:
            listener.setblocking(False)
            sel.register(listener, selectors.EVENT_READ, connect)
        sel.register(self._wake_r, selectors.EVENT_READ, None)
        if self._until is not None:
            sel.register(self._until, selectors.EVENT_READ, None)
        try:
            while not self.stopped:
                for key, mask in sel.select():
                    if key.data is None:
                        self.stopped = True  # stop(), or the watched process ended
                    if isinstance(key.data, _Pair):
                        self._service(key.data, key.fileobj, mask)  # type: ignore[arg-type]
                    else:
                        self._accept(key.fileobj, key.data)  # type: ignore[arg-type]
        finally:
            for pair in list(self._pairs):
                self._close(pair)
            sel.close()
            self._wake_r.close()
            self._wake_w.close()

    def _accept(self, listener: socket.socket, connect: Connect) -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return  # the client gave up already, or out of descriptors: it sees a reset
        try:
            upstream = connect()
        except OSError:
            conn.close()  # the client sees the connection closed, like a refused one
            return
        conn.setblocking(False)
        upstream.setblocking(False)
        pair = _Pair(conn, upstream)
        self._pairs.add(pair)
        for sock in pair.socks:
            self._sel.register(sock, pair.events(sock), pair)

    def _service(self, pair: _Pair, sock: socket.socket, mask: int) -> None:
        try:
            for flow in pair.flows:
                if flow.src is sock and mask & selectors.EVENT_READ:
                    data = sock.recv(BUFFER)
                    if data:
                        flow.buf += data
                    else:
                        flow.eof = True
                if flow.buf and (flow.dst is sock and mask & selectors.EVENT_WRITE
                                 or flow.src is sock):
                    with contextlib.suppress(BlockingIOError):
                        del flow.buf[:flow.dst.send(flow.buf)]
                if flow.eof and not flow.buf and not flow.done:
                    flow.done = True
                    flow.dst.shutdown(socket.SHUT_WR)
        except OSError:
            self._close(pair)  # reset, broken pipe: both ends go
            return
        if all(f.done for f in pair.flows):
            self._close(pair)
            return
        registered = self._sel.get_map()
        for s in pair.socks:
            ev = pair.events(s)
            if ev and s.fileno() in registered:
                self._sel.modify(s, ev, pair)
            elif ev:
                self._sel.register(s, ev, pair)
            elif s.fileno() in registered:
                self._sel.unregister(s)

    def _close(self, pair: _Pair) -> None:
        self._pairs.discard(pair)
        for s in pair.socks:
            if s.fileno() >= 0 and s.fileno() in self._sel.get_map():
                self._sel.unregister(s)
            s.close()


# --- inside the sandbox -----------------------------------------------------------------------


def _read_fd(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks)


def _unix_connector(name: str) -> Connect:
    def connect() -> socket.socket:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.settimeout(5)
            s.connect(name)  # relative to the bridge directory (our cwd)
        except OSError:
            s.close()
            raise
        return s

    return connect


def _bridge(routes: list[tuple[socket.socket, str]], dir_fd: int, command_pid: int,
            no_new_privs: Callable[[], None], ready: int) -> None:
    """The inside bridge process: never returns. It writes "ok" (or why not) to `ready` once
    it can serve. It ends with the command: bwrap normally takes the sandbox down then anyway,
    but a bwrap killed during its setup leaves its init running, waiting for the bridge."""
    code = 1
    try:
        try:
            command = os.pidfd_open(command_pid)  # ProcessLookupError: the command is gone
            if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
                raise OSError(ctypes.get_errno(), "prctl(PR_SET_DUMPABLE)")
            no_new_privs()
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            os.close(null)
            os.fchdir(dir_fd)
            os.close(dir_fd)
            relay = Relay([(listener, _unix_connector(name)) for listener, name in routes],
                          command)
        except Exception as exc:
            os.write(ready, f"{type(exc).__name__}: {exc}".encode())
            raise
        os.write(ready, b"ok")
        os.close(ready)
        relay.run()
        code = 0
    finally:
        os._exit(code)


def _listen(port: int) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(128)
    return s


def _fail(message: str) -> int:
    print(f"sandboxtui: cannot enforce the sandbox: proxy bridge: {message}", file=sys.stderr)
    return 4


def main(argv: list[str]) -> int:
    """argv: STAGE_FD BPF_FD DIR_FD PORT=SOCKET... -- COMMAND ARGS..."""
    sep = argv.index("--")
    stage_fd, bpf_fd, dir_fd = (int(a) for a in argv[:3])
    command = argv[sep + 1:]
    stage: dict[str, object] = {"__name__": "sandboxtui_exec_stage"}
    exec(compile(_read_fd(stage_fd), "exec_stage.py", "exec"), stage)
    bpf = _read_fd(bpf_fd)
    routes = []
    try:
        for spec in argv[3:sep]:
            port, name = spec.split("=", 1)
            routes.append((_listen(int(port)), name))
    except OSError as exc:
        return _fail(f"cannot listen on 127.0.0.1 inside the sandbox: {exc}")
    command_pid = os.getpid()
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(ready_r)
            if os.fork() == 0:
                _bridge(routes, dir_fd, command_pid,
                        stage["no_new_privs"], ready_w)  # type: ignore[arg-type]
            code = 0
        finally:
            os._exit(code)
    os.close(ready_w)
    os.waitpid(pid, 0)
    answer = os.read(ready_r, 4096)  # "" when the bridge died first
    os.close(ready_r)
    if answer != b"ok":
        return _fail(f"the bridge did not start ({answer.decode(errors='replace') or 'died'})")
    for listener, _ in routes:
        listener.close()
    os.close(dir_fd)
    try:
        stage["apply_seccomp"](bpf)  # type: ignore[operator]
    except stage["StageError"] as exc:  # type: ignore[misc]
        return _fail(str(exc))
    try:
        os.execvp(command[0], command)
    except FileNotFoundError:
        print(f"sandboxtui: {command[0]}: command not found", file=sys.stderr)
        return 127
    except OSError as exc:
        print(f"sandboxtui: cannot exec {command[0]}: {exc.strerror}", file=sys.stderr)
        return 126
    return 0  # unreachable: execvp does not return


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
