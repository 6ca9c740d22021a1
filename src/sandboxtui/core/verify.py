"""Verify: prove the plan's picture against the kernel.

`verify()` picks paths (explicit ones, or the plan's interesting paths plus a random sample),
turns each into probes (read, list, write, create, mkdir, delete, create-missing, rename,
execute; TCP and UDP to host loopback listeners, an AF_UNIX socket, a socketpair), runs them all
inside ONE real launch of `probe_program.py`, and compares each answer with `predict()`.

Predictions come from the plan only: `plan.explain()` for filesystem access (plus the host's
own permission bits, checked for the identity the probes run as: inside either pipeline that
is the caller's uid and groups *without* capabilities, so root gets no DAC override), and the
seccomp filter object that the launcher loads for the network. A mismatch is a product bug,
except on the legacy pipeline where the launch's documented unenforced rules
(`LaunchSpec.landlock.unenforced`) turn "predicted denied, observed allowed" into an expected
mismatch, reported as such and never hidden. A UDP probe counts as allowed only when its
datagram reached the host's socket. A probed path whose host identity changed while
the probes ran (another process replaced or removed it) is marked `host_changed` instead of
being blamed on the sandbox.

`verify()` blocks for one launch (a fraction of a second): run it from a worker thread in a UI.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import socket
import stat
import struct
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sandboxtui.core import launch
from sandboxtui.core.diagnostics import Capabilities, unix_gate_error
from sandboxtui.core.landlock import landlock_model
from sandboxtui.core.outcome import SandboxtuiError
from sandboxtui.core.paths import is_within
from sandboxtui.core.pipeline import Pipeline
from sandboxtui.core.plan import (
    Explanation,
    MountPlan,
    OpKind,
    Rule,
    RuleKind,
    build_plan,
    resolve_host_path,
)
from sandboxtui.core.policy import Access, NetworkMode
from sandboxtui.core.seccomp import AF_UNIX, Action, SeccompFilter, filter_for

if TYPE_CHECKING:
    from sandboxtui.core.pipelines.base import Enforcer

NET_OPS = ("tcp", "udp", "unix-socket", "unix-host", "socketpair")
# Interpreters for the probe program, best first: a platform path the plan usually makes
# readable, before this process's own (a venv may live in a home the sandbox hides).
PROBE_PYTHONS = ("/usr/bin/python3", sys.executable)
# bwrap counts its options (not the command's arguments) against its limit; the kernel's
# ARG_MAX (2 MiB here) bounds the probes passed as arguments. Beyond these, probes go in
# several launches (thousands of probes fit in one).
MAX_PROBES_PER_LAUNCH = 4000
MAX_PROBE_BYTES_PER_LAUNCH = 1 << 20
PROBE_SOURCE = (Path(__file__).parent / "probe_program.py").read_text(encoding="utf-8")
SCRATCH_NAME = ".sandboxtui-probe"  # what the probe program's scratch names start with

_R, _W, _X = 4, 2, 1
AF_INET = 2
SOCK_STREAM, SOCK_DGRAM, SOCK_CLOEXEC = 1, 2, 0o2000000
# The syscalls each network probe makes (as Python makes them: close-on-exec sockets), with
# their arguments, in order; None stands for an argument no filter rule looks at.
_NET_SYSCALLS: dict[str, tuple[tuple[str, tuple[int | None, ...]], ...]] = {
    "tcp": (("socket", (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)), ("connect", (None,))),
    # sendto's fifth argument is the destination: the probe names one (a non-NULL pointer).
    "udp": (("socket", (AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)),
            ("sendto", (None, None, None, None, 1))),
    "unix-socket": (("socket", (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)),),
    "unix-host": (("socket", (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)), ("connect", (None,))),
    "socketpair": (("socketpair", (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)),),
}
UDP_PAYLOAD = b"sandboxtui-probe"  # what the probe program sends


class VerifyError(SandboxtuiError):
    """The probes could not run (exit 4): the message names the cause and a remedy."""

    label = "verify: "


@dataclass(frozen=True)
class Probe:
    op: str
    path: str  # a path, or host:port for tcp/udp, "-" for the socket probes

    def to_json(self) -> dict[str, str]:
        return {"op": self.op, "path": self.path}


@dataclass(frozen=True)
class Identity:
    """Whose permission bits decide inside the sandbox."""

    uid: int
    gids: frozenset[int]
    capable: bool  # keeps CAP_DAC_OVERRIDE & co (root, unsandboxed only)


def sandbox_identity(sandboxed: bool) -> Identity:
    """Both pipelines drop every capability, so root is an ordinary uid 0 inside."""
    uid = os.geteuid()
    return Identity(uid, frozenset({os.getegid(), *os.getgroups()}),
                    capable=uid == 0 and not sandboxed)


@dataclass(frozen=True)
class Prediction:
    allowed: bool
    access: str  # rw / ro / none, or the network mode
    why: str
    rule: str | None = None  # path of the deciding rule (filesystem probes)


@dataclass(frozen=True)
class ProbeResult:
    probe: Probe
    predicted: Prediction
    observed: bool
    errno: str | None
    expected_mismatch: bool = False  # legacy pipeline: a documented unenforced rule
    leftover: str | None = None  # the probe could not undo its change: the host keeps this
    host_changed: bool = False  # the path changed on the host while the probes ran

    @property
    def ok(self) -> bool:
        return self.predicted.allowed == self.observed and self.leftover is None

    @property
    def status(self) -> str:
        if self.ok:
            return "ok"
        if self.leftover is not None:
            return "LEFTOVER"
        if self.expected_mismatch:
            return "expected (unenforced)"
        return "host changed" if self.host_changed else "MISMATCH"

    @property
    def counts_as_mismatch(self) -> bool:
        return self.status in ("MISMATCH", "LEFTOVER")

    def to_json(self) -> dict[str, Any]:
        return {
            "op": self.probe.op, "path": self.probe.path,
            "predicted": "allowed" if self.predicted.allowed else "denied",
            "observed": "allowed" if self.observed else f"denied ({self.errno})",
            "errno": self.errno, "access": self.predicted.access, "why": self.predicted.why,
            "rule": self.predicted.rule, "ok": self.ok, "status": self.status,
            "expected_mismatch": self.expected_mismatch, "leftover": self.leftover,
            "host_changed": self.host_changed,
        }


# --- predictions ------------------------------------------------------------------------------


def _allowed_bits(st: os.stat_result, want: int, who: Identity) -> bool:
    """The kernel's DAC check (ACLs aside) for `who`."""
    if who.capable:  # DAC override: everything but executing a file with no x bit at all
        return not (want & _X and stat.S_ISREG(st.st_mode) and not st.st_mode & 0o111)
    if st.st_uid == who.uid:
        bits = st.st_mode >> 6
    elif st.st_gid in who.gids:
        bits = st.st_mode >> 3
    else:
        bits = st.st_mode
    return bits & want == want


def _host_denial(path: str, want: int, who: Identity) -> str | None:
    """Why the host's permission bits refuse `want` on `path` (and search on its ancestors)."""
    parts = path.split("/")
    try:
        for i in range(1, len(parts)):
            d = "/".join(parts[:i]) or "/"
            st = os.stat(d)
            if not _allowed_bits(st, _X, who):
                return f"host permissions: no search permission on {d} ({_mode(st)})"
        st = os.stat(path)
    except OSError as exc:
        return f"host: {exc.strerror} ({exc.filename})"
    if not _allowed_bits(st, want, who):
        need = "".join(c for bit, c in ((_R, "r"), (_W, "w"), (_X, "x")) if want & bit)
        return f"host permissions: no {need} on {path} ({_mode(st)})"
    return None


def _mode(st: os.stat_result) -> str:
    return f"{stat.filemode(st.st_mode)} uid {st.st_uid} gid {st.st_gid}"


def _sticky_denial(parent: str, path: str, who: Identity) -> str | None:
    """A sticky directory (/tmp) lets only the entry's or the directory's owner move it."""
    try:
        pst, st = os.stat(parent), os.lstat(path)
    except OSError as exc:
        return f"host: {exc.strerror} ({exc.filename})"
    if pst.st_mode & stat.S_ISVTX and not who.capable and who.uid not in (st.st_uid,
                                                                          pst.st_uid):
        return f"sticky directory {parent}: only the owner may rename {path}"
    return None


def _capability_denial(path: str) -> str | None:
    """Files whose opening needs a capability no sandbox keeps: /proc/kcore (CAP_SYS_RAWIO),
    /dev/kmsg (CAP_SYSLOG, when dmesg_restrict is set)."""
    if path == "/proc/kcore":
        return "reading kernel memory needs CAP_SYS_RAWIO"
    if path != "/dev/kmsg":
        return None
    try:
        with open("/proc/sys/kernel/dmesg_restrict", encoding="ascii") as fh:
            restricted = fh.read().strip() != "0"
    except OSError:
        restricted = True
    return "kernel.dmesg_restrict: reading the kernel log needs CAP_SYSLOG" if restricted \
        else None


def _device_denial(path: str) -> str | None:
    """What the host says to opening a (side-effect free) device node: a device cgroup or
    an LSM may refuse what the permission bits allow."""
    try:
        os.close(os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY))
    except OSError as exc:
        return f"host: {exc.strerror} opening {path}"
    return None


def _mount_denial(path: str, flag: int, what: str) -> str | None:
    try:
        flags = os.statvfs(path).f_flag
    except OSError as exc:
        return f"host: {exc.strerror} ({path})"
    return f"the host mounts {path} {what}" if flags & flag else None


def predict(plan: MountPlan, probe: Probe, who: Identity, enforcer: Enforcer | None = None
            ) -> Prediction:
    """What the plan (and the host's permission bits) say the kernel will answer under the
    launch's pipeline (`enforcer`; by default bubblewrap with the filter this machine loads):
    the plan's mount operations shape what the command sees only where the pipeline mounts
    them, and its seccomp filter decides the network."""
    mounts = enforcer is None or enforcer.mounts_plan
    if probe.op in NET_OPS:
        seccomp = enforcer.seccomp if enforcer is not None else filter_for(
            plan.policy, legacy=False, unix_gate=unix_gate_error(None) is None)
        return _predict_network(plan, probe, seccomp)
    ex = plan.explain(probe.path)
    path = ex.resolved
    rule = f"{ex.access.value}: {ex.rule.reason} [{ex.rule.provenance}]"
    op = probe.op

    # The legacy pipeline has neither bwrap's private /dev nor its masked /proc files.
    legacy_host = not mounts and ex.access is Access.NONE \
        and ex.rule.kind in (RuleKind.DEVICE, RuleKind.KERNEL)

    def verdict(need_rw: bool, *host_checks: Callable[[], str | None]) -> Prediction:
        if ex.access is Access.NONE and not legacy_host or need_rw and ex.access is not Access.RW:
            return Prediction(False, ex.access.value, rule, ex.rule.path)
        for check in host_checks:
            why = check()
            if why:
                return Prediction(False, ex.access.value, f"{why}; plan: {rule}", ex.rule.path)
        return Prediction(True, ex.access.value, rule, ex.rule.path)

    if plan.skeleton(path):
        if not mounts:
            return Prediction(False, Access.NONE.value, "legacy Landlock grants nothing "
                              "outside the readable roots (there is no empty root with "
                              f"directories for mount points); plan: {rule}", ex.rule.path)
        if op == "list":  # bwrap made it (mode 0755), whatever the host's bits say
            return Prediction(True, ex.access.value, rule, ex.rule.path)
    if op == "list" and _placeholder_dir_at(ex):
        if not mounts:
            return Prediction(False, ex.access.value, "missing, and legacy Landlock mounts no "
                              f"placeholder there; plan: {rule}", ex.rule.path)
        return Prediction(True, ex.access.value, f"an empty read-only directory inside; plan: "
                          f"{rule}", ex.rule.path)
    if ex.rule.kind in (RuleKind.DEVICE, RuleKind.KERNEL) and not mounts:
        model = landlock_model(plan)
        roots = model.read_roots + (model.list_roots if op == "list" else ())
        if not any(is_within(path, r) for r in roots):
            return Prediction(False, Access.NONE.value, "legacy Landlock: outside every "
                              f"readable root (the host's /dev and /proc); plan: {rule}",
                              ex.rule.path)
    if legacy_host:
        # Legacy: the host's /dev and /proc, read as the host's bits (and the capabilities
        # no sandbox keeps) allow; Landlock writes nothing there but /dev/null.
        if op in ("read", "list"):
            return verdict(False, lambda: _host_denial(path, _R, who),
                           lambda: _capability_denial(path),
                           lambda: _device_denial(path) if path.startswith("/dev/") else None)
        return Prediction(False, ex.access.value, "legacy Landlock: only /dev/null is "
                          f"writable there; plan: {rule}", ex.rule.path)
    if op in ("read", "list"):
        return verdict(False, lambda: _host_denial(path, _R, who))
    if op == "execute":
        return verdict(False, lambda: _host_denial(path, _X, who),
                       lambda: _mount_denial(path, os.ST_NOEXEC, "noexec"))
    if op == "write":
        return verdict(True, lambda: _host_denial(path, _W, who),
                       lambda: _mount_denial(path, os.ST_RDONLY, "read-only"))
    if op in ("create", "mkdir", "delete"):
        return verdict(True, lambda: _host_denial(path, _W | _X, who),
                       lambda: _mount_denial(path, os.ST_RDONLY, "read-only"))
    parent = os.path.dirname(path)
    if op == "create-missing":
        if not os.path.isdir(parent):
            return Prediction(False, ex.access.value, f"{parent} does not exist; plan: {rule}",
                              ex.rule.path)
        return verdict(True, lambda: _host_denial(parent, _W | _X, who),
                       lambda: _mount_denial(parent, os.ST_RDONLY, "read-only"))
    if op == "rename":
        parent_rule = plan.rule_for(parent)
        if parent_rule.access is not Access.RW:
            return Prediction(False, ex.access.value, f"{parent} is {parent_rule.access.value}: "
                              f"{parent_rule.reason} [{parent_rule.provenance}]", ex.rule.path)
        return verdict(True, lambda: _host_denial(parent, _W | _X, who),
                       lambda: _sticky_denial(parent, path, who),
                       lambda: _mount_denial(parent, os.ST_RDONLY, "read-only"))
    raise ValueError(f"unknown probe op {op!r}")


def _predict_network(plan: MountPlan, probe: Probe, flt: SeccompFilter) -> Prediction:
    network = plan.policy.network.value
    if plan.unsandboxed:
        return Prediction(True, network, "unsandboxed")
    # the very object the launcher compiles and loads
    for syscall, args in _NET_SYSCALLS[probe.op]:
        for r in flt.rules:
            if r.syscall == syscall and r.action is Action.ERRNO and r.matches(args):
                return Prediction(False, network, f"seccomp: {syscall} ({r.condition_text}) "
                                  f"-> {r.errno}: {r.reason}")
            if probe.op == "unix-host" and r.syscall == syscall and r.action is Action.GATE:
                return Prediction(False, network, f"the Unix-socket gate: {syscall} -> EACCES "
                                  "(the host's listener is none of this sandbox's)")
    if probe.op in ("tcp", "udp") and plan.policy.network is not NetworkMode.ON:
        return Prediction(False, network, "own network namespace: the host's loopback is "
                          "out of reach")
    return Prediction(True, network, f"network {network}")


# --- choosing probes --------------------------------------------------------------------------


def _glibc_dynamic_elf(path: str) -> bool:
    """An ELF whose program interpreter is glibc's loader, which honours trace mode and stops
    it before any of its code runs (musl's loader would run the program)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(64)
            if head[:4] != b"\x7fELF" or len(head) < 64:
                return False
            end = "<" if head[5] == 1 else ">"
            wide = head[4] == 2
            phoff = struct.unpack_from(end + ("Q" if wide else "I"), head,
                                       0x20 if wide else 0x1C)[0]
            phentsize, phnum = struct.unpack_from(end + "HH", head, 0x36 if wide else 0x2A)
            fh.seek(phoff)
            table = fh.read(phentsize * min(phnum, 256))
            for at in range(0, len(table) - phentsize + 1, max(phentsize, 1)):
                if struct.unpack_from(end + "I", table, at)[0] != 3:  # PT_INTERP
                    continue
                offset, size = (struct.unpack_from(end + "QQQQ", table, at + 8)[::3] if wide
                                else struct.unpack_from(end + "IIII", table, at + 4)[::3])
                fh.seek(offset)
                return b"/ld-linux" in fh.read(min(size, 4096))
    except (OSError, struct.error):
        return False
    return False


def _safe_to_execute(path: str, st: os.stat_result) -> bool:
    """Only files whose execution the probe can stop before any of their code runs."""
    if st.st_mode & (stat.S_ISUID | stat.S_ISGID):
        return False
    if _glibc_dynamic_elf(path):
        return True
    try:
        with open(path, "rb") as fh:
            first = fh.readline(256)
    except OSError:
        return False
    if not first.startswith(b"#!"):
        return False
    words = first[2:].split()
    return bool(words) and _glibc_dynamic_elf(os.fsdecode(words[0]))


# Host-global kernel files the probes open (for writing: nothing is written), and device
# names under /dev whose opening has no side effect (never a watchdog, which arms on open).
KERNEL_PROBES = ("/proc/sys/kernel/domainname", "/proc/sys/kernel/core_pattern",
                 "/proc/sys/vm/overcommit_ratio", "/proc/sysrq-trigger", "/proc/timer_list",
                 "/proc/keys")
SAFE_DEVICES = ("kmsg", "vda", "vdb", "sda", "xvda", "nvme0n1", "loop0")


def skip_reason(plan: MountPlan, path: str) -> str | None:
    """Why a path gets no probes, or None."""
    ex = plan.explain(path)
    if ex.rule.kind is RuleKind.PROC or ex.rule.kind is RuleKind.DEVICE \
            and ex.access is not Access.NONE:
        return "synthesized inside the sandbox (/dev, /proc): host permissions do not describe it"
    if ex.rule.kind is RuleKind.DEVICE and os.path.basename(ex.rule.path) not in SAFE_DEVICES:
        return "a host device node whose opening may have side effects: not probed"
    return None


def probes_for_path(plan: MountPlan, path: str) -> tuple[list[Probe], str | None]:
    """The operations that make sense for what `path` is on the host, or why none do."""
    why = skip_reason(plan, path)
    if why:
        return [], why
    ex = plan.explain(path)
    if ex.rule.missing and ex.rule.path == ex.resolved:
        # The plan's view wins: a placeholder another launch put there since does not count.
        # Where one is bound inside (access none), it must not be readable either; an empty
        # read-only directory stands in for a missing protected directory: it lists.
        extra = [Probe("read", path)] if ex.access is Access.NONE else \
            [Probe("list", path)] if _placeholder_dir_at(ex) else []
        return [Probe("create-missing", path), *extra], None
    if ex.rule.kind in (RuleKind.KERNEL, RuleKind.DEVICE):  # only ever opened
        ops = ("list",) if os.path.isdir(path) else ("read", "write")
        return [Probe(op, path) for op in ops], None
    try:
        lst = os.lstat(path)
    except OSError:
        parent = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(parent):
            return [], "missing, and so is its parent"
        return [Probe("create-missing", path)], None
    is_link = stat.S_ISLNK(lst.st_mode)
    try:
        st = os.stat(path) if is_link else lst
    except OSError:
        return [], "dangling symlink"
    if stat.S_ISDIR(st.st_mode):
        return [Probe(op, path) for op in ("list", "create", "mkdir", "delete")], None
    if not stat.S_ISREG(st.st_mode):
        return [], "not a regular file or directory"
    ops = ["read", "write"] + ([] if is_link else ["rename"])  # a rename moves the link itself
    if st.st_mode & 0o111 and _safe_to_execute(path, st):
        ops.append("execute")
    return [Probe(op, path) for op in ops], None


def _placeholder_dir_at(ex: Explanation) -> bool:
    """Does bwrap mount an empty read-only directory on this missing protected path?"""
    return ex.rule.missing and ex.rule.path == ex.resolved and any(
        o.kind is OpKind.BLOCK_MISSING_DIR and o.dest == ex.resolved for o in ex.ops)


def _children(path: str, limit: int) -> list[str]:
    try:
        with os.scandir(path) as it:
            names = sorted(e.name for e in it if not e.name.startswith(SCRATCH_NAME))
    except OSError:
        return []
    return [os.path.join(path, n) for n in names[:limit]]


def node_paths(path: str, limit: int = 50) -> list[str]:
    """A tree node's path and (up to `limit` of) its children: what a UI verifies for it."""
    return [path, *_children(path, limit)]


SYSTEM_PATHS = ("/usr/bin/true", "/usr/bin/env", "/etc/hostname", "/etc", "/usr/lib",
                "/var/log", "/root")


def sample_paths(plan: MountPlan, n: int, rng: random.Random) -> list[str]:
    """Every rule path (carveouts, writable roots, protected subpaths existing and missing,
    sensitive files), its parent, and its first child when it lies in the workspace or a
    configured writable root; a few system paths; n random paths, half from the workspace and
    half from the system tree."""
    own = [plan.cwd, *(resolve_host_path(p, "/") for p in plan.policy.writable_roots)]
    picked: list[str] = []
    for rule in plan.rules:
        if rule.path == "/" or rule.kind in (RuleKind.DEVICE, RuleKind.PROC):
            continue
        picked += [rule.path, os.path.dirname(rule.path)]
        if any(is_within(rule.path, root) for root in own):
            # Not in /tmp and the like: their entries belong to other programs.
            picked += _children(rule.path, 1)
    picked += SYSTEM_PATHS
    if any(r.kind is RuleKind.KERNEL for r in plan.rules):
        picked += [p for p in KERNEL_PROBES if os.path.exists(p)]
    if any(r.kind is RuleKind.DEVICE for r in plan.rules):
        picked += [f"/dev/{d}" for d in SAFE_DEVICES if os.path.exists(f"/dev/{d}")]
    picked += _random_paths(plan.cwd, n - n // 2, rng)
    picked += _random_paths(rng.choice(("/usr", "/etc")), n // 2, rng)
    seen: set[str] = set()
    return [p for p in picked if not (p in seen or seen.add(p))]


def _random_paths(root: str, n: int, rng: random.Random) -> list[str]:
    """n paths reached by random descent from root (bounded work per path)."""
    out = []
    for _ in range(n):
        path = root
        for _ in range(rng.randint(1, 6)):
            kids = _children(path, 200)
            if not kids:
                break
            path = rng.choice(kids)
            if os.path.islink(path) or not os.path.isdir(path):
                break
        out.append(path)
    return out


def network_probes(tcp: str | None, udp: str | None, unix: str | None = None) -> list[Probe]:
    probes = [Probe("tcp", tcp)] if tcp else []
    probes += [Probe("udp", udp)] if udp else []
    probes += [Probe("unix-host", unix)] if unix else []
    return probes + [Probe("unix-socket", "-"), Probe("socketpair", "-")]


@dataclass(frozen=True)
class Loopback:
    """A TCP listener and a UDP socket on host 127.0.0.1, and a host Unix listener, for the
    network probes."""

    tcp: str  # host:port
    udp: str
    udp_socket: socket.socket
    unix: str  # the Unix listener's path

    def udp_delivered(self) -> bool:
        """Did a probe datagram reach the host? (A send inside a private network namespace
        succeeds on the sandbox's own loopback and never arrives.)"""
        self.udp_socket.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            while True:
                if self.udp_socket.recv(64) == UDP_PAYLOAD:
                    return True
        return False


@contextlib.contextmanager
def loopback() -> Iterator[Loopback]:
    """The host listeners (ephemeral ports), closed afterwards."""
    import tempfile

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, \
            socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as unix, \
            tempfile.TemporaryDirectory(prefix="sandboxtui-verify-") as scratch:
        tcp.bind(("127.0.0.1", 0))
        tcp.listen(16)  # a connect completes in the backlog: nothing needs to accept
        udp.bind(("127.0.0.1", 0))
        unix.bind(os.path.join(scratch, "host.sock"))
        unix.listen(16)
        yield Loopback(f"127.0.0.1:{tcp.getsockname()[1]}",
                       f"127.0.0.1:{udp.getsockname()[1]}", udp, unix.getsockname())


# --- running ----------------------------------------------------------------------------------


def probe_interpreter(plan: MountPlan, who: Identity) -> str:
    """The Python that runs the probes: one the plan lets the sandbox read and execute."""
    refusals = []
    for python in dict.fromkeys(PROBE_PYTHONS):
        if not os.path.isfile(python):
            refusals.append(f"{python} does not exist")
            continue
        pred = predict(plan, Probe("execute", python), who)
        if pred.allowed:
            return python
        refusals.append(f"{python}: {pred.why}")
    raise VerifyError("no Python interpreter the sandbox can execute, so the probes cannot run ("
                      + "; ".join(refusals) + "); remedy: make /usr readable (read_access."
                      "include_platform_defaults = true, or a readable root)")


def probe_command(python: str, probes: Sequence[Probe]) -> list[str]:
    return [python, "-I", "-S", "-c", PROBE_SOURCE,
            *(json.dumps(p.to_json()) for p in probes)]


def prepare_probes(plan: MountPlan, probes: Sequence[Probe], python: str, *,
                   caps: Capabilities | None = None) -> launch.LaunchSpec:
    """The launch that runs `probes` (raises LaunchError when it must not happen)."""
    return launch.prepare(plan, probe_command(python, probes), caps=caps)


def run_probes(spec: launch.LaunchSpec, count: int, *,
               timeout: float = 120.0) -> list[dict[str, Any]]:
    """Run a prepared probe launch; one answer per probe, or VerifyError."""
    out = bytearray()
    err = bytearray()

    def collect(event: launch.OutputEvent) -> None:
        (out if event.stream == "stdout" else err).extend(event.data)

    try:
        result = launch.start(spec, timeout=timeout, capture=True, on_output=collect).wait()
    except launch.LaunchError as exc:
        raise VerifyError(f"the sandbox could not be launched: {exc.message}") from exc
    answers = []
    for line in out.decode(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            answers.append(json.loads(line))
    if result.exit_code != 0 or len(answers) != count:
        tail = err.decode(errors="replace").strip().splitlines()[-3:]
        raise VerifyError(
            f"the probe program answered {len(answers)} of {count} probes and exited "
            f"{result.exit_code}: " + (result.error or " / ".join(tail) or "no message"))
    return answers


def _batches(probes: Sequence[Probe]) -> list[list[Probe]]:
    batches: list[list[Probe]] = [[]]
    size = 0
    for probe in probes:
        cost = len(os.fsencode(json.dumps(probe.to_json()))) + 1
        if len(batches[-1]) == MAX_PROBES_PER_LAUNCH or size + cost > MAX_PROBE_BYTES_PER_LAUNCH:
            batches.append([])
            size = 0
        batches[-1].append(probe)
        size += cost
    return batches


def _fingerprint(path: str) -> tuple[int, ...] | None:
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_mode, st.st_uid, st.st_gid)


def compare(
    probes: Sequence[Probe],
    predictions: Sequence[Prediction],
    answers: Sequence[dict[str, Any]],
    unenforced: Iterable[Rule] = (),
    changed: Iterable[str] = (),
) -> list[ProbeResult]:
    """Pair each probe's prediction (made before the launch) with its answer. "Predicted
    denied, observed allowed" under a rule the pipeline documents as unenforced is an expected
    mismatch; `changed` paths changed on the host while the probes ran."""
    unenforced_paths = {r.path for r in unenforced}
    changed = set(changed)
    by_index = {a["i"]: a for a in answers}
    results = []
    for i, (probe, predicted) in enumerate(zip(probes, predictions, strict=True)):
        answer = by_index[i]
        observed = bool(answer["ok"])
        expected = (not predicted.allowed and observed
                    and predicted.rule in unenforced_paths)
        results.append(ProbeResult(probe, predicted, observed, answer["errno"], expected,
                                   answer.get("leftover"), probe.path in changed))
    return results


_SEVERITY = {"verified": 0, "expected": 1, "mismatch": 2}


@dataclass(frozen=True)
class VerifyReport:
    pipeline: Pipeline
    results: tuple[ProbeResult, ...]
    skipped: tuple[tuple[str, str], ...]  # (path, why no probe)
    launches: int
    seconds: float  # wall time of the probe launches
    unenforced: tuple[Rule, ...]  # legacy pipeline: rules it documents as unenforced
    warnings: tuple[str, ...]

    @property
    def mismatches(self) -> list[ProbeResult]:
        return [r for r in self.results if r.counts_as_mismatch]

    @property
    def expected_mismatches(self) -> list[ProbeResult]:
        return [r for r in self.results if r.status == "expected (unenforced)"]

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def path_status(self) -> dict[str, str]:
        """Per probed path, what a tree node shows: "mismatch", "expected" (a documented
        unenforced path) or "verified"."""
        status: dict[str, str] = {}
        for r in self.results:
            if r.probe.op in NET_OPS:
                continue
            now = ("mismatch" if r.counts_as_mismatch else
                   "expected" if r.status == "expected (unenforced)" else "verified")
            old = status.get(r.probe.path, "verified")
            status[r.probe.path] = now if _SEVERITY[now] > _SEVERITY[old] else old
        return status

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "pipeline": self.pipeline.value, "launches": self.launches,
            "seconds": round(self.seconds, 3), "probes": len(self.results),
            "mismatches": len(self.mismatches),
            "expected_mismatches": len(self.expected_mismatches),
            "unenforced": [r.path for r in self.unenforced],
            "warnings": list(self.warnings),
            "skipped": [{"path": p, "why": w} for p, w in self.skipped],
            "results": [r.to_json() for r in self.results],
        }


def with_pipeline(plan: MountPlan, legacy: bool) -> MountPlan:
    """The same plan with features.use_legacy_landlock forced (`verify --pipeline`)."""
    policy = replace(plan.policy, use_legacy_landlock=legacy)
    return build_plan(policy, plan.cwd, mount_proc=any(
        r.kind is RuleKind.PROC and r.access is not Access.NONE for r in plan.rules))


def verify(
    plan: MountPlan,
    paths: Sequence[str] | None = None,
    *,
    sample: int = 20,
    rng: random.Random | None = None,
    caps: Capabilities | None = None,
    timeout: float = 120.0,
) -> VerifyReport:
    """Probe `paths` (None: the plan's interesting paths plus `sample` random ones) and the
    network in one launch; raises VerifyError when the probes cannot run."""
    rng = random.Random() if rng is None else rng
    chosen = (sample_paths(plan, sample, rng) if paths is None
              else [os.path.join(plan.cwd, os.path.expanduser(p)) for p in paths])
    probes: list[Probe] = []
    skipped: list[tuple[str, str]] = []
    for path in chosen:
        found, why = probes_for_path(plan, path)
        probes += found
        if why:
            skipped.append((path, why))
    who = sandbox_identity(not plan.unsandboxed)
    python = probe_interpreter(plan, who)
    before = {p.path: _fingerprint(p.path) for p in probes}
    with loopback() as host:
        probes += network_probes(host.tcp, host.udp, host.unix)
        batches = _batches(probes)
        try:
            specs = [prepare_probes(plan, batch, python, caps=caps) for batch in batches]
        except launch.LaunchError as exc:
            raise VerifyError(f"the sandbox cannot be launched: {exc.message}") from exc
        spec = specs[0]
        predictions = [predict(plan, p, who, spec.enforcer) for p in probes]
        started = time.monotonic()
        answers: list[dict[str, Any]] = []
        for batch_spec, batch in zip(specs, batches, strict=True):
            offset = len(answers)
            answers += [{**a, "i": a["i"] + offset}
                        for a in run_probes(batch_spec, len(batch), timeout=timeout)]
        seconds = time.monotonic() - started
        if not host.udp_delivered():
            answers = [{**a, "ok": False, "errno": "NOT-DELIVERED"}
                       if probes[a["i"]].op == "udp" and a["ok"] else a for a in answers]
    changed = [p for p, fp in before.items() if _fingerprint(p) != fp]
    unenforced = spec.enforcer.unenforced
    results = compare(probes, predictions, answers, unenforced, changed)
    return VerifyReport(spec.pipeline, tuple(results), tuple(skipped), len(batches), seconds,
                        tuple(unenforced), tuple(d.line() for d in spec.warnings))
