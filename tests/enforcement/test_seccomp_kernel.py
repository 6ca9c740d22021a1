"""The seccomp filters as the kernel applies them: the network switch in a real launch, and
Unix datagram sockets refused by each compiled filter (the rules themselves: tests/unit)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sandboxtui.core.config import resolve
from sandboxtui.core.launch import prepare, start
from sandboxtui.core.plan import build_plan
from sandboxtui.core.seccomp import (
    LEGACY_NETWORK_FILTER,
    NETWORK_FILTER,
    NETWORK_FILTER_NO_GATE,
    PROXY_FILTER,
    SeccompFilter,
    compile_bpf,
)

NET_PROBE = """
import socket
try:
    socket.socket(socket.AF_NETLINK, socket.SOCK_RAW).close()
    print("netlink ok")
except OSError as e:
    print("netlink", e.errno)
"""


@pytest.mark.parametrize(("network", "expected"), [("false", "netlink 1"),
                                                   ("true", "netlink ok")])
def test_network_access_switches_the_filter(tmp_path: Path, network: str,
                                            expected: str) -> None:
    policy = resolve(overrides=[f"sandbox_workspace_write.network_access={network}"], env={})
    spec = prepare(build_plan(policy, str(tmp_path)), [sys.executable, "-c", NET_PROBE])
    running = start(spec, capture=True)
    out = b"".join(e.data for e in running.events() if e.stream == "stdout").decode()
    assert running.wait().exit_code == 0
    assert out.strip() == expected
    assert ("--unshare-net" in spec.argv()) is (network == "false")


UNIX_PROBE = """
import errno, json, socket, sys
from sandboxtui.core.exec_stage import apply_seccomp
apply_seccomp(sys.stdin.buffer.read())
A, S, D, R = socket.AF_UNIX, socket.SOCK_STREAM, socket.SOCK_DGRAM, socket.SOCK_RAW
out = {}
for name, make in (("socket-dgram", lambda: socket.socket(A, D)),
                   ("socket-raw", lambda: socket.socket(A, R)),
                   ("socket-dgram-cloexec", lambda: socket.socket(A, D | socket.SOCK_CLOEXEC)),
                   ("pair-dgram", lambda: socket.socketpair(A, D)),
                   ("pair-raw", lambda: socket.socketpair(A, R)),
                   ("pair-dgram-nonblock", lambda: socket.socketpair(A, D | socket.SOCK_NONBLOCK)),
                   ("pair-stream", lambda: socket.socketpair(A, S))):
    try:
        make()
        out[name] = "ok"
    except OSError as e:
        out[name] = errno.errorcode[e.errno]
print(json.dumps(out))
"""


@pytest.mark.parametrize("flt", [NETWORK_FILTER, NETWORK_FILTER_NO_GATE, LEGACY_NETWORK_FILTER,
                                 PROXY_FILTER], ids=lambda f: f.name)
def test_unix_datagram_sockets_are_refused_by_the_kernel(flt: SeccompFilter) -> None:
    """A Unix datagram socket (SOCK_RAW is one too) reaches any host socket path with
    sendmsg(msg_name): no filter lets one be created; a stream pair still works."""
    done = subprocess.run([sys.executable, "-c", UNIX_PROBE], input=compile_bpf(flt),
                          capture_output=True, check=True)
    out = json.loads(done.stdout)
    # Without the gate, the namespace and proxy filters refuse AF_UNIX sockets altogether.
    assert out == {"socket-dgram": "EPERM", "socket-raw": "EPERM",
                   "socket-dgram-cloexec": "EPERM", "pair-dgram": "EPERM", "pair-raw": "EPERM",
                   "pair-dgram-nonblock": "EPERM", "pair-stream": "ok"}
