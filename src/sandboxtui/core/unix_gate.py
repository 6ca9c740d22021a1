"""The Unix-socket gate: a sandbox may serve on Unix sockets and connect to its own listeners,
never to the host's.

With the network off under bubblewrap the sandbox has its own network namespace, so abstract
Unix names are its own; but a socket *path* reaches whatever listener is bound to that file,
and the sandbox sees the host's filesystem. seccomp cannot read the address a `connect()`
names, so the launcher answers those calls itself (seccomp user notification):

- `install_in_child()` runs between fork and exec of bwrap. It sets no-new-privs, installs a
  two-syscall filter (`connect`, `listen`: the `Action.GATE` rules of the command's filter)
  with a notification listener, and hands that listener to the launcher over a socket pair.
  Every process of the sandbox inherits the filter; none can reach the listener.
- `UnixGate` serves the notifications on a thread of the launcher. No call is let through
  as it stands (the address lies in memory a second thread may rewrite, and the descriptor
  number may be swapped, between a check and the kernel's own read): the launcher takes a copy
  of the caller's socket (pidfd_getfd), which must live in the sandbox's network namespace
  (an inherited host socket would not), and makes the call on it itself.
  - `listen()`: once the socket listens, the file it is bound to (ioctl SIOCUNIXFILE) is
    recorded as this sandbox's own and held open.
  - `connect()`: the address is copied once. A socket path is resolved inside the sandbox's
    root, with the caller's permissions; it connects only if it leads to a recorded listener's
    file, and then through the fd held since listen(); else EACCES. Abstract names and TCP/UDP
    addresses are connected as given: the sandbox's own network namespace decides where they
    lead.

If the launcher dies, the listener closes and every gated call fails (ENOSYS): fail closed.
A sandbox cannot reach another sandbox's listeners: each launch has its own record. A listener
inside sees the launcher, not the client, as its peer (SO_PEERCRED).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import select
import socket
import stat
import struct
import threading
from collections.abc import Callable, Iterator

from sandboxtui.core.outcome import SandboxtuiError
from sandboxtui.core.seccomp import Action, SeccompFilter

_SYSCALLS = {  # machine: (AUDIT_ARCH, {name: number})
    "x86_64": (0xC000003E, {"connect": 42, "listen": 50}),
    "aarch64": (0xC00000B7, {"connect": 203, "listen": 201}),
}
_SYS_SECCOMP = {"x86_64": 317, "aarch64": 277}
_SYS_PIDFD_GETFD = 438  # the same on every architecture
_SYS_OPENAT2 = 437
PR_SET_NO_NEW_PRIVS = 38
SECCOMP_SET_MODE_FILTER = 1
SECCOMP_GET_NOTIF_SIZES = 3
SECCOMP_FILTER_FLAG_NEW_LISTENER = 1 << 3
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_USER_NOTIF = 0x7FC00000
NOTIF_RECV = 0xC0502100  # _IOWR('!', 0, struct seccomp_notif): 80 bytes
NOTIF_SEND = 0xC0182101  # _IOWR('!', 1, struct seccomp_notif_resp): 24 bytes
NOTIF_ID_VALID = 0x40082102  # _IOW('!', 2, __u64)
SIOCUNIXFILE = 0x89E0  # SIOCPROTOPRIVATE: an O_PATH fd of the file a Unix socket is bound to
PIDFD_THREAD = os.O_EXCL
RESOLVE_IN_ROOT = 0x10
SIOCGSKNS = 0x894C  # an fd of the socket's network namespace
MAX_LISTENERS = 256  # recorded socket files held open per launch
MAX_CONNECTS = 64  # connects in flight per launch, each on its own thread
_SOCKADDR_MAX = 128  # sizeof(struct sockaddr_storage)

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_MACHINE = os.uname().machine


class GateError(SandboxtuiError):
    """The gate cannot be set up (exit 4): the launch must not go ahead without it."""


def _bpf(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("<HBBI", code, jt, jf, k)


def gate_program(flt: SeccompFilter) -> bytes | None:
    """The listener's BPF program: notify on the filter's GATE syscalls of the native
    architecture, allow everything else (the command's own filter refuses what it refuses:
    an errno outranks a notification). None when the filter gates nothing."""
    names = [r.syscall for r in flt.rules if r.action is Action.GATE]
    if not names:
        return None
    arch, numbers = _SYSCALLS[_MACHINE]
    ld_w, jeq, ret = 0x20, 0x15, 0x06
    n = len(names)
    prog = [_bpf(ld_w, 0, 0, 4), _bpf(jeq, 0, n + 1, arch), _bpf(ld_w, 0, 0, 0)]
    # compare i jumps to the notify return (at n + 4) when equal: n - i compares and the allow
    prog += [_bpf(jeq, n - i, 0, numbers[name]) for i, name in enumerate(names)]
    prog += [_bpf(ret, 0, 0, SECCOMP_RET_ALLOW), _bpf(ret, 0, 0, SECCOMP_RET_USER_NOTIF)]
    return b"".join(prog)


def unavailable() -> str | None:
    """Why this machine cannot run the gate, or None: seccomp user notification, pidfd_getfd
    (Linux 5.6) and SIOCUNIXFILE (Linux 6.1) on a supported architecture."""
    if _MACHINE not in _SYSCALLS:
        return f"the Unix-socket gate knows no syscall numbers for {_MACHINE}"
    sizes = (ctypes.c_uint16 * 3)()
    if _libc.syscall(_SYS_SECCOMP[_MACHINE], SECCOMP_GET_NOTIF_SIZES, 0, sizes) != 0:
        return "the kernel has no seccomp user notification (Linux 5.0)"
    if _libc.syscall(_SYS_PIDFD_GETFD, -1, 0, 0) == 0 or ctypes.get_errno() == errno.ENOSYS:
        return "the kernel has no pidfd_getfd (Linux 5.6)"
    with socket.socket(socket.AF_UNIX) as probe:
        if _libc.ioctl(probe.fileno(), SIOCUNIXFILE, 0) >= 0:
            return None  # not reached: the socket is bound to nothing
        if ctypes.get_errno() not in (errno.ENOENT, errno.EPERM):
            return "the kernel has no SIOCUNIXFILE (Linux 6.1)"
    return None


class _Fprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


class ChildInstaller:
    """Prepared in the launcher; `__call__` runs in the forked child before exec (a
    `preexec_fn`: only syscalls through objects made here, nothing that takes a lock)."""

    def __init__(self, program: bytes) -> None:
        self._code = ctypes.create_string_buffer(program, len(program))
        self._prog = _Fprog(len(program) // 8, ctypes.addressof(self._code))
        self.launcher, self._child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self._nr = _SYS_SECCOMP[_MACHINE]

    def __call__(self) -> None:
        if _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            os._exit(4)
        fd = _libc.syscall(self._nr, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER,
                           ctypes.byref(self._prog))
        if fd < 0:
            os._exit(4)
        self._child.sendmsg([b"L"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                      struct.pack("i", fd))])
        os.close(fd)  # the sandbox keeps no way to answer its own calls
        self._child.close()

    def __enter__(self) -> ChildInstaller:
        return self

    def __exit__(self, *_: object) -> None:
        self._child.close()
        self.launcher.close()

    def receive(self) -> int:
        """The listener fd, once the child has sent it (close-on-exec here)."""
        self._child.close()
        try:
            self.launcher.settimeout(10)
            _, ancillary, _, _ = self.launcher.recvmsg(1, socket.CMSG_SPACE(4),
                                                       socket.MSG_CMSG_CLOEXEC)
        except OSError as exc:
            raise GateError(f"the Unix-socket gate did not start: {exc}") from None
        finally:
            self.launcher.close()
        for level, kind, data in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS and len(data) >= 4:
                return int(struct.unpack("i", data[:4])[0])
        raise GateError("the Unix-socket gate did not start: the sandbox sent no listener")


def _openat2(dirfd: int, path: bytes, resolve: int) -> int:
    how = struct.pack("<QQQ", os.O_PATH | os.O_CLOEXEC, 0, resolve)
    fd = _libc.syscall(_SYS_OPENAT2, dirfd, path, how, len(how))
    if fd < 0:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
    return int(fd)


def _pidfd_getfd(pidfd: int, target: int) -> int:
    fd = _libc.syscall(_SYS_PIDFD_GETFD, pidfd, target, 0)
    if fd < 0:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
    return int(fd)


def _pidfd(tid: int) -> int:
    """A pidfd for the calling thread (its own fd table), else for its thread group."""
    try:
        return os.pidfd_open(tid, PIDFD_THREAD)
    except OSError:  # before Linux 6.9, or the thread is its group's leader
        pass
    with open(f"/proc/{tid}/status", encoding="ascii") as fh:
        tgid = next(int(line.split()[1]) for line in fh if line.startswith("Tgid:"))
    return os.pidfd_open(tgid)


class _Refused(Exception):
    """The gated call fails with this errno."""

    def __init__(self, code: int) -> None:
        self.code = code


class UnixGate:
    """Serves one sandbox's gated calls on a thread; `close()` when the sandbox is gone.

    Bounded: at most MAX_CONNECTS connects in flight (each may block, on its own thread;
    beyond, EAGAIN) and MAX_LISTENERS recorded listeners (each holds an fd; beyond, EMFILE).
    If serving fails, the listener closes and every later gated call fails (ENOSYS)."""

    def __init__(self, listener: int) -> None:
        self._listener = listener
        self._wake_r, self._wake_w = os.pipe2(os.O_CLOEXEC)
        self._lock = threading.Lock()
        self._own: dict[tuple[int, int], int] = {}  # (st_dev, st_ino) -> the held O_PATH fd
        self._connects = threading.BoundedSemaphore(MAX_CONNECTS)
        self._thread = threading.Thread(target=self._serve, name="sandboxtui-unix-gate",
                                        daemon=True)
        self._thread.start()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")
        self._thread.join(5)
        with self._lock:
            for fd in (*self._own.values(), self._listener, self._wake_r, self._wake_w):
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._own.clear()
            self._listener = -1

    # -- the loop --

    def _serve(self) -> None:
        try:
            self._loop()
        except BaseException:
            with self._lock:  # fail closed: without a listener every gated call fails
                with contextlib.suppress(OSError):
                    os.close(self._listener)
                self._listener = -1
            raise

    def _loop(self) -> None:
        poller = select.poll()
        poller.register(self._listener, select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        _, numbers = _SYSCALLS[_MACHINE]
        while True:
            events = dict(poller.poll())
            if self._wake_r in events:
                return
            if not events.get(self._listener, 0) & select.POLLIN:
                return  # POLLHUP: every process of the sandbox has exited
            notif = ctypes.create_string_buffer(80)
            if _libc.ioctl(self._listener, NOTIF_RECV, notif) != 0:
                continue  # ENOENT: the caller died (or was interrupted) meanwhile
            nid, tid = struct.unpack_from("<QI", notif, 0)
            nr = struct.unpack_from("<i", notif, 16)[0]
            args = struct.unpack_from("<6Q", notif, 32)
            if nr == numbers["listen"]:
                self._answer(nid, self._on_listen, tid, args)
            elif not self._connects.acquire(blocking=False):
                self._send(nid, -errno.EAGAIN)
            else:  # connect may block (a full backlog): each one on its own thread
                try:
                    threading.Thread(target=self._connect_thread, args=(nid, tid, args),
                                     name="sandboxtui-unix-gate-connect", daemon=True).start()
                except RuntimeError:  # no thread to be had: refuse, keep serving
                    self._connects.release()
                    self._send(nid, -errno.EAGAIN)

    def _connect_thread(self, nid: int, tid: int, args: tuple[int, ...]) -> None:
        try:
            self._answer(nid, self._on_connect, tid, args)
        finally:
            self._connects.release()

    def _answer(self, nid: int, handler: Callable[[int, int, tuple[int, ...]], int],
                tid: int, args: tuple[int, ...]) -> None:
        """Run the handler: its result is the call's return value, an errno when it
        refuses. Whatever goes wrong refuses the call."""
        try:
            value = handler(nid, tid, args)
        except _Refused as refused:
            value = -refused.code
        except Exception:  # noqa: BLE001 - a gate that breaks refuses, it never lets through
            value = -errno.EACCES
        self._send(nid, value)

    def _send(self, nid: int, value: int) -> None:
        """Answer a call: a return value >= 0, or minus an errno."""
        response = (struct.pack("<QqiI", nid, value, 0, 0) if value >= 0
                    else struct.pack("<QqiI", nid, 0, value, 0))
        _libc.ioctl(self._listener, NOTIF_SEND, ctypes.create_string_buffer(response, 24))

    def _valid(self, nid: int) -> None:
        """The caller is still blocked in this call (so `tid` is still that task)."""
        if _libc.ioctl(self._listener, NOTIF_ID_VALID, ctypes.byref(ctypes.c_uint64(nid))):
            raise _Refused(errno.EINTR)

    def _socket_of(self, nid: int, tid: int, fd: int) -> int:
        """A copy of the caller's socket `fd` (the very socket: the same open file), which
        must belong to the caller's network namespace: a socket inherited from the host
        (a launcher started by inetd or socat) would connect in the host's."""
        try:
            pidfd = _pidfd(tid)
        except (OSError, StopIteration):
            raise _Refused(errno.ESRCH) from None
        try:
            self._valid(nid)  # the pidfd is the caller's, not a task that reused its id
            try:
                sock = _pidfd_getfd(pidfd, fd)
            except OSError as exc:
                raise _Refused(exc.errno or errno.EBADF) from None
        finally:
            os.close(pidfd)
        if _domain(sock) is None:
            os.close(sock)
            raise _Refused(errno.ENOTSOCK)
        netns = _libc.ioctl(sock, SIOCGSKNS, 0)
        try:
            if netns < 0 or os.fstat(netns).st_ino != os.stat(f"/proc/{tid}/ns/net").st_ino:
                raise _Refused(errno.EACCES)
        except BaseException:
            os.close(sock)
            raise
        finally:
            if netns >= 0:
                os.close(netns)
        return sock

    # -- listen --

    def _on_listen(self, nid: int, tid: int, args: tuple[int, ...]) -> int:
        """Listen on the caller's socket here (an accepted socket carries its listener's
        path, but cannot listen), then record the file a Unix listener is bound to."""
        sock = self._socket_of(nid, tid, ctypes.c_int(args[0]).value)
        try:
            if _libc.listen(sock, ctypes.c_int(args[1])) != 0:
                raise _Refused(ctypes.get_errno())
            bound = (_libc.ioctl(sock, SIOCUNIXFILE, 0)
                     if _domain(sock) == socket.AF_UNIX else -1)
        finally:
            os.close(sock)
        if bound < 0:
            return 0  # no file to record: TCP, an abstract name, an unbound socket
        st = os.fstat(bound)
        key = (st.st_dev, st.st_ino)
        with self._lock:
            if key not in self._own and len(self._own) < MAX_LISTENERS:
                self._own[key] = bound
                return 0
        os.close(bound)
        return 0  # recorded already; or one too many, and no connect will reach it

    # -- connect --

    def _on_connect(self, nid: int, tid: int, args: tuple[int, ...]) -> int:
        fd, address, length = ctypes.c_int(args[0]).value, args[1], args[2]
        if not 2 <= length <= _SOCKADDR_MAX:
            raise _Refused(errno.EINVAL)
        try:
            with open(f"/proc/{tid}/mem", "rb", buffering=0) as mem:
                mem.seek(address)
                addr = mem.read(length)
        except (OSError, ValueError, OverflowError):
            raise _Refused(errno.EFAULT) from None
        if len(addr) != length:
            raise _Refused(errno.EFAULT)
        self._valid(nid)  # the memory read was the caller's
        sock = self._socket_of(nid, tid, fd)
        try:
            family = struct.unpack_from("=H", addr)[0]
            if family == socket.AF_UNIX == _domain(sock) and length > 2 and addr[2] != 0:
                target = self._resolve(tid, addr[2:].split(b"\0", 1)[0])
                try:
                    addr = self._own_listener(target)
                finally:
                    os.close(target)
            return _connect(sock, addr)
        finally:
            os.close(sock)

    def _resolve(self, tid: int, path: bytes) -> int:
        """An O_PATH fd of `path` as the caller sees it: in its root, from its cwd, with no
        more permission than the caller has (a root launcher's DAC override would tell a
        sandbox which files exist in directories it cannot search)."""
        if not path.startswith(b"/"):
            cwd = os.readlink(f"/proc/{tid}/cwd").encode()
            if not cwd.startswith(b"/") or cwd.endswith(b" (deleted)"):
                raise _Refused(errno.ENOENT)
            path = cwd.rstrip(b"/") + b"/" + path
        root = os.open(f"/proc/{tid}/root", os.O_PATH | os.O_CLOEXEC | os.O_DIRECTORY)
        try:
            with _without_dac_override():
                return _openat2(root, path.lstrip(b"/") or b".", RESOLVE_IN_ROOT)
        except OSError as exc:
            raise _Refused(exc.errno or errno.ENOENT) from None
        finally:
            os.close(root)

    def _own_listener(self, target: int) -> bytes:
        """The address of this sandbox's listener bound to `target`'s file: through the fd
        held since listen(), so even an inode number reused on a filesystem whose counter
        wraps reaches only that listener."""
        st = os.fstat(target)
        if not stat.S_ISSOCK(st.st_mode):
            raise _Refused(errno.ECONNREFUSED)
        with self._lock:
            held = self._own.get((st.st_dev, st.st_ino))
            if held is None:
                raise _Refused(errno.EACCES)
        return _sockaddr_un(f"/proc/self/fd/{held}".encode())


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


_DAC = (1 << 1) | (1 << 2)  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH


@contextlib.contextmanager
def _without_dac_override() -> Iterator[None]:
    """This thread (capabilities are per thread) without its DAC override, for a while."""
    header, data = _CapHeader(0x20080522, 0), (_CapData * 2)()
    if _libc.capget(ctypes.byref(header), data) != 0 or not data[0].effective & _DAC:
        yield
        return
    saved = data[0].effective
    data[0].effective = saved & ~_DAC
    if _libc.capset(ctypes.byref(header), data) != 0:
        raise _Refused(errno.EACCES)
    try:
        yield
    finally:
        data[0].effective = saved
        _libc.capset(ctypes.byref(header), data)


def _domain(sock: int) -> int | None:
    """The socket's address family (SO_DOMAIN), None for a descriptor that is no socket."""
    value, size = ctypes.c_int(), ctypes.c_uint32(4)
    if _libc.getsockopt(sock, socket.SOL_SOCKET, socket.SO_DOMAIN, ctypes.byref(value),
                        ctypes.byref(size)) != 0:
        return None
    return value.value


def _sockaddr_un(path: bytes) -> bytes:
    return struct.pack("=H", socket.AF_UNIX) + path + b"\0"


def _connect(sock: int, addr: bytes) -> int:
    buf = ctypes.create_string_buffer(addr, len(addr))
    if _libc.connect(sock, buf, len(addr)) != 0:
        raise _Refused(ctypes.get_errno())
    return 0
