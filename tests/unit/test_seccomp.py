"""The seccomp network filter: one description, shown and compiled (the kernel's answers:
tests/enforcement/test_seccomp_kernel.py)."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys

import pytest

from sandboxtui.core.policy import NetworkMode, Policy
from sandboxtui.core.seccomp import (
    HOST_FILTER,
    HOST_SAFETY,
    LEGACY_HOST_FILTER,
    LEGACY_METADATA,
    LEGACY_NETWORK_FILTER,
    NETWORK_FILTER,
    NETWORK_FILTER_NO_GATE,
    NEWER_SYSCALLS,
    PROXY_FILTER,
    Action,
    SeccompFilter,
    compile_bpf,
    filter_for,
    pseudo_filter,
    rule_table,
)

SPEC_DENIED = {"connect", "bind", "listen", "accept", "accept4", "io_uring_setup",
               "io_uring_enter", "io_uring_register", "ptrace", "process_vm_readv",
               "process_vm_writev"}
ON_HELD_SOCKETS = {"shutdown", "getsockopt", "setsockopt", "getsockname", "getpeername",
                   "recvfrom", "recvmsg", "recvmmsg"}


def test_legacy_rule_table_refuses_every_address_but_not_calls_on_held_sockets() -> None:
    """No network namespace: nothing may be connected or bound; send() and socket options on
    a socket the process holds stay allowed (asyncio's wakeup, libuv's shutdown)."""
    rows = rule_table(LEGACY_NETWORK_FILTER)
    by_name = {r["syscall"]: r for r in rows if r["syscall"] != "*" and r["action"] == "errno"}
    for name in SPEC_DENIED:
        assert by_name[name] == {"syscall": name, "condition": "always", "action": "errno",
                                 "errno": "EPERM", "reason": by_name[name]["reason"]}
    assert by_name["sendto"]["condition"] == "dest_addr != NULL"
    for name in ("socket", "socketpair"):
        assert [(r["condition"], r["errno"]) for r in rows if r["syscall"] == name] == [
            ("domain != AF_UNIX", "EPERM"), ("type in (SOCK_DGRAM, SOCK_RAW)", "EPERM")]
    allowed = {r["syscall"] for r in rows if r["action"] == Action.ALLOW.value
               and r["syscall"] != "*"}
    assert ON_HELD_SOCKETS | {"sendto", "sendmsg", "sendmmsg"} <= allowed
    assert [r["condition"] for r in rows if r["syscall"] == "*"] == [
        "foreign architecture (i386, x32)", "anything else"]


def test_namespace_rule_table_allows_loopback_and_gates_unix_sockets() -> None:
    """Own network namespace: TCP/UDP reach only the sandbox's loopback, so connect, bind
    and sendto are exceptions with reasons; AF_UNIX stream sockets may be created, and the
    gate answers connect() and listen(). Without the gate no AF_UNIX socket may be created."""
    rows = rule_table(NETWORK_FILTER)
    denied = {r["syscall"] for r in rows if r["action"] == "errno"}
    assert not denied & ({"connect", "bind", "listen", "accept", "sendto"} | ON_HELD_SOCKETS)
    for flt, exceptions in ((NETWORK_FILTER, {"bind", "sendto"}),
                            (NETWORK_FILTER_NO_GATE, {"connect", "bind", "sendto"})):
        allowed = {r["syscall"]: r["reason"] for r in rule_table(flt)
                   if r["action"] == Action.ALLOW.value and r["syscall"] != "*"}
        assert set(allowed) == exceptions | ON_HELD_SOCKETS, flt.name
        assert all(reason.startswith("exception: ") for reason in allowed.values())
    gated = [(r["syscall"], r["errno"]) for r in rows if r["action"] == Action.GATE.value]
    assert gated == [("connect", None), ("listen", None)]

    def refused(flt: SeccompFilter, kind: int) -> set[int]:
        return {d for d in range(64) if any(r.matches((d, kind)) for r in flt.rules
                                            if r.syscall == "socket")}
    stream, dgram, raw, seqpacket = 1, 2, 3, 5
    for kind in (stream, seqpacket, stream | 0o2000000):  # SOCK_CLOEXEC set
        assert set(range(64)) - refused(NETWORK_FILTER, kind) == {1, 2, 10}
    for kind in (dgram, raw, dgram | 0o4000):  # a Unix datagram socket names any destination
        assert set(range(64)) - refused(NETWORK_FILTER, kind) == {2, 10}
    for kind in (stream, dgram):
        assert set(range(64)) - refused(NETWORK_FILTER_NO_GATE, kind) == {2, 10}
    assert not any(r.action is Action.GATE for r in NETWORK_FILTER_NO_GATE.rules)


def test_the_gate_program_notifies_exactly_the_gated_syscalls() -> None:
    """The listener's BPF program is built from the GATE rows: run through the kernel's own
    interpreter it would notify connect and listen, and allow everything else."""
    from sandboxtui.core import unix_gate

    prog = unix_gate.gate_program(NETWORK_FILTER)
    assert prog is not None and unix_gate.gate_program(NETWORK_FILTER_NO_GATE) is None
    arch, numbers = unix_gate._SYSCALLS[os.uname().machine]

    def run(nr: int, call_arch: int) -> int:
        """A tiny interpreter for the four instructions the program uses."""
        data = {0: nr, 4: call_arch}
        pc, acc = 0, 0
        while True:
            code, jt, jf, k = struct.unpack_from("<HBBI", prog, pc * 8)
            if code == 0x20:
                acc = data[k]
            elif code == 0x15:
                pc += jt if acc == k else jf
            elif code == 0x06:
                return k
            pc += 1

    notify, allow = unix_gate.SECCOMP_RET_USER_NOTIF, unix_gate.SECCOMP_RET_ALLOW
    assert run(numbers["connect"], arch) == notify and run(numbers["listen"], arch) == notify
    assert {run(nr, arch) for nr in range(512) if nr not in numbers.values()} == {allow}
    assert run(numbers["connect"], 0x40000003) == allow  # i386: the command's filter refuses


@pytest.mark.parametrize("flt", [NETWORK_FILTER, LEGACY_NETWORK_FILTER], ids=lambda f: f.name)
def test_the_compiled_program_comes_from_the_same_rules(flt: SeccompFilter) -> None:
    bpf = compile_bpf(flt)
    assert len(bpf) % 8 == 0 and len(bpf) > 8 * len(HOST_SAFETY)
    assert compile_bpf(flt) is bpf  # compiled once per process
    pfc = pseudo_filter(flt)
    denied = {r.syscall for r in flt.rules if r.action is Action.ERRNO}
    for name in denied:
        known = f'"{name}"' if name not in NEWER_SYSCALLS else f'"UNKNOWN" ({NEWER_SYSCALLS[name]})'
        assert f"filter for syscall {known}" in pfc
    for name in ON_HELD_SOCKETS:
        assert f'"{name}"' not in pfc  # allowed by the default action
    assert "# invalid architecture action\naction ERRNO(1);" in pfc


def test_every_network_mode_has_a_filter_with_the_host_safety_rules() -> None:
    for legacy in (True, False):
        assert filter_for(Policy(network=NetworkMode.ON), legacy=legacy, unix_gate=True) \
            is (LEGACY_HOST_FILTER if legacy else HOST_FILTER)
        assert filter_for(Policy(network=NetworkMode.PROXY), legacy=legacy, unix_gate=True) \
            is PROXY_FILTER
    off = Policy(network=NetworkMode.OFF)
    assert filter_for(off, legacy=False, unix_gate=True) is NETWORK_FILTER
    assert filter_for(off, legacy=False, unix_gate=False) is NETWORK_FILTER_NO_GATE
    for gate in (True, False):
        assert filter_for(off, legacy=True, unix_gate=gate) is LEGACY_NETWORK_FILTER
    for flt in (NETWORK_FILTER, NETWORK_FILTER_NO_GATE, LEGACY_NETWORK_FILTER, PROXY_FILTER,
                HOST_FILTER, LEGACY_HOST_FILTER):
        rules = [r for r in flt.rules if r in HOST_SAFETY]
        assert tuple(rules) == HOST_SAFETY, flt.name
    rows = rule_table(HOST_FILTER)
    assert not {r["syscall"] for r in rows} & {"socket", "connect", "bind", "sendto"}
    setid = {(r["syscall"], r["condition"]) for r in rows if "set-id" in r["reason"]}
    for name in ("chmod", "fchmod", "fchmodat", "fchmodat2", "open", "openat", "creat",
                 "mknod", "mknodat"):
        assert {(name, "mode has S_ISUID (04000)"), (name, "mode has S_ISGID (02000)")} <= setid
    by_name = {r["syscall"]: r for r in rows}
    assert by_name["openat2"]["errno"] == "ENOSYS" and "struct" in by_name["openat2"]["reason"]
    for name in ("keyctl", "add_key", "request_key"):
        assert (by_name[name]["errno"], by_name[name]["condition"]) == ("EPERM", "always")
        assert "keyring" in by_name[name]["reason"]


def test_legacy_filters_refuse_metadata_changes_and_bubblewraps_do_not() -> None:
    """Landlock has no right for chmod, chown or xattrs: the legacy filters refuse making a
    file group- or world-writable, owner changes and xattrs everywhere; under bubblewrap the
    read-only mounts refuse them outside the roots, so its filters leave them alone."""
    names = {r.syscall for r in LEGACY_METADATA}
    assert {"chmod", "fchmod", "fchmodat", "fchmodat2", "fchown", "fchownat", "fsetxattr",
            "setxattrat", "removexattrat"} <= names
    chmod = [r.condition for r in LEGACY_METADATA if r.syscall == "fchmodat" and r.condition]
    refused = {m for m in range(0o1000) if any(c.matches(m) for c in chmod)}
    assert refused == {m for m in range(0o1000) if m & 0o022}
    for flt in (LEGACY_NETWORK_FILTER, LEGACY_HOST_FILTER):
        assert set(LEGACY_METADATA) <= set(flt.rules), flt.name
        assert f'"UNKNOWN" ({NEWER_SYSCALLS["setxattrat"]})' in pseudo_filter(flt)
    for flt in (NETWORK_FILTER, HOST_FILTER, PROXY_FILTER):
        assert not set(LEGACY_METADATA) & set(flt.rules)


def test_setid_conditions_match_exactly_the_modes_carrying_a_set_id_bit() -> None:
    conds = [r.condition for r in HOST_SAFETY if r.syscall == "fchmodat" and r.condition]
    refused = {m for m in range(0o10000) if any(c.matches(m) for c in conds)}
    assert refused == {m for m in range(0o10000) if m & 0o6000}
    assert any(c.matches(0o4755 | 1 << 40) for c in conds)  # garbage high bits change nothing


def test_seccomp_cli_prints_the_table_and_json() -> None:
    done = subprocess.run([sys.executable, "-m", "sandboxtui", "seccomp", "--json"],
                          capture_output=True, text=True, check=True)
    data = json.loads(done.stdout)
    assert data["rules"] == rule_table(NETWORK_FILTER)
    text = subprocess.run([sys.executable, "-m", "sandboxtui", "seccomp"],
                          capture_output=True, text=True, check=True).stdout
    assert "recvfrom" in text and "exception" in text and "EPERM" in text
