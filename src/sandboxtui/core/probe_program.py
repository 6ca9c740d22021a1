"""The probe program: runs INSIDE one sandbox launch and reports the kernel's answers.

Standard library only, run as `python3 -I -S -c <this source> PROBE...` so it needs nothing but
an interpreter the sandbox can read. Each argument is one JSON probe {"op": ..., "path": ...};
each answer is one JSON line on stdout: {"i": index, "ok": bool, "errno": name or null,
"leftover": path or null}. Allowed operations leave the host as they found it: creations use a
scratch name and are removed, writes to existing files open for writing only (nothing is
written), renames are renamed back, and executions run under the dynamic loader's trace mode
(`LD_TRACE_LOADED_OBJECTS`), which lists libraries and exits before the program's own code runs.
A cleanup step that fails is reported as `leftover`, never hidden.
"""

import contextlib
import errno
import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable

SCRATCH = ".sandboxtui-probe-" + os.urandom(4).hex()  # unique per launch, not per PID namespace


class Leftover(Exception):
    """The operation worked but its cleanup did not: the host keeps `path`."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path


def _cleanup(fn: Callable[[str], None], path: str) -> None:
    try:
        fn(path)
    except OSError:
        raise Leftover(path) from None


def read(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)  # a FIFO must not block
    try:
        os.read(fd, 1)
    finally:
        os.close(fd)


def list_dir(path: str) -> None:
    os.listdir(path)


def write(path: str) -> None:
    os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_NOCTTY))  # nothing written


def create(path: str) -> None:
    """`path` is a directory: create a scratch file in it, then remove it."""
    target = os.path.join(path, SCRATCH)
    os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    _cleanup(os.unlink, target)


def mkdir(path: str) -> None:
    """`path` is a directory: create a scratch directory in it, then remove it."""
    target = os.path.join(path, SCRATCH + "-dir")
    os.mkdir(target)
    _cleanup(os.rmdir, target)


def delete(path: str) -> None:
    """`path` is a directory: remove an entry from it (a scratch file made for the purpose).

    An existing entry cannot be removed without changing the host; unlinking a fresh one takes
    the same checks (write on the directory, the mount, Landlock's remove right).
    """
    target = os.path.join(path, SCRATCH + "-del")
    os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    _cleanup(os.unlink, target)


def create_missing(path: str) -> None:
    """`path` does not exist: create it as a directory, then remove it."""
    os.mkdir(path)
    _cleanup(os.rmdir, path)


def rename(path: str) -> None:
    away = path + SCRATCH
    os.rename(path, away)
    try:
        os.rename(away, path)
    except OSError:
        raise Leftover(away) from None


def execute(path: str) -> None:
    """Exec `path`; the loader's trace mode stops before the program runs (exec errors raise)."""
    with contextlib.suppress(subprocess.TimeoutExpired):  # it was executed: the question
        subprocess.run([path], executable=path, env={"LD_TRACE_LOADED_OBJECTS": "1"},
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=10, cwd="/")


def _address(target: str) -> tuple[str, int]:
    host, port = target.rsplit(":", 1)
    return host, int(port)


def tcp(target: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(3)
        s.connect(_address(target))


def udp(target: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(b"sandboxtui-probe", _address(target))


def unix_socket(_target: str) -> None:
    socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).close()


def unix_host(target: str) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(3)
        s.connect(target)


def socketpair(_target: str) -> None:
    a, b = socket.socketpair(socket.AF_UNIX)
    a.close()
    b.close()


OPS = {
    "read": read, "list": list_dir, "write": write, "create": create, "mkdir": mkdir,
    "delete": delete, "create-missing": create_missing, "rename": rename, "execute": execute,
    "tcp": tcp, "udp": udp, "unix-socket": unix_socket, "unix-host": unix_host,
    "socketpair": socketpair,
}


def answer(i: int, probe: dict[str, str]) -> dict[str, object]:
    try:
        OPS[probe["op"]](probe["path"])
    except Leftover as exc:
        return {"i": i, "ok": True, "errno": None, "leftover": exc.path}
    except OSError as exc:
        name = (errno.errorcode.get(exc.errno, str(exc.errno)) if exc.errno
                else type(exc).__name__)  # a timeout has no errno
        return {"i": i, "ok": False, "errno": name, "leftover": None}
    return {"i": i, "ok": True, "errno": None, "leftover": None}


def main() -> None:
    out = sys.stdout
    for i, arg in enumerate(sys.argv[1:]):
        out.write(json.dumps(answer(i, json.loads(arg))) + "\n")
    out.flush()


main()
