"""The exec stage: a fresh, single-threaded process that restricts itself, then execs.

Run as `python -I -c BOOT SPEC_FD` (launch.STAGE_ARGV: BOOT puts the absolute directories of
`sandboxtui` and `landlock` on sys.path and calls `main()`). The spec (JSON, read from SPEC_FD)
names resource limits, an optional Landlock ruleset, an optional fd holding a compiled seccomp
BPF program, an optional close-on-exec status fd (a JSON record there means nothing ran), whether
to supervise, and the argv to exec. Restrictions are applied here rather than in a `preexec_fn`
because the parent (the TUI) is threaded. Imports are kept minimal: this runs on every launch
that needs it.

Exit codes before exec: 4 when a restriction cannot be applied, for whatever reason (nothing
runs), 126/127 when the command is not executable / not found.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import resource
import select
import signal
import sys
from typing import Any

PR_SET_NO_NEW_PRIVS = 38
PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
PR_CAPBSET_DROP = 24
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
SYS_CAPSET = {"x86_64": 126, "aarch64": 91}.get(os.uname().machine, 126)
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
SYS_LANDLOCK_CREATE_RULESET = 444  # the same on every architecture
LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0
LANDLOCK_SCOPE_SIGNAL = 1 << 1
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000

RLIMITS = {
    "cpu_seconds": resource.RLIMIT_CPU,
    "address_space": resource.RLIMIT_AS,
    "open_files": resource.RLIMIT_NOFILE,
    "processes": resource.RLIMIT_NPROC,
    "file_size": resource.RLIMIT_FSIZE,
}


class StageError(Exception):
    pass


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def no_new_privs() -> None:
    libc = _libc()
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise StageError(f"prctl(NO_NEW_PRIVS): {os.strerror(ctypes.get_errno())}")


def apply_limits(limits: dict[str, int]) -> None:
    for name, value in limits.items():
        try:
            resource.setrlimit(RLIMITS[name], (value, value))
        except (ValueError, OSError) as exc:
            raise StageError(f"setrlimit {name}={value}: {exc}") from None


class _RulesetAttr(ctypes.Structure):
    """struct landlock_ruleset_attr up to ABI 6 (the `landlock` package knows only the first
    field; unknown trailing fields must be zero, so older kernels accept it too)."""

    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


def apply_landlock(read: list[str], write: list[str], listable: list[str]) -> int:
    """Read+execute beneath `read`, everything beneath `write`, listing directories beneath
    `listable`; returns the ABI used.

    From ABI 6 the domain is also scoped: no signals to processes outside it (the supervising
    stage, the user's shell) and no connecting to abstract Unix sockets outside it.
    """
    from landlock import FSAccess, LandlockError, landlock_abi_version
    from landlock.plumbing import PathBeneathAttr, get_add_rule, get_restrict_self

    ctypes.set_errno(0)  # the landlock package reads errno even after a successful call
    try:
        abi = landlock_abi_version()
        everything = FSAccess.all()
        read_rights = FSAccess.EXECUTE | FSAccess.READ_FILE | FSAccess.READ_DIR
        scoped = LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET | LANDLOCK_SCOPE_SIGNAL if abi >= 6 else 0
        attr = _RulesetAttr(int(everything), 0, scoped)
        libc = _libc()
        libc.syscall.restype = ctypes.c_long
        ruleset = libc.syscall(SYS_LANDLOCK_CREATE_RULESET, ctypes.byref(attr),
                               ctypes.c_size_t(ctypes.sizeof(attr)), ctypes.c_uint32(0))
        if ruleset < 0:
            raise StageError(f"landlock_create_ruleset: {os.strerror(ctypes.get_errno())}")
        try:
            for paths, rights in ((read, read_rights), (write, everything),
                                  (listable, FSAccess.READ_DIR)):
                for path in paths:
                    if not os.path.exists(path):
                        continue
                    # a file may only carry file rights
                    allowed = rights if os.path.isdir(path) else rights & FSAccess.all_file()
                    fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
                    try:
                        get_add_rule()(ruleset, 1, ctypes.byref(PathBeneathAttr(allowed, fd)), 0)
                    finally:
                        os.close(fd)
            no_new_privs()
            get_restrict_self()(ruleset, 0)
        finally:
            os.close(ruleset)
    except (LandlockError, OSError) as exc:
        raise StageError(f"Landlock: {exc}") from None
    return abi


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


def drop_capabilities() -> None:
    """No capabilities, now or after exec: without a user namespace, root would keep them."""
    libc = _libc()
    libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    for cap in range(64):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            err = ctypes.get_errno()
            if err == errno.EINVAL:
                break  # past the last capability this kernel knows
            if err != errno.EPERM or os.geteuid() == 0:
                raise StageError(f"cannot drop capability {cap}: {os.strerror(err)}")
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    if libc.syscall(SYS_CAPSET, ctypes.byref(header), data) != 0:
        raise StageError(f"capset: {os.strerror(ctypes.get_errno())}")


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def apply_seccomp(bpf: bytes) -> None:
    if len(bpf) % 8 or not bpf:
        raise StageError("seccomp program is not a whole number of BPF instructions")
    buf = ctypes.create_string_buffer(bpf, len(bpf))
    prog = _SockFprog(len(bpf) // 8, ctypes.cast(buf, ctypes.c_void_p))
    no_new_privs()
    libc = _libc()
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) != 0:
        raise StageError(f"prctl(SECCOMP): {os.strerror(ctypes.get_errno())}")


def _write_file(path: str, data: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, data.encode())
    finally:
        os.close(fd)


def private_ipc() -> str | None:
    """Leave the host's IPC namespace (SysV shared memory, message queues, semaphores): as
    root directly, otherwise inside a new user namespace that maps only our own ids. Returns
    why it could not, or None."""
    libc = _libc()
    if libc.unshare(CLONE_NEWIPC) == 0:
        return None
    direct = os.strerror(ctypes.get_errno())
    uid, gid = os.getuid(), os.getgid()
    if libc.unshare(CLONE_NEWUSER | CLONE_NEWIPC) != 0:
        return (f"unshare(CLONE_NEWIPC): {direct}; with a user namespace: "
                f"{os.strerror(ctypes.get_errno())}")
    try:
        _write_file("/proc/self/setgroups", "deny")
        _write_file("/proc/self/uid_map", f"{uid} {uid} 1")
        _write_file("/proc/self/gid_map", f"{gid} {gid} 1")
    except OSError as exc:
        # Half made: our ids are unmapped. Nothing may run like this.
        raise StageError(f"cannot map ids in the IPC namespace's user namespace: {exc}") from None
    return None


def _read_fd(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks)


def restrict(spec: dict[str, Any]) -> None:
    """Apply every restriction of `spec` to this process.

    Everything that needs memory (imports, reading the fds) comes before the resource limits,
    which may leave the stage too little address space to import anything; the limits come
    after Landlock (whose ruleset is built in Python) and before seccomp and the exec.
    """
    bpf = _read_fd(spec["seccomp_fd"]) if spec.get("seccomp_fd") is not None else None
    if spec.get("landlock") is not None:
        import landlock  # noqa: F401  (apply_landlock's import, done before the limits)

        os.setsid()  # no controlling terminal: no TIOCSTI injection into the user's shell
        why = private_ipc()
        if why is not None:
            print("sandboxtui: warning: legacy pipeline: no private IPC namespace (" + why
                  + "): the command can reach the host's SysV shared memory and message "
                  "queues — use the bubblewrap pipeline, or allow unprivileged user "
                  "namespaces", file=sys.stderr)
        drop_capabilities()
        apply_landlock(spec["landlock"]["read"], spec["landlock"]["write"],
                       spec["landlock"]["list"])
    apply_limits(spec.get("limits", {}))
    if bpf is not None:
        apply_seccomp(bpf)
    if spec.get("no_new_privs", True):
        no_new_privs()


def _fail(status_fd: int | None, code: int, message: str) -> int:
    """Report why nothing ran: to the launcher through the status fd, else on stderr."""
    if status_fd is not None:
        os.write(status_fd, json.dumps({"exit-code": code, "error": message}).encode())
    else:
        print(f"sandboxtui: {message}", file=sys.stderr)
    return code


def exec_command(spec: dict[str, Any]) -> int:
    """Restrict, exec; returns (only on failure) the exit code for what went wrong (4, 126, 127)."""
    status_fd = spec.get("status_fd")
    if status_fd is not None:
        os.set_inheritable(status_fd, False)  # a successful exec closes it: "it ran"
    argv = spec["argv"]
    name = argv[0]
    try:
        restrict(spec)
    except Exception as exc:  # noqa: BLE001  (whatever it is, nothing ran: never exit 1)
        cause = str(exc) if isinstance(exc, StageError) else f"{type(exc).__name__} {exc}"
        return _fail(status_fd, 4, f"cannot enforce the sandbox: {cause.strip()}")
    try:
        os.execvp(name, argv)
    except MemoryError:
        return _fail(status_fd, 4, "cannot enforce the sandbox: the resource limits leave "
                     f"no memory to exec {name}")
    except FileNotFoundError:
        return _fail(status_fd, 127, f"{name}: command not found")
    except PermissionError:
        return _fail(status_fd, 126, f"{name}: permission denied (not executable, or not "
                     "allowed by the sandbox)")
    except OSError as exc:
        return _fail(status_fd, 126, f"cannot exec {name}: {exc.strerror}")
    return 0  # unreachable: execvp does not return


def _descendants() -> list[int]:
    pids = []
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/children", encoding="ascii") as fh:
                pids += [int(p) for p in fh.read().split()]
        except OSError:
            continue
    return pids


def _kill_descendants() -> None:
    """Kill everything left below us (orphans reparent here: we are a subreaper)."""
    while True:
        pids = _descendants()
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        while True:
            try:
                if os.waitpid(-1, os.WNOHANG) == (0, 0):
                    break
            except ChildProcessError:
                break


def _close_spec_fds(spec: dict[str, Any]) -> None:
    for key in ("status_fd", "seccomp_fd"):
        if spec.get(key) is not None:
            os.close(spec[key])


def _watch(spec: dict[str, Any], lifeline: int, report: int) -> int:
    """The watchdog: outside the launcher's session and process group, so neither a closed
    terminal (SIGHUP) nor a SIGKILL of that group reaches it. It is the command's parent and
    subreaper; when the command ends, or the supervisor dies (its end of `lifeline` closes),
    it kills every process left below it, then reports the command's wait status."""
    os.setsid()
    libc = _libc()
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    watchdog = os.getpid()
    child = os.fork()
    if child == 0:
        os.close(lifeline)
        os.close(report)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # the watchdog is gone: so are we
        if os.getppid() != watchdog:
            os._exit(128 + signal.SIGKILL)  # it died before the signal was armed
        os._exit(exec_command(spec))
    _close_spec_fds(spec)
    pidfd = os.pidfd_open(child)
    status = None
    while status is None:
        ready, _, _ = select.select([pidfd, lifeline], [], [])
        if pidfd in ready:
            status = os.waitpid(child, 0)[1]
        elif not os.read(lifeline, 64):  # the supervisor is gone
            break
    _kill_descendants()
    if status is not None:
        with contextlib.suppress(OSError):
            os.write(report, status.to_bytes(4, "little", signed=True))
    return 0


def supervise(spec: dict[str, Any]) -> int:
    """Run the command under a watchdog and leave no process behind, whatever ends us.

    Without a PID namespace (the legacy pipeline) processes outlive their parent, so the
    command runs below a watchdog (`_watch`) in its own session. This supervisor stays in the
    launcher's process group and relays the exit status. A cancel (SIGTERM), a closed terminal
    (SIGHUP) or the launcher's death (parent-death signal) makes it stop the watchdog, which
    kills everything first; a SIGKILL of the supervisor closes the lifeline, with the same
    effect.
    """
    libc = _libc()
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)  # should the watchdog itself be killed
    life_r, life_w = os.pipe2(os.O_CLOEXEC)
    report_r, report_w = os.pipe2(os.O_CLOEXEC)
    watchdog = 0

    def stop(_sig: int, _frame: object) -> None:
        os.close(life_w)  # the watchdog kills the command and everything below it
        with contextlib.suppress(ChildProcessError):
            os.waitpid(watchdog, 0)
        os._exit(128 + signal.SIGKILL)

    for sig in (signal.SIGTERM, signal.SIGHUP):  # before fork: no window where one is lost
        signal.signal(sig, stop)
    watchdog = os.fork()
    if watchdog == 0:
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        os.close(life_w)
        os.close(report_r)
        os._exit(_watch(spec, life_r, report_w))
    os.close(life_r)
    os.close(report_w)
    _close_spec_fds(spec)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # ^C reaches the command; we clean up after
    reported = _read_fd(report_r)
    os.waitpid(watchdog, 0)
    _kill_descendants()  # orphans of a killed watchdog come to us
    if len(reported) != 4:
        return 128 + signal.SIGKILL  # the watchdog was killed: so was the command
    code = os.waitstatus_to_exitcode(int.from_bytes(reported, "little", signed=True))
    return 128 - code if code < 0 else code


def main() -> int:
    try:
        spec = json.loads(_read_fd(int(sys.argv[1])))
    except (IndexError, ValueError, OSError) as exc:
        print(f"sandboxtui exec stage: bad spec: {exc}", file=sys.stderr)
        return 4
    if spec.get("supervise"):
        return supervise(spec)
    return exec_command(spec)


if __name__ == "__main__":
    sys.exit(main())
