"""The Unix-socket gate (issue 12 item 5): with the network off, a sandboxed command serves on
Unix sockets and connects to its own listeners, and never reaches a host listener, however
it names one: absolute or relative path, a symlink, a hard link or a rename into a writable
root, a listener's file swapped after listen(), an address rewritten or a descriptor swapped
by a second thread while connect() waits for the gate, another sandbox's listener, or an
abstract name. Every host listener is checked afterwards: nothing may be queued on it.
Real launches, as root and as nobody, with the system and the vendored bwrap."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Runner, chown_tree, make_workspace

NO_PRECHECK = 'sensitive_path_precheck_mode="off"'


@pytest.fixture
def ws(shared_dir: Path, runner: Runner) -> Path:
    base = Path(tempfile.mkdtemp(dir=shared_dir))
    base.chmod(0o755)
    workspace = make_workspace(base)
    chown_tree(workspace, runner.user)
    return workspace


def _launch(runner: Runner, ws: Path, script: str, *args: str) -> subprocess.Popen[str]:
    argv = [*runner.prefix(), "run", "--config", str(runner.config), "--cwd", str(ws),
            *runner.bwrap_options(), "-c", NO_PRECHECK, "--", "/usr/bin/python3", "-c",
            script, *args]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def run_json(runner: Runner, ws: Path, script: str, *args: str) -> dict[str, object]:
    proc = _launch(runner, ws, script, *args)
    try:
        out, err = proc.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the launcher and its sandbox, none left behind
        proc.communicate()
        raise
    assert proc.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


class HostListener:
    """A listener outside every sandbox, world-connectable; `reached()` says whether anybody
    connected (a connection waits in its queue)."""

    def __init__(self, path: str | bytes) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.bind(path)
        if isinstance(path, str):
            os.chmod(path, 0o777)
        self.sock.listen(64)
        self.sock.setblocking(False)

    def reached(self) -> bool:
        try:
            conn, _ = self.sock.accept()
        except BlockingIOError:
            return False
        conn.close()
        return True

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def host(shared_dir: Path) -> Iterator[HostListener]:
    listener = HostListener(str(shared_dir / f"host-{os.urandom(4).hex()}.sock"))
    yield listener
    listener.close()
    os.unlink(listener.path)  # type: ignore[arg-type]


CONNECT = r"""
import errno, json, os, socket, sys
host, out = sys.argv[1], {}
def attempt(name, path, kind=socket.SOCK_STREAM):
    s = socket.socket(socket.AF_UNIX, kind)
    try:
        s.connect(path)
        out[name] = "CONNECTED"
    except OSError as e:
        out[name] = errno.errorcode[e.errno]
    finally:
        s.close()
attempt("absolute", host)
attempt("seqpacket", host, socket.SOCK_SEQPACKET)
os.chdir(os.path.dirname(host)); attempt("relative", os.path.basename(host))
os.chdir(sys.argv[2])
os.symlink(host, "link.sock"); attempt("symlink", "link.sock")
os.symlink(os.path.dirname(host), "dirlink")
attempt("symlinked-dir", "dirlink/" + os.path.basename(host))
attempt("proc-root", "/proc/self/root" + host)
fd = os.open(host, os.O_PATH); attempt("proc-fd", f"/proc/self/fd/{fd}")
try:
    os.link(host, "hard.sock"); attempt("hard-link", "hard.sock")
except OSError as e:
    out["hard-link"] = "link: " + errno.errorcode[e.errno]
print(json.dumps(out))
"""


def test_adv_host_socket_is_unreachable_by_any_name(runner: Runner, ws: Path,
                                                    host: HostListener) -> None:
    out = run_json(runner, ws, CONNECT, str(host.path), str(ws))
    assert "CONNECTED" not in out.values(), out
    assert out["absolute"] == out["seqpacket"] == out["relative"] == "EACCES", out
    assert out["symlink"] == out["symlinked-dir"] == "EACCES", out
    # /proc/self names the gate's caller, which the sandbox's procfs does not know
    assert out["proc-fd"] in ("EACCES", "ENOENT") and out["proc-root"] in ("EACCES", "ENOENT")
    assert not host.reached()


OWN = r"""
import errno, json, os, socket, sys, threading
out = {}
def serve(srv):
    conn, _ = srv.accept(); conn.sendall(conn.recv(16)); conn.close()
def roundtrip(name, addr, via):
    srv = socket.socket(socket.AF_UNIX); srv.bind(addr); srv.listen(1)
    t = threading.Thread(target=serve, args=(srv,)); t.start()
    c = socket.socket(socket.AF_UNIX)
    try:
        c.connect(via); c.sendall(b"ping"); out[name] = c.recv(16).decode()
    except OSError as e:
        out[name] = errno.errorcode[e.errno]
        socket.socket(socket.AF_UNIX).connect(addr)  # let the server thread end
    t.join(); srv.close()
roundtrip("relative", "own.sock", "own.sock")
os.symlink("own2.sock", "own-link")
roundtrip("symlink", "own2.sock", "own-link")
roundtrip("absolute", os.path.abspath("own3.sock"), os.path.abspath("own3.sock"))
roundtrip("abstract", "\0sandboxtui-own", "\0sandboxtui-own")
os.makedirs("/tmp/" + sys.argv[1], exist_ok=True)
roundtrip("tmp", f"/tmp/{sys.argv[1]}/own.sock", f"/tmp/{sys.argv[1]}/own.sock")
print(json.dumps(out))
"""


def test_adv_own_listeners_are_reachable(runner: Runner, ws: Path) -> None:
    """The allowed side of the same gate: every way of naming its own listener works."""
    out = run_json(runner, ws, OWN, f"sandboxtui-gate-{os.urandom(3).hex()}")
    assert out == {k: "ping" for k in ("relative", "symlink", "absolute", "abstract", "tmp")}


SWAP = r"""
import errno, json, os, socket, sys
host, out = sys.argv[1], {}
srv = socket.socket(socket.AF_UNIX); srv.bind("mine.sock"); srv.listen(1)
# the recorded file goes; the host's socket takes its name (a hard link, then a rename)
os.unlink("mine.sock")
for how in ("link", "rename"):
    try:
        if how == "link":
            os.link(host, "mine.sock")
        else:
            os.link(host, "tmp.sock"); os.rename("tmp.sock", "mine.sock")
    except OSError as e:
        out[how] = "setup: " + errno.errorcode[e.errno]
        continue
    c = socket.socket(socket.AF_UNIX)
    try:
        c.connect("mine.sock"); out[how] = "CONNECTED"
    except OSError as e:
        out[how] = errno.errorcode[e.errno]
    os.unlink("mine.sock")
print(json.dumps(out))
"""


def test_adv_listener_file_swapped_for_a_host_socket(runner: Runner, ws: Path) -> None:
    """A host listener bound inside the workspace (a writable root): the command hard-links
    it over the name of its own recorded listener; the gate checks the inode, not the name."""
    listener = HostListener(str(ws / "host.sock"))
    chown_tree(ws, runner.user)  # the command's own user owns it: it may hard-link it
    try:
        out = run_json(runner, ws, SWAP, str(ws / "host.sock"))
        assert out == {"link": "EACCES", "rename": "EACCES"}, out
        assert not listener.reached()
    finally:
        listener.close()


RACE = r"""
import ctypes, errno, json, os, socket, struct, sys, threading, time
host, out = sys.argv[1].encode(), {"connected": 0, "answers": {}}
srv = socket.socket(socket.AF_UNIX); srv.bind("own.sock"); srv.listen(512)
own = os.path.abspath("own.sock").encode()
def addr(path):
    return struct.pack("=H", socket.AF_UNIX) + path + b"\0" * (108 - len(path))
buf = ctypes.create_string_buffer(addr(own), 110)
stop = time.monotonic() + 3
def flip():  # rewrite the address in place while connect() waits for the gate
    a, b = addr(own), addr(host)
    while time.monotonic() < stop:
        ctypes.memmove(buf, b, 110); ctypes.memmove(buf, a, 110)
def drain():  # accept what arrives, so the backlog never fills
    srv.settimeout(0.2)
    while time.monotonic() < stop + 1:
        try:
            srv.accept()[0].close()
        except OSError:
            pass
victim = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
def swap():  # put other sockets under the victim's number
    while time.monotonic() < stop:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
        try:
            os.dup2(s.fileno(), victim.fileno())
        except OSError:
            pass
        s.close()
threads = [threading.Thread(target=f) for f in (flip, swap, drain)]
for t in threads: t.start()
libc = ctypes.CDLL(None, use_errno=True)
while time.monotonic() < stop:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
    for fd in (s.fileno(), victim.fileno()):
        if libc.connect(fd, buf, 110) == 0:
            out["connected"] += 1
        else:
            e = errno.errorcode.get(ctypes.get_errno(), "?")
            out["answers"][e] = out["answers"].get(e, 0) + 1
    s.close()
for t in threads: t.join()
print(json.dumps(out))
"""


def test_adv_address_and_descriptor_races_never_reach_the_host(runner: Runner, ws: Path,
                                                               host: HostListener) -> None:
    """A second thread rewrites the sockaddr buffer and a third dup2()s other sockets over the
    victim's descriptor while connect() waits: the gate copies the address once and connects
    the socket it took, so the host listener never sees a connection."""
    out = run_json(runner, ws, RACE, str(host.path))
    assert out["connected"] > 0, out  # the own listener was reached: the race really ran
    # a torn copy (half one path, half the other) names no file, or not a socket
    assert set(out["answers"]) <= {"EACCES", "EISCONN", "EBADF", "ENOTSOCK", "EINVAL",
                                   "EAGAIN", "ENOENT", "ECONNREFUSED"}, out
    assert not host.reached()


SERVE_WAIT = r"""
import os, socket, sys, time
srv = socket.socket(socket.AF_UNIX); srv.bind(sys.argv[1]); srv.listen(4)
print("listening", flush=True)
srv.settimeout(20)
try:
    conn, _ = srv.accept(); print("REACHED", flush=True)
except OSError:
    print("nobody came", flush=True)
"""


def test_adv_another_sandbox_listener_is_out_of_reach(runner: Runner, ws: Path,
                                                      shared_dir: Path) -> None:
    """Two sandboxes share /tmp: the second cannot connect to the first one's listener."""
    path = f"/tmp/sandboxtui-gate-{os.urandom(4).hex()}.sock"
    first = _launch(runner, ws, SERVE_WAIT, path)
    try:
        assert first.stdout is not None
        assert first.stdout.readline().strip() == "listening"
        out = run_json(runner, ws, "import errno, json, socket, sys\n"
                       "s = socket.socket(socket.AF_UNIX)\ntry:\n"
                       "    s.connect(sys.argv[1]); r = 'CONNECTED'\n"
                       "except OSError as e:\n    r = errno.errorcode[e.errno]\n"
                       "print(json.dumps({'r': r}))", path)
        assert out == {"r": "EACCES"}
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.communicate(timeout=30)
        if os.path.exists(path):
            os.unlink(path)


def test_adv_host_abstract_socket_is_another_namespace(runner: Runner, ws: Path) -> None:
    name = f"\0sandboxtui-host-{os.urandom(4).hex()}"
    listener = HostListener(name.encode())
    try:
        out = run_json(runner, ws, "import errno, json, socket, sys\n"
                       "s = socket.socket(socket.AF_UNIX)\ntry:\n"
                       "    s.connect('\\0' + sys.argv[1][1:]); r = 'CONNECTED'\n"
                       "except OSError as e:\n    r = errno.errorcode[e.errno]\n"
                       "print(json.dumps({'r': r}))", "@" + name[1:])
        assert out == {"r": "ECONNREFUSED"}
        time.sleep(0.1)
        assert not listener.reached()
    finally:
        listener.close()


INHERITED = r"""
import errno, json, os, socket, sys
out = {}
inherited = socket.socket(fileno=os.dup(0))  # a connection the host's listener accepted
try:
    inherited.listen(1); out["listen"] = "ok"
except OSError as e:
    out["listen"] = errno.errorcode[e.errno]
for name, path in (("path", sys.argv[1]), ("abstract", "\0" + sys.argv[2])):
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(path); s.sendall(b"escaped"); out[name] = "CONNECTED"
    except OSError as e:
        out[name] = errno.errorcode[e.errno]
try:
    inherited.connect(sys.argv[1]); out["reconnect"] = "CONNECTED"
except OSError as e:
    out["reconnect"] = errno.errorcode[e.errno]
print(json.dumps(out))
"""


def test_adv_socket_inherited_from_the_host_records_nothing(runner: Runner, ws: Path,
                                                            host: HostListener) -> None:
    """Started by inetd or socat, the launcher's stdin is a connection a host listener
    accepted, which carries that listener's path: listen() on it must not record the host's
    file, and nothing may reach the host listener or its abstract twin."""
    abstract = HostListener(f"\0sandboxtui-inh-{os.urandom(4).hex()}".encode())
    client = socket.socket(socket.AF_UNIX)
    client.connect(host.path)
    accepted, _ = host.sock.accept()
    accepted.setblocking(True)
    try:
        argv = [*runner.prefix(), "run", "--config", str(runner.config), "--cwd", str(ws),
                *runner.bwrap_options(), "-c", NO_PRECHECK, "--", "/usr/bin/python3", "-c",
                INHERITED, str(host.path), str(abstract.path)[1:]]
        done = subprocess.run(argv, stdin=accepted, capture_output=True, text=True, timeout=90)
        assert done.returncode == 0, done.stderr
        out = json.loads(done.stdout.strip().splitlines()[-1])
        assert out["listen"] != "ok" and "CONNECTED" not in out.values(), out
        assert out["path"] == "EACCES", out
        assert not host.reached() and not abstract.reached()
        client.setblocking(False)
        with pytest.raises(BlockingIOError):
            client.recv(16)  # the command wrote nothing through a second connection either
    finally:
        client.close()
        accepted.close()
        abstract.close()


MANY = r"""
import errno, json, os, socket, sys
out, servers = {}, []
for i in range(int(sys.argv[1])):
    s = socket.socket(socket.AF_UNIX); s.bind(f"l{i}.sock"); s.listen(1); servers.append(s)
for i in (0, int(sys.argv[2]) - 1, int(sys.argv[2]), int(sys.argv[1]) - 1):
    c = socket.socket(socket.AF_UNIX)
    try:
        c.connect(f"l{i}.sock"); out[i] = "ok"
    except OSError as e:
        out[i] = errno.errorcode[e.errno]
    c.close()
print(json.dumps(out))
"""


def test_adv_listener_records_are_bounded(runner: Runner, ws: Path) -> None:
    """Each recorded listener holds an fd in the launcher: past the bound, listen() still
    works but nothing can connect to the extra listeners, and the launcher keeps serving."""
    from sandboxtui.core.unix_gate import MAX_LISTENERS

    count = MAX_LISTENERS + 20
    out = run_json(runner, ws, MANY, str(count), str(MAX_LISTENERS))
    assert out == {"0": "ok", str(MAX_LISTENERS - 1): "ok", str(MAX_LISTENERS): "EACCES",
                   str(count - 1): "EACCES"}, out


def test_adv_gate_tells_no_more_than_stat_does(runner: Runner, ws: Path,
                                               shared_dir: Path) -> None:
    """A directory the command may not search: whether a file exists there stays unknown
    (the gate resolves with the caller's permissions, not a root launcher's override)."""
    hidden = Path(tempfile.mkdtemp(dir=shared_dir))
    (hidden / "there").write_text("x")
    os.chown(hidden, 1, 1)  # daemon
    hidden.chmod(0o700)
    script = ("import errno, json, os, socket, sys\nout = {}\n"
              "for name in ('there', 'absent'):\n"
              "    p = os.path.join(sys.argv[1], name)\n"
              "    try:\n        os.stat(p); out['stat-' + name] = 'ok'\n"
              "    except OSError as e:\n        out['stat-' + name] = errno.errorcode[e.errno]\n"
              "    try:\n        socket.socket(socket.AF_UNIX).connect(p)\n"
              "    except OSError as e:\n        out[name] = errno.errorcode[e.errno]\n"
              "print(json.dumps(out))")
    out = run_json(runner, ws, script, str(hidden))
    assert out == {"stat-there": "EACCES", "stat-absent": "EACCES", "there": "EACCES",
                   "absent": "EACCES"}, out
