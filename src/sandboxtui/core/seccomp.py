"""The seccomp filters every sandboxed launch loads, described once and compiled by libseccomp.

Every filter is a description: `rule_table()` renders it for `sandboxtui seccomp` and the TUI,
`compile_bpf()` turns the very same object into the BPF program that is loaded (by bwrap via
`--seccomp FD`, or by the legacy exec stage), and `pseudo_filter()` into libseccomp's
pseudo-filter text. The display therefore cannot drift from what the kernel enforces.
`HOST_SAFETY` holds the rules every sandboxed launch carries, whatever its network: no set-id
files, no keyring, no io_uring, ptrace or process_vm. `NETWORK_FILTER` adds the network cut,
`PROXY_FILTER` managed proxy mode (loaded by the proxy's inside program, not by bwrap),
and `HOST_FILTER` is the host-safety rules alone, for a policy with the network on.

`pyseccomp` is imported lazily: loading it and compiling cost about as much as a whole sandbox
launch, so the compiled program is cached in the state directory (core/state_cache.py: ours,
no symlink, header, SHA-256 and a seal no sandbox can set checked on every load), keyed by a
hash of the filter's data, this module's source, the pyseccomp binding, the architecture and
the libseccomp version. A file that fails a check is compiled again and rewritten, never
trusted.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import Any

from sandboxtui.core.policy import NetworkMode, Policy

AF_UNIX = 1


class Action(StrEnum):
    ALLOW = "allow"
    ERRNO = "errno"
    GATE = "gate"  # decided call by call by the launcher (unix_gate), not by the BPF program


class CmpOp(StrEnum):
    NE = "!="
    EQ = "=="
    LT = "<"
    GT = ">"
    MASKED_EQ = "&=="  # (arg & mask) == value


@dataclass(frozen=True)
class ArgCondition:
    """A comparison on one syscall argument (64-bit, so high bits set never match EQ)."""

    arg: int
    op: CmpOp
    value: int
    text: str  # human form, e.g. "domain != AF_UNIX"
    mask: int = 0  # for MASKED_EQ

    def matches(self, value: int) -> bool:
        """Does argument value `value` satisfy the comparison (as the compiled filter does)?"""
        if self.op is CmpOp.MASKED_EQ:
            return value & self.mask == self.value
        return {CmpOp.NE: value != self.value, CmpOp.EQ: value == self.value,
                CmpOp.LT: value < self.value, CmpOp.GT: value > self.value}[self.op]


@dataclass(frozen=True)
class SeccompRule:
    syscall: str
    action: Action
    reason: str
    condition: ArgCondition | None = None
    errno: str | None = "EPERM"  # errno name for Action.ERRNO
    also: ArgCondition | None = None  # a second comparison, on another argument (and)

    @property
    def conditions(self) -> tuple[ArgCondition, ...]:
        return tuple(c for c in (self.condition, self.also) if c is not None)

    @property
    def condition_text(self) -> str:
        return " and ".join(c.text for c in self.conditions) or "always"

    def matches(self, args: tuple[int | None, ...]) -> bool:
        """Does a call with these arguments (None: not known) meet every condition?"""
        return all(args[c.arg] is not None and c.matches(args[c.arg])  # type: ignore[arg-type]
                   for c in self.conditions)


@dataclass(frozen=True)
class SeccompFilter:
    """A default-allow filter: `rules` refuse (or, for the record, explicitly keep) syscalls.

    Syscalls of any architecture other than the native one (i386 via `int 0x80`, x32 numbers
    on x86_64) get `foreign_arch_errno`: otherwise a 32-bit `socketcall` would walk around
    every rule below.
    """

    name: str
    rules: tuple[SeccompRule, ...]
    foreign_arch_errno: str = "EPERM"


_NET = "network is off"


def _deny(syscall: str, reason: str, condition: ArgCondition | None = None, *,
          also: ArgCondition | None = None) -> SeccompRule:
    return SeccompRule(syscall, Action.ERRNO, reason, condition, also=also)


_NOT_UNIX = ArgCondition(0, CmpOp.NE, AF_UNIX, "domain != AF_UNIX")
# type & 0xF is the socket type (the rest are SOCK_CLOEXEC/SOCK_NONBLOCK); masking with 0xE
# matches both SOCK_DGRAM (2) and SOCK_RAW (3), which AF_UNIX turns into SOCK_DGRAM.
_DATAGRAM = ArgCondition(1, CmpOp.MASKED_EQ, 2, "type in (SOCK_DGRAM, SOCK_RAW)", mask=0xE)
_DGRAM_REASON = "a Unix datagram socket can send to any host socket path"

_IO_URING = "io_uring opens files (any mode) and uses sockets without the filtered syscalls"
_SETID = (("S_ISUID", stat.S_ISUID), ("S_ISGID", stat.S_ISGID))
_NO_SETID = "any local user could run one left in /tmp as its owner or group"
# The mode argument of each call that sets or creates a file's mode. open's mode only counts
# with O_CREAT/O_TMPFILE; without them libc passes 0, so comparing the mode alone is exact.
_MODE_ARG = (("chmod", 1), ("fchmod", 1), ("fchmodat", 2), ("fchmodat2", 2), ("open", 2),
             ("openat", 3), ("creat", 1), ("mknod", 1), ("mknodat", 2))
_KEYRING = "the session keyring is the host's (refused, as Docker and Flatpak do)"


def _setid_rules() -> tuple[SeccompRule, ...]:
    """Two masked compares per call: libseccomp cannot test "any of these bits"."""
    return tuple(
        _deny(name, f"no set-id files: {_NO_SETID}",
              ArgCondition(arg, CmpOp.MASKED_EQ, bit, f"mode has {flag} (0{bit:o})", mask=bit))
        for name, arg in _MODE_ARG for flag, bit in _SETID)


# The rules every sandboxed launch carries, declared once and shared by all three filters.
# File capabilities (setxattr security.capability) need CAP_SETFCAP, which no pipeline leaves
# the command (bwrap drops every capability, the legacy exec stage empties its bounding set),
# so the kernel refuses them; seccomp cannot compare the attribute name.
HOST_SAFETY: tuple[SeccompRule, ...] = (
    _deny("io_uring_setup", _IO_URING),
    _deny("io_uring_enter", _IO_URING),
    _deny("io_uring_register", _IO_URING),
    _deny("ptrace", "no tracing: a tracer could rewrite the syscalls of another process"),
    _deny("process_vm_readv", "no reading of another process's memory"),
    _deny("process_vm_writev", "no writing into another process's memory"),
    *_setid_rules(),
    SeccompRule("openat2", Action.ERRNO, "its mode is in a struct seccomp cannot read: "
                "ENOSYS makes callers fall back to openat", errno="ENOSYS"),
    _deny("keyctl", _KEYRING),
    _deny("add_key", _KEYRING),
    _deny("request_key", _KEYRING),
)

HOST_FILTER = SeccompFilter(name="host-safety", rules=HOST_SAFETY)

AF_INET, AF_INET6 = 2, 10
_ALL_BITS = 2**64 - 1
_NETNS = "only the sandbox's own loopback exists in its network namespace"
_HELD = "it acts only on a socket the process already holds"


def _inet_only(why: str, unix: tuple[SeccompRule, ...]) -> tuple[SeccompRule, ...]:
    """socket() for AF_INET/AF_INET6 and what `unix` allows of AF_UNIX, socketpair() for
    AF_UNIX streams only: in a private network namespace TCP and UDP reach nothing but the
    sandbox's own loopback, while an AF_UNIX socket could connect to any host socket path the
    filesystem shows. libseccomp takes one comparison per argument and rule, so "domain not in
    {AF_UNIX, AF_INET, AF_INET6}" is several rules."""
    only = f"{why}: only AF_UNIX, AF_INET and AF_INET6 sockets ({_NETNS})"
    return (
        *unix,
        _deny("socket", only, ArgCondition(0, CmpOp.EQ, 3, "domain == 3 (AF_AX25)")),
        _deny("socket", only, ArgCondition(0, CmpOp.MASKED_EQ, 4, "4 <= domain <= 7",
                                           mask=_ALL_BITS ^ 3)),
        _deny("socket", only, ArgCondition(0, CmpOp.MASKED_EQ, 8, "domain in (8, 9)",
                                           mask=_ALL_BITS ^ 1)),
        _deny("socket", f"{why}: only AF_UNIX, AF_INET and AF_INET6 sockets (no netlink, "
              "packet, or vsock: vsock reaches the hypervisor from any namespace)",
              ArgCondition(0, CmpOp.GT, AF_INET6, "domain > AF_INET6")),
        _deny("socketpair", f"{why}: only AF_UNIX socket pairs", _NOT_UNIX),
        _deny("socketpair", f"{why}: {_DGRAM_REASON}", _DATAGRAM),
    )


def _allow(syscall: str, reason: str) -> SeccompRule:
    """A deliberate exception, listed so the rule table says why it is not refused."""
    return SeccompRule(syscall, Action.ALLOW, f"exception: {reason}", errno=None)


# Calls on sockets the process already holds reach nothing new: asyncio's self-pipe wakeup is
# send() = sendto(fd, buf, n, 0, NULL, 0), libuv closes a child's stdin with shutdown().
_ON_HELD_SOCKETS = tuple(
    _allow(name, _HELD) for name in ("shutdown", "getsockopt", "setsockopt", "getsockname",
                                     "getpeername", "recvfrom", "recvmsg", "recvmmsg"))

_GATE = "the launcher decides each call (seccomp user notification)"
_UNIX_DATAGRAM = ArgCondition(0, CmpOp.EQ, AF_UNIX, "domain == AF_UNIX")

# The Unix-socket gate (core/unix_gate.py): with the network off under bubblewrap, a command may
# create Unix stream sockets and serve on them, but it may connect only to listeners of its own
# sandbox. These rules are not in the BPF program bwrap loads: the launcher installs them
# separately, with a listener of its own, and answers each call.
UNIX_GATE: tuple[SeccompRule, ...] = (
    SeccompRule("connect", Action.GATE, f"{_GATE}: a Unix socket path connects only if a "
                "listener of this sandbox is bound to it (host sockets: EACCES); other "
                "addresses are connected as given, in the sandbox's own network namespace",
                errno=None),
    SeccompRule("listen", Action.GATE, f"{_GATE}: the launcher makes the call, then records "
                "the file a Unix listener is bound to as this sandbox's own", errno=None),
)


def _network_off(unix: tuple[SeccompRule, ...], name: str) -> SeccompFilter:
    """Network off under bubblewrap: the sandbox has its own network namespace, so "off" means
    no way out, not no sockets: local servers on 127.0.0.1 work, the host's loopback answers
    nothing. `unix` says what Unix sockets may do."""
    gated = {r.syscall for r in unix if r.action is Action.GATE}
    exceptions = (
        _allow("connect", f"TCP/UDP reach only the sandbox's own loopback ({_NETNS})"),
        _allow("bind", f"servers listen on the sandbox's own loopback ({_NETNS})"),
        _allow("sendto", f"datagrams go only to the sandbox's own loopback ({_NETNS})"),
        *_ON_HELD_SOCKETS,
    )
    return SeccompFilter(name=name, rules=(
        *_inet_only(_NET, unix), *HOST_SAFETY,
        *(r for r in exceptions if r.syscall not in gated)))


# With the gate: Unix stream and seqpacket sockets (a stream socket refuses a destination
# address, so only connect() reaches another socket, and the gate answers it). Datagram
# sockets stay refused: sendto/sendmsg may name any destination, and seccomp cannot read it.
NETWORK_FILTER = _network_off((
    _deny("socket", f"{_NET}: AF_UNSPEC", ArgCondition(0, CmpOp.EQ, 0, "domain == AF_UNSPEC")),
    _deny("socket", f"{_NET}: {_DGRAM_REASON}", _UNIX_DATAGRAM, also=_DATAGRAM),
    *UNIX_GATE), "network-off")

# Without the gate (a kernel before 6.1, or a set-id bwrap): no new AF_UNIX sockets at all.
NETWORK_FILTER_NO_GATE = _network_off((
    _deny("socket", f"{_NET}: no new AF_UNIX sockets (a host socket path would be reachable "
          "through the filesystem, and this machine cannot gate connect())",
          ArgCondition(0, CmpOp.LT, AF_INET, "domain < AF_INET (AF_UNSPEC, AF_UNIX)")),),
    "network-off-no-unix-gate")

_METADATA = ("legacy Landlock cannot confine metadata changes to the writable roots, and the "
             "command owns its user's files anywhere")
_SHARED_WRITE = (("group", 0o020), ("others", 0o002))
_CHMODS = (("chmod", 1), ("fchmod", 1), ("fchmodat", 2), ("fchmodat2", 2))

# The legacy pipeline's additions to every filter. Landlock has no right for chmod, chown or
# extended attributes, so without these the command could make any file of its user, anywhere,
# writable by other local users (a ~/.bashrc they then edit), or change its owner or xattrs.
# Modes with other bits, and times, stay changeable: git and every build tool chmod their own
# files (a named limit of the pipeline). A root launcher never runs on this pipeline.
LEGACY_METADATA: tuple[SeccompRule, ...] = (
    *(_deny(name, f"{_METADATA}: no file may be made writable by its {who}",
            ArgCondition(arg, CmpOp.MASKED_EQ, bit, f"mode has 0{bit:03o} ({who} write)",
                         mask=bit))
      for name, arg in _CHMODS for who, bit in _SHARED_WRITE),
    *(_deny(name, f"{_METADATA}: no owner changes")
      for name in ("chown", "fchown", "lchown", "fchownat")),
    # EOPNOTSUPP, as a filesystem without xattrs answers: `cp -p` and `install` then fall back
    # to a plain chmod instead of failing (they treat EPERM from an ACL as an error).
    *(SeccompRule(name, Action.ERRNO, f"{_METADATA}: no extended attributes",
                  errno="EOPNOTSUPP") for name in (
        "setxattr", "lsetxattr", "fsetxattr", "setxattrat", "removexattr", "lremovexattr",
        "fremovexattr", "removexattrat", "file_setattr")),
)

_NO_NETNS = "network is off and the legacy pipeline has no network namespace"

# Network off under the legacy Landlock pipeline: no network namespace, so every address is the
# host's and nothing may be connected or bound; only socket pairs and calls on held sockets.
LEGACY_NETWORK_FILTER = SeccompFilter(
    name="network-off-legacy",
    rules=(
        _deny("socket", f"{_NO_NETNS}: only AF_UNIX sockets may be created", _NOT_UNIX),
        _deny("socket", f"{_NO_NETNS}: {_DGRAM_REASON}", _DATAGRAM),
        _deny("socketpair", f"{_NO_NETNS}: only AF_UNIX socket pairs", _NOT_UNIX),
        _deny("socketpair", f"{_NO_NETNS}: {_DGRAM_REASON}", _DATAGRAM),
        _deny("connect", f"{_NO_NETNS}: no connections (host TCP and Unix sockets included)"),
        _deny("bind", f"{_NO_NETNS}: no listening addresses"),
        _deny("listen", f"{_NO_NETNS}: no servers"),
        _deny("accept", f"{_NO_NETNS}: no servers"),
        _deny("accept4", f"{_NO_NETNS}: no servers"),
        _deny("sendto", f"{_NO_NETNS}: no datagrams to addresses",
              ArgCondition(4, CmpOp.NE, 0, "dest_addr != NULL")),
        *HOST_SAFETY,
        *LEGACY_METADATA,
        _allow("sendto", f"without an address (send()), {_HELD}"),
        _allow("sendmsg", f"{_HELD} (a stream socket refuses an address)"),
        _allow("sendmmsg", f"{_HELD} (a stream socket refuses an address)"),
        *_ON_HELD_SOCKETS,
    ),
)


LEGACY_HOST_FILTER = SeccompFilter(name="host-safety-legacy", rules=HOST_SAFETY + LEGACY_METADATA)

_PROXY = "proxy mode"

# The command's filter in managed proxy mode, applied by the inside program once its bridge is
# live (not by bwrap: the bridge itself needs AF_UNIX).
PROXY_FILTER = SeccompFilter(
    name="network-proxy",
    rules=(
        *_inet_only(_PROXY, (_deny(
            "socket", f"{_PROXY}: no new AF_UNIX sockets (host sockets bypass the proxy)",
            ArgCondition(0, CmpOp.LT, AF_INET, "domain < AF_INET (AF_UNSPEC, AF_UNIX)")),)),
        *HOST_SAFETY,
        _allow("connect", f"{_PROXY} reaches the bridge over TCP on loopback (nothing else is "
               "reachable)"),
    ),
)


def filter_for(policy: Policy, *, legacy: bool, unix_gate: bool) -> SeccompFilter:
    """The filter a policy needs on a pipeline: with the network off, the namespace filter
    (bubblewrap: with the Unix-socket gate where this machine can run it, else without Unix
    sockets) or the strict one (legacy Landlock, which has no network namespace); the
    proxy filter in proxy mode (loaded by the inside program; bubblewrap only); the
    host-safety rules alone when the network is on. The legacy pipeline's filters also refuse
    metadata changes, which Landlock cannot confine. There is always one: set-id files and the
    keyring are never allowed."""
    if policy.network is NetworkMode.PROXY:
        return PROXY_FILTER
    if policy.network is NetworkMode.ON:
        return LEGACY_HOST_FILTER if legacy else HOST_FILTER
    if legacy:
        return LEGACY_NETWORK_FILTER
    return NETWORK_FILTER if unix_gate else NETWORK_FILTER_NO_GATE


def rule_table(flt: SeccompFilter) -> list[dict[str, Any]]:
    """Rows (syscall, condition, action, errno, reason) in filter order, then the fallbacks."""
    rows = [{"syscall": r.syscall, "condition": r.condition_text, "action": r.action.value,
             "errno": r.errno, "reason": r.reason} for r in flt.rules]
    rows.append({"syscall": "*", "condition": "foreign architecture (i386, x32)",
                 "action": Action.ERRNO.value, "errno": flt.foreign_arch_errno,
                 "reason": "32-bit and x32 syscall numbers bypass the native rules"})
    rows.append({"syscall": "*", "condition": "anything else", "action": Action.ALLOW.value,
                 "errno": None, "reason": "default: the filter removes only what is listed above"})
    return rows


def render_table(flt: SeccompFilter) -> str:
    rows = rule_table(flt)
    width = max(len(r["syscall"]) for r in rows)
    cond = max(len(r["condition"]) for r in rows)
    lines = [f"seccomp filter {flt.name!r} (no-new-privs set; applied to the command)"]
    for r in rows:
        result = r["errno"] if r["action"] == Action.ERRNO else r["action"]
        lines.append(f"  {r['syscall']:<{width}}  {r['condition']:<{cond}}  {result:<6}  "
                     f"{r['reason']}")
    return "\n".join(lines)


def _errno(name: str | None) -> int:
    value = getattr(errno, name or "", None)
    if not isinstance(value, int):
        raise ValueError(f"unknown errno name {name!r}")
    return value


def _import_pyseccomp() -> Any:
    """pyseccomp locates libseccomp with `ctypes.util.find_library`, which runs `ldconfig -p`:
    about 10 ms, most of a `sandboxtui run`. Name the soname the dynamic loader resolves."""
    import ctypes.util

    find = ctypes.util.find_library
    ctypes.util.find_library = lambda name: "libseccomp.so.2" if name == "seccomp" else find(name)
    try:
        import pyseccomp
    finally:
        ctypes.util.find_library = find
    return pyseccomp


# Syscalls newer than the libseccomp that may be installed (2.5.4 knows none of these), by
# number: from Linux 5.1 on, a new syscall has the same number on every architecture.
NEWER_SYSCALLS = {"setxattrat": 463, "removexattrat": 466, "file_setattr": 469}


def _libseccomp_filter(flt: SeccompFilter) -> Any:
    sc = _import_pyseccomp()

    ops = {CmpOp.NE: sc.NE, CmpOp.EQ: sc.EQ, CmpOp.LT: sc.LT, CmpOp.GT: sc.GT}
    f = sc.SyscallFilter(sc.ALLOW)
    f.set_attr(sc.Attr.ACT_BADARCH, sc.ERRNO(_errno(flt.foreign_arch_errno)))
    for rule in flt.rules:
        if rule.action is not Action.ERRNO:
            continue  # allowed by default (listed for the rule table), or the gate's
        args = tuple(sc.Arg(c.arg, sc.MASKED_EQ, c.mask, c.value) if c.op is CmpOp.MASKED_EQ
                     else sc.Arg(c.arg, ops[c.op], c.value) for c in rule.conditions)
        syscall = NEWER_SYSCALLS.get(rule.syscall, rule.syscall)
        f.add_rule(sc.ERRNO(_errno(rule.errno)), syscall, *args)
    return f


def _export(flt: SeccompFilter, method: str) -> bytes:
    f = _libseccomp_filter(flt)
    with os.fdopen(os.memfd_create("sandboxtui-export", os.MFD_CLOEXEC), "w+b") as fh:
        getattr(f, method)(fh)
        fh.seek(0)
        return fh.read()


def _libseccomp_version() -> str | None:
    """libseccomp's version, from the library itself (None: it cannot be loaded)."""
    import ctypes

    try:
        lib = ctypes.CDLL("libseccomp.so.2")
    except OSError:
        return None
    lib.seccomp_version.restype = ctypes.POINTER(ctypes.c_uint * 3)
    return ".".join(map(str, lib.seccomp_version().contents))


def bpf_cache_key(flt: SeccompFilter) -> str | None:
    """What the compiled program depends on, hashed: the filter's data (its repr names every
    field), this module's source (how a rule becomes libseccomp calls), the pyseccomp binding
    installed, the architecture and libseccomp's version. None: nothing to cache (no
    libseccomp, no pyseccomp, or a source that cannot be read)."""
    import hashlib
    import importlib.util

    version = _libseccomp_version()
    binding = importlib.util.find_spec("pyseccomp")
    try:
        with open(__file__, "rb") as fh:
            source = hashlib.sha256(fh.read()).hexdigest()
        found = os.stat(binding.origin) if binding is not None and binding.origin else None
    except OSError:
        return None
    if version is None or found is None:
        return None
    material = repr((flt, source, binding.origin, found.st_size, found.st_mtime_ns,
                     os.uname().machine, version))
    return hashlib.sha256(material.encode()).hexdigest()


@cache
def compile_bpf(flt: SeccompFilter) -> bytes:
    """The BPF program (struct sock_filter array) for the native architecture; cached in this
    process and in the state directory."""
    from sandboxtui.core import state_cache

    key = bpf_cache_key(flt)
    cached = None if key is None else state_cache.read("seccomp-bpf", key)
    if cached and len(cached) % 8 == 0:
        return cached
    program = _export(flt, "export_bpf")
    if key is not None:
        state_cache.write("seccomp-bpf", key, program)
    return program


@cache
def pseudo_filter(flt: SeccompFilter) -> str:
    """libseccomp's pseudo-filter code (PFC) of the same program, for the TUI."""
    return _export(flt, "export_pfc").decode()

