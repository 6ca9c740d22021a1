"""The probe program: runs INSIDE one sandbox launch and reports the kernel's answers.

Standard library only, run as `python3 -I -S -c <this source>` so it needs nothing but an
interpreter the sandbox can read. Probes arrive as JSON lines on stdin; each answer is one JSON
line on stdout: {"i": index, "ok": bool, "errno": name or null}. Allowed operations leave the
host as they found it: creations use a scratch name and are removed, writes to existing files
open for writing only (nothing is written), renames are renamed back.
"""

import errno
import json
import os
import socket
import sys

SCRATCH = ".sandboxtui-probe-"


def _scratch(directory):
    return os.path.join(directory, SCRATCH + str(os.getpid()))


def read(path):
    with open(path, "rb") as fh:
        fh.read(1)


def list_dir(path):
    os.listdir(path)


def write(path):
    fd = os.open(path, os.O_WRONLY)  # no O_TRUNC, nothing written
    os.close(fd)


def create(path):
    """`path` is a directory: create (and remove) a scratch file in it."""
    target = _scratch(path)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    os.unlink(target)


def create_missing(path):
    """`path` does not exist: try to create it as a directory (removed if that works)."""
    os.mkdir(path)
    os.rmdir(path)


def mkdir(path):
    target = _scratch(path) + "-dir"
    os.mkdir(target)
    os.rmdir(target)


def rename(path):
    away = path + SCRATCH + "renamed"
    os.rename(path, away)
    os.rename(away, path)


def delete(path):
    """`path` is a directory: delete a scratch file in it (created first, as root of the test)."""
    target = _scratch(path) + "-del"
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    os.unlink(target)


def execute(path):
    pid = os.fork()
    if pid == 0:
        try:
            os.execv(path, [path])
        except OSError as exc:
            os._exit(200 + min(exc.errno, 50))
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code >= 200:
        raise OSError(code - 200, os.strerror(code - 200))


def tcp(target):
    host, port = target.rsplit(":", 1)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(2)
        s.connect((host.strip("[]"), int(port)))


def udp(target):
    host, port = target.rsplit(":", 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(b"probe", (host, int(port)))


def unix_socket(_target):
    socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).close()


def socketpair(_target):
    a, b = socket.socketpair()
    a.close()
    b.close()


OPS = {
    "read": read, "list": list_dir, "write": write, "create": create,
    "create-missing": create_missing, "mkdir": mkdir, "rename": rename, "delete": delete,
    "execute": execute, "tcp": tcp, "udp": udp, "unix-socket": unix_socket,
    "socketpair": socketpair,
}


def main():
    for i, line in enumerate(sys.stdin):
        probe = json.loads(line)
        try:
            OPS[probe["op"]](probe["path"])
            answer = {"i": i, "ok": True, "errno": None}
        except OSError as exc:
            name = errno.errorcode.get(exc.errno or 0, str(exc.errno)) if exc.errno else "EIO"
            answer = {"i": i, "ok": False, "errno": name}
        sys.stdout.write(json.dumps(answer) + "\n")
    sys.stdout.flush()


main()
