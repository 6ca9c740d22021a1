"""Escape attempts under workspace-write + no network, against the real sandbox.

One launch per (user x bwrap) runs a batch of probes (a Python script reporting JSON), with a
host pty as its controlling terminal so TIOCSTI has something to inject into. Each probe records
"ok" or the errno name the kernel answered; the assertions below name the expected answer for
every attempt, then check that the host is unchanged.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pty
import secrets
import socket
import subprocess
import sys
import tempfile
import termios
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import CANARY, RUNNERS, Runner, chown_tree, git, make_workspace, python_for

# socket(AF_INET, SOCK_STREAM, 0) through the i386 entry point (`int 0x80`, syscall 359) and
# with an x32 syscall number, from mmap'd x86-64 machine code and libc's syscall().
FOREIGN_ARCH = r'''
import ctypes, mmap
def foreign_arch():
    # push rbx; mov eax, 359; mov ebx, 2; mov ecx, 1; xor edx, edx; int 0x80; pop rbx; ret
    code = bytes.fromhex("53" "b867010000" "bb02000000" "b901000000" "31d2" "cd80" "5b" "c3")
    prot = mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC
    buf = mmap.mmap(-1, mmap.PAGESIZE, prot=prot)
    buf.write(code)
    i386 = ctypes.CFUNCTYPE(ctypes.c_int)(ctypes.addressof(ctypes.c_char.from_buffer(buf)))()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    x32 = libc.syscall(ctypes.c_long(0x40000000 | 41), 2, 1, 0)
    return "i386=%d x32=%d/%d" % (i386, x32, ctypes.get_errno() if x32 < 0 else 0)
'''

# The probe helpers every enforcement probe script starts with: each probe records "ok" (or
# its value) or the errno name the kernel answered.
PROBE_HELPERS = r'''
import errno, json, os
out = {}

def probe(name, fn):
    try:
        value = fn()
        out[name] = "ok" if value is None else value
    except OSError as e:
        out[name] = errno.errorcode.get(e.errno, str(e.errno))

def read(path):
    with open(path) as fh:
        return "read:" + fh.read()

def append(path):
    with open(path, "a") as fh:
        fh.write("pwned\n")
'''

PROBE = FOREIGN_ARCH + PROBE_HELPERS + r'''
import ctypes, socket, subprocess, sys, time
cfg = json.loads(sys.argv[1])
ws, outside = cfg["ws"], cfg["outside"]
victim = os.path.join(outside, "victim.txt")
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long

def syscall(nr, *args):
    if libc.syscall(nr, *args) == -1:
        raise OSError(ctypes.get_errno(), "syscall")

# Before anything opens a file: which descriptors did we inherit?
fds = []
for fd in range(3, 256):
    try:
        os.fstat(fd)
        fds.append(fd)
    except OSError:
        pass
out["inherited_fds"] = fds

# Writes outside the writable roots.
probe("write_abs", lambda: append(victim))
probe("create_abs", lambda: open(os.path.join(outside, "new.txt"), "x").close())
probe("write_proc_root", lambda: append("/proc/self/root" + victim))
probe("symlink_create", lambda: os.symlink(victim, "sym-out"))
probe("write_via_symlink", lambda: append("sym-out"))
probe("hardlink_create", lambda: os.link(victim, "hard-out"))
probe("write_etc", lambda: open("/etc/sandboxtui-probe", "x").close())

# Protected paths.
probe("git_config_write", lambda: append(".git/config"))
probe("git_hook_write", lambda: append(".git/hooks/pre-commit"))
probe("git_hook_create", lambda: open(".git/hooks/post-checkout", "x").close())
probe("git_hook_chmod", lambda: os.chmod(".git/hooks/pre-commit", 0o777))
probe("git_config_rename", lambda: os.rename(".git/config", ".git/config.bak"))
probe("git_head_unlink", lambda: os.unlink(".git/HEAD"))
probe("git_dir_rename", lambda: os.rename(".git", "git-moved"))
probe("git_dir_rmdir", lambda: os.rmdir(".git"))
probe("codex_write", lambda: append(".codex/config.toml"))
probe("codex_create", lambda: open(".codex/new.toml", "x").close())
probe("codex_rename", lambda: os.rename(".codex/config.toml", ".codex/x.toml"))
probe("codex_unlink", lambda: os.unlink(".codex/config.toml"))
probe("codex_replace", lambda: os.rename("README.md", ".codex/config.toml"))
probe("codex_dir_rename", lambda: os.rename(".codex", "codex-moved"))
probe("agents_mkdir", lambda: os.mkdir(".agents"))
probe("agents_create", lambda: open(".agents/AGENTS.md", "x").close())
probe("agents_list", lambda: "ok" if os.listdir(".agents") == [] else "not empty")
probe("agents_rmdir", lambda: os.rmdir(".agents"))
probe("agents_rename", lambda: os.rename(".agents", "agents-moved"))

# The secret.
probe("env_direct", lambda: read(".env"))
probe("env_symlink", lambda: read("link-to-env"))
probe("env_new_symlink", lambda: (os.symlink(".env", "new-link"), read("new-link"))[1])
probe("env_proc_cwd", lambda: read("/proc/self/cwd/.env"))
probe("env_proc_root", lambda: read("/proc/self/root" + ws + "/.env"))
probe("env_nested", lambda: read("sub/.env.local"))
probe("env_hardlink", lambda: os.link(".env", "env-copy"))
probe("env_chmod", lambda: os.chmod(".env", 0o644))
probe("env_unlink", lambda: os.unlink(".env"))
probe("env_size", lambda: "size:%d" % os.stat(".env").st_size)

# Network.
# The host's loopback: a TCP listener and a UDP receiver (nothing may reach either).
def tcp_to_host():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(3)
    s.connect(("127.0.0.1", cfg["host_tcp"]))
    return "connected:%r" % s.recv(8)
probe("tcp4", tcp_to_host)
probe("udp4", lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(
    b"escaped", ("127.0.0.1", cfg["host_udp"])) and None)
probe("tcp6", lambda: socket.socket(socket.AF_INET6, socket.SOCK_STREAM).close())
probe("udp6", lambda: socket.socket(socket.AF_INET6, socket.SOCK_DGRAM).close())
ICMP = socket.IPPROTO_ICMP
probe("raw_icmp", lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, ICMP).close())
probe("ping_dgram", lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM, ICMP).close())
probe("netlink", lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0).close())
probe("packet", lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0).close())
probe("unix_create", lambda: socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).close())
probe("unix_connect_host", lambda: socket.socket(socket.AF_UNIX).connect(cfg["host_socket"]))
probe("unix_connect_abstract",
      lambda: socket.socket(socket.AF_UNIX).connect("\0" + cfg["abstract"]))
probe("io_uring_setup", lambda: syscall(425, 8, ctypes.create_string_buffer(120)))
# A Unix datagram socket sends to any host socket path it can see (read-only mounts and
# Landlock do not stop sendmsg with an address); AF_UNIX turns SOCK_RAW into SOCK_DGRAM.
def send_to_host(make, kind):
    make(socket.AF_UNIX, kind).sendmsg([b"escaped"], [], 0, cfg["host_dgram"])
probe("unix_dgram", lambda: send_to_host(socket.socket, socket.SOCK_DGRAM))
probe("unix_raw", lambda: send_to_host(socket.socket, socket.SOCK_RAW))
probe("unix_dgram_pair", lambda: send_to_host(lambda *a: socket.socketpair(*a)[0],
                                              socket.SOCK_DGRAM))
def pair():
    a, b = socket.socketpair()
    a.sendmsg([b"ping"])
    data = b.recvmsg(16)[0]
    os.write(a.fileno(), b"!")
    data += os.read(b.fileno(), 16)
    return "ok" if data == b"ping!" else repr(data)
probe("socketpair", pair)
if os.uname().machine == "x86_64":
    probe("foreign_arch", foreign_arch)

# Process state.
status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines())
out["no_new_privs"] = status["NoNewPrivs"].strip()
out["caps"] = {k: status[k].strip() for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")}
out["seccomp"] = status["Seccomp"].strip()
probe("ptrace_traceme", lambda: syscall(101, 0, 0, 0, 0))
probe("ptrace_attach_init", lambda: syscall(101, 16, 1, 0, 0))
probe("process_vm_readv", lambda: syscall(310, 1, 0, 0, 0, 0, 0))
out["pids"] = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
out["pid1"] = open("/proc/1/cmdline", "rb").read().split(b"\0")[0].decode()
import fcntl, termios
probe("tiocsti", lambda: fcntl.ioctl(0, termios.TIOCSTI, b"#") and None)

# The allowed side.
probe("ws_write", lambda: open("written-inside.txt", "w").write("inside\n") and None)
probe("tmp_write", lambda: open(cfg["tmp_file"], "w").write("inside\n") and None)
probe("usr_read", lambda: "elf" if open("/usr/bin/env", "rb").read(4) == b"\x7fELF" else "?")
for name, argv in (("git_status", ["git", "status", "--porcelain"]),
                   ("git_diff", ["git", "diff", "--stat"])):
    done = subprocess.run(argv, capture_output=True, text=True)
    out[name] = "rc:%d" % done.returncode

# Leave processes behind: detached sleepers and a (bounded) fork bomb.
marker = cfg["marker"]
for _ in range(3):
    subprocess.Popen(["sleep", marker], start_new_session=True)
bomb = "import os, sys, time\nfor _ in range(5):\n    os.fork()\ntime.sleep(1000)\n"
subprocess.Popen([sys.executable, "-c", bomb, marker], start_new_session=True)
time.sleep(0.2)
print(json.dumps(out))
'''

X86_64 = pytest.mark.skipif(os.uname().machine != "x86_64", reason="x86-64 machine code")


@X86_64
def test_the_foreign_arch_probe_gets_a_socket_unsandboxed() -> None:
    """Without the filter the i386 entry point hands out a socket: the probe can tell."""
    done = subprocess.run([sys.executable, "-c", FOREIGN_ARCH + "print(foreign_arch())"],
                          capture_output=True, text=True, check=True)
    assert done.stdout.startswith("i386=") and not done.stdout.startswith("i386=-")


def _host_processes_with(marker: str) -> list[str]:
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmdline:
            found.append(f"{pid}: {cmdline!r}")
    return found


class Escape:
    """One probe launch and everything the host looked like around it."""

    def __init__(self, runner: Runner, shared_dir: Path) -> None:
        base = Path(tempfile.mkdtemp(dir=shared_dir))
        base.chmod(0o755)
        self.ws = make_workspace(base)
        # Outside every writable root (/var/tmp is not one), owned by the runner: only the
        # sandbox stands between the command and this file.
        self.outside = Path(tempfile.mkdtemp(dir="/var/tmp"))
        self.outside.chmod(0o755)
        self.victim = self.outside / "victim.txt"
        self.victim.write_text("original\n")
        self.probe = base / "probe.py"
        self.probe.write_text(PROBE)
        chown_tree(self.ws, runner.user)
        chown_tree(self.outside, runner.user)
        self.tmp_file = Path("/tmp") / f"sandboxtui-probe-{secrets.token_hex(4)}"
        self.marker = f"1000.{secrets.randbelow(10**9):09d}"
        self.abstract = f"sandboxtui-test-{secrets.token_hex(4)}"
        sock_dir = Path(tempfile.mkdtemp(dir=shared_dir))
        sock_dir.chmod(0o755)
        self.host_socket = sock_dir / "host.sock"
        self.listener = socket.socket(socket.AF_UNIX)
        self.listener.bind(str(self.host_socket))
        self.host_socket.chmod(0o777)
        self.listener.listen()
        self.abstract_listener = socket.socket(socket.AF_UNIX)
        self.abstract_listener.bind("\0" + self.abstract)
        self.abstract_listener.listen()
        self.host_dgram = sock_dir / "dg.sock"
        self.dgram_listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.dgram_listener.bind(str(self.host_dgram))
        self.host_dgram.chmod(0o777)
        self.dgram_listener.setblocking(False)
        self.tcp_listener = socket.socket()
        self.tcp_listener.bind(("127.0.0.1", 0))
        self.tcp_listener.listen()
        self.udp_receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp_receiver.bind(("127.0.0.1", 0))
        self.udp_receiver.setblocking(False)
        self.before = self.snapshot()

    def launch(self, runner: Runner) -> None:
        cfg = {"ws": str(self.ws), "outside": str(self.outside), "host_socket":
               str(self.host_socket), "abstract": self.abstract,
               "host_dgram": str(self.host_dgram), "tmp_file": str(self.tmp_file),
               "host_tcp": self.tcp_listener.getsockname()[1],
               "host_udp": self.udp_receiver.getsockname()[1],
               "marker": self.marker}
        self.done = self._run_on_pty(
            runner, [python_for(runner.user), str(self.probe), json.dumps(cfg)])
        self.finished = time.monotonic()
        assert self.done.returncode == 0, self.done.stderr
        self.result: dict[str, Any] = json.loads(self.done.stdout.splitlines()[-1])

    def _run_on_pty(self, runner: Runner, command: list[str]) -> subprocess.CompletedProcess[str]:
        """Run with a host pty as stdin and controlling terminal (the TIOCSTI target)."""
        master, slave = pty.openpty()
        try:
            return runner.run(self.ws, command, stdin=slave, start_new_session=True,
                              preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
        finally:
            os.close(slave)
            os.set_blocking(master, False)
            try:
                self.typed = os.read(master, 1024)
            except OSError:
                self.typed = b""
            os.close(master)

    def datagrams(self) -> list[bytes]:
        """What reached the host's Unix and UDP datagram sockets (nothing may)."""
        got = []
        for sock in (self.dgram_listener, self.udp_receiver):
            with contextlib.suppress(BlockingIOError):
                while True:
                    got.append(sock.recv(1024))
        return got

    def tcp_connections(self) -> int:
        """How many connections reached the host's TCP listener (none may)."""
        self.tcp_listener.setblocking(False)
        count = 0
        with contextlib.suppress(BlockingIOError):
            while True:
                self.tcp_listener.accept()[0].close()
                count += 1
        return count

    @classmethod
    @contextlib.contextmanager
    def launched(cls, runner: Runner, shared_dir: Path) -> Iterator[Escape]:
        """One probe launch by `runner`, closed (listeners, scratch files) afterwards."""
        e = cls(runner, shared_dir)
        try:
            e.launch(runner)
            yield e
        finally:
            e.close()

    def leftovers(self, within: float = 5.0) -> list[str]:
        """Host processes still carrying this launch's marker, after waiting up to `within`."""
        deadline = self.finished + within
        while _host_processes_with(self.marker) and time.monotonic() < deadline:
            time.sleep(0.05)
        return _host_processes_with(self.marker)

    def snapshot(self) -> dict[str, object]:
        ws = self.ws
        return {
            "victim": self.victim.read_bytes(),
            "outside": sorted(os.listdir(self.outside)),
            "env": (ws / ".env").read_bytes(),
            "git_config": (ws / ".git" / "config").read_bytes(),
            "hooks": sorted(os.listdir(ws / ".git" / "hooks")),
            "hook": (ws / ".git" / "hooks" / "pre-commit").read_bytes(),
            "hook_mode": (ws / ".git" / "hooks" / "pre-commit").stat().st_mode,
            "codex": sorted(os.listdir(ws / ".codex")),
            "codex_config": (ws / ".codex" / "config.toml").read_bytes(),
            "etc_probe": os.path.lexists("/etc/sandboxtui-probe"),
            "agents": os.path.lexists(ws / ".agents"),
        }

    def close(self) -> None:
        self.listener.close()
        self.abstract_listener.close()
        self.dgram_listener.close()
        self.tcp_listener.close()
        self.udp_receiver.close()
        self.tmp_file.unlink(missing_ok=True)
        subprocess.run(["rm", "-rf", str(self.outside)], check=False)


@pytest.fixture(scope="module", params=RUNNERS, ids=lambda p: "-".join(p))
def escape(request: pytest.FixtureRequest, shared_dir: Path) -> Any:
    """One probe launch per (user, bwrap), shared by the assertions below."""
    user, bwrap = request.param
    with Escape.launched(Runner(user, bwrap, shared_dir / "config.toml"), shared_dir) as e:
        yield e


def test_writes_outside_the_roots_are_refused_and_the_host_is_unchanged(escape: Escape) -> None:
    r = escape.result
    assert r["write_abs"] == "EROFS"
    assert r["create_abs"] == "EROFS"
    assert r["write_proc_root"] == "EROFS"
    assert r["symlink_create"] == "ok"  # a link in the workspace is allowed...
    assert r["write_via_symlink"] == "EROFS"  # ...writing through it is not
    assert r["hardlink_create"] == "EXDEV"
    assert r["write_etc"] == "EROFS"
    after = escape.snapshot()
    assert after["victim"] == b"original\n"
    assert after["outside"] == ["victim.txt"]
    assert after["etc_probe"] is False


def test_protected_paths_cannot_be_written_renamed_or_removed(escape: Escape) -> None:
    r = escape.result
    for name in ("git_config_write", "git_hook_write", "git_hook_create", "git_hook_chmod",
                 "git_config_rename", "git_head_unlink", "codex_write", "codex_create",
                 "codex_rename", "codex_unlink"):
        assert r[name] == "EROFS", name
    # Mount points cannot be renamed or removed; a file cannot be moved across them.
    assert r["git_dir_rename"] == "EBUSY"
    assert r["git_dir_rmdir"] == "EBUSY"
    assert r["codex_dir_rename"] == "EBUSY"
    assert r["codex_replace"] == "EXDEV"
    # The missing .agents is occupied by an empty read-only directory: nothing can be
    # created in it or in its place, and it cannot be removed or moved away.
    assert r["agents_mkdir"] == "EEXIST"
    assert r["agents_create"] in ("EACCES", "EROFS")
    assert r["agents_list"] == "ok"
    assert r["agents_rmdir"] == "EBUSY"
    assert r["agents_rename"] == "EBUSY"
    before, after = escape.before, escape.snapshot()
    for key in ("git_config", "hooks", "hook", "hook_mode", "codex", "codex_config"):
        assert after[key] == before[key], key
    assert after["agents"] is False  # the placeholder bwrap created is gone again


def test_env_content_is_never_readable(escape: Escape) -> None:
    r = escape.result
    for name in ("env_direct", "env_symlink", "env_new_symlink", "env_proc_cwd",
                 "env_proc_root", "env_nested"):
        assert r[name] == "EACCES", name
    assert r["env_hardlink"] == "EXDEV"
    assert r["env_chmod"] == "EROFS"
    assert r["env_unlink"] == "EBUSY"
    assert r["env_size"] == "size:0"
    assert CANARY not in escape.done.stdout + escape.done.stderr
    assert escape.snapshot()["env"] == escape.before["env"]


def test_no_way_out_but_the_own_loopback_and_socketpairs(escape: Escape) -> None:
    """Network off: the sandbox's own network namespace holds only its loopback, so TCP and
    UDP sockets exist but the host's listener refuses and its receiver gets nothing; a new Unix
    stream socket exists but the gate refuses the host's socket path, the host's abstract name
    is in another namespace; Unix datagram sockets and every other family are refused."""
    r = escape.result
    assert r["tcp4"] == "ECONNREFUSED"
    assert r["udp4"] == "ok"  # sent on the sandbox's own loopback: it never arrives
    assert r["tcp6"] == r["udp6"] == "ok"
    assert r["unix_create"] == "ok"
    assert r["unix_connect_host"] == "EACCES"
    assert r["unix_connect_abstract"] == "ECONNREFUSED"
    for name in ("netlink", "packet", "io_uring_setup", "unix_dgram", "unix_raw",
                 "unix_dgram_pair"):
        assert r[name] == "EPERM", name
    assert r["raw_icmp"] == "EPERM"  # no CAP_NET_RAW
    assert r["ping_dgram"] in ("EACCES", "ok")  # the namespace's own ping_group_range
    assert escape.datagrams() == []
    assert escape.tcp_connections() == 0
    assert r["socketpair"] == "ok"


@X86_64
def test_foreign_architecture_syscalls_are_refused(escape: Escape) -> None:
    # i386 `int 0x80` and x32 numbers hit the foreign-architecture action: -EPERM.
    assert escape.result["foreign_arch"] == "i386=-1 x32=-1/1"


def test_process_is_confined(escape: Escape) -> None:
    r = escape.result
    assert r["no_new_privs"] == "1"
    assert set(r["caps"].values()) == {"0000000000000000"}
    assert r["seccomp"] == "2"
    assert r["ptrace_traceme"] == "EPERM"
    assert r["ptrace_attach_init"] == "EPERM"
    assert r["process_vm_readv"] == "EPERM"
    assert r["inherited_fds"] == []
    assert r["pid1"].endswith("bwrap")
    # The sandbox's own PID namespace: bwrap's init, the probe, and the probe's children.
    assert r["pids"][:2] == [1, 2] and len(r["pids"]) < 10, r["pids"]
    # No terminal injection: the command runs in a new session without a controlling tty.
    assert r["tiocsti"] == "EPERM"
    assert b"#" not in escape.typed


def test_nothing_is_left_behind(escape: Escape) -> None:
    assert escape.leftovers() == []


def test_allowed_side_works(escape: Escape) -> None:
    r = escape.result
    assert r["ws_write"] == "ok"
    assert (escape.ws / "written-inside.txt").read_text() == "inside\n"
    assert r["tmp_write"] == "ok"
    assert escape.tmp_file.read_text() == "inside\n"
    assert r["usr_read"] == "elf"
    assert r["git_status"] == "rc:0"
    assert r["git_diff"] == "rc:0"


def test_missing_git_and_codex_cannot_be_created(runner: Runner, shared_dir: Path) -> None:
    base = Path(tempfile.mkdtemp(dir=shared_dir))
    base.chmod(0o755)
    ws = base / "bare"
    ws.mkdir()
    (ws / "file.txt").write_text("x\n")
    chown_tree(ws, runner.user)
    script = ("git init -q; echo git_init=$?; mkdir .codex; echo mkdir_codex=$?; "
              "mkdir .git/hooks; echo mkdir_git_hooks=$?; echo ok > new.txt; echo write=$?")
    done = runner.run(ws, ["sh", "-c", script])
    assert done.returncode == 0, done.stderr
    assert "git_init=0" not in done.stdout
    assert "mkdir_codex=1" in done.stdout
    assert "mkdir_git_hooks=1" in done.stdout
    assert "write=0" in done.stdout
    assert sorted(os.listdir(ws)) == ["file.txt", "new.txt"]  # placeholders removed


def test_git_works_in_a_repo_owned_by_the_runner(runner: Runner, workspace: Path) -> None:
    ws = workspace
    git(ws, "add", "README.md")
    chown_tree(ws, runner.user)
    done = runner.run(ws, ["git", "diff", "--cached", "--stat"])
    assert done.returncode == 0, done.stderr
    assert "README.md" in done.stdout
