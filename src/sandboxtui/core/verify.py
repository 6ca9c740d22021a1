"""Verify: prove the plan's picture against the kernel.

`sample_probes()` picks the interesting paths of a plan; `predict()` says what `explain()` (and
the host's own file permissions) expect of each operation; `compare()` pairs predictions with
what the probe program observed inside one real sandbox launch. A mismatch is a product bug,
except the legacy pipeline's documented unenforced paths, which are reported as expected.
"""

from __future__ import annotations

import os
import random
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sandboxtui.core.plan import MountPlan, OpKind
from sandboxtui.core.policy import Access, NetworkMode

FS_OPS = ("read", "list", "write", "create", "create-missing", "mkdir", "rename", "delete",
          "execute")
NET_OPS = ("tcp", "udp", "unix-socket", "socketpair")


@dataclass(frozen=True)
class Probe:
    op: str
    path: str  # a path, or host:port for tcp/udp

    def to_json(self) -> dict[str, str]:
        return {"op": self.op, "path": self.path}


@dataclass(frozen=True)
class Prediction:
    allowed: bool
    access: str  # rw / ro / none, or the network mode
    why: str


@dataclass(frozen=True)
class ProbeResult:
    probe: Probe
    predicted: Prediction
    observed: bool
    errno: str | None
    expected_mismatch: bool = False  # legacy pipeline: a documented unenforced path

    @property
    def ok(self) -> bool:
        return self.predicted.allowed == self.observed

    def to_json(self) -> dict[str, Any]:
        return {
            "op": self.probe.op, "path": self.probe.path,
            "predicted": "allowed" if self.predicted.allowed else "denied",
            "observed": "allowed" if self.observed else f"denied ({self.errno})",
            "access": self.predicted.access, "why": self.predicted.why, "ok": self.ok,
            "expected_mismatch": self.expected_mismatch,
        }


def _mount_points(plan: MountPlan) -> set[str]:
    return {op.dest for op in plan.ops if op.kind is not OpKind.REMOUNT_RO}


def _host_writable(path: str) -> bool:
    return os.access(path, os.W_OK, effective_ids=True)


def _sticky_blocks(parent: str, path: str) -> bool:
    """Sticky directories (like /tmp) let only the owner rename or delete an entry."""
    try:
        pst, st = os.stat(parent), os.lstat(path)
    except OSError:
        return False
    uid = os.geteuid()
    return bool(pst.st_mode & stat.S_ISVTX) and uid != 0 and uid not in (st.st_uid, pst.st_uid)


def predict(plan: MountPlan, probe: Probe, mounts: set[str] | None = None) -> Prediction:
    if probe.op in NET_OPS:
        network = plan.policy.network
        allowed = plan.unsandboxed or network is NetworkMode.ON or probe.op in (
            "unix-socket", "socketpair")
        return Prediction(allowed, network.value, f"network {network.value}")
    mounts = _mount_points(plan) if mounts is None else mounts
    ex = plan.explain(probe.path)
    access, path = ex.access, ex.resolved
    why = f"{ex.rule.reason} [{ex.rule.provenance}]"
    if probe.op in ("read", "list", "execute"):
        host_mode = {"read": os.R_OK, "list": os.R_OK | os.X_OK, "execute": os.X_OK}[probe.op]
        ok = access is not Access.NONE and os.access(path, host_mode, effective_ids=True)
        return Prediction(ok, access.value, why)
    if probe.op == "write":
        return Prediction(access is Access.RW and _host_writable(path), access.value, why)
    if probe.op in ("create", "mkdir", "delete"):
        return Prediction(access is Access.RW and _host_writable(path), access.value, why)
    if probe.op == "create-missing":
        parent = os.path.dirname(path)
        ok = access is Access.RW and path not in mounts and _host_writable(parent)
        return Prediction(ok, access.value, why)
    if probe.op == "rename":
        parent = os.path.dirname(path)
        parent_access = plan.rule_for(parent).access
        ok = (access is Access.RW and parent_access is Access.RW and path not in mounts
              and _host_writable(parent) and not _sticky_blocks(parent, path))
        return Prediction(ok, access.value, why)
    raise ValueError(f"unknown probe op {probe.op!r}")


def probes_for_path(path: str) -> list[Probe]:
    """The operations that make sense for what `path` is on the host."""
    try:
        st = os.lstat(path)
    except OSError:
        return [Probe("create-missing", path)]
    if stat.S_ISLNK(st.st_mode):
        real = os.path.realpath(path)
        return probes_for_path(real) if os.path.exists(real) else []
    if stat.S_ISDIR(st.st_mode):
        return [Probe(op, path) for op in ("list", "create", "mkdir", "delete")]
    if stat.S_ISREG(st.st_mode):
        probes = [Probe("read", path), Probe("write", path), Probe("rename", path)]
        if st.st_mode & 0o111 and st.st_size < 1 << 20 and path.startswith(("/usr/bin/", "/bin/")):
            probes.append(Probe("execute", path))
        return probes
    return []


def _children(path: str, limit: int) -> list[str]:
    try:
        with os.scandir(path) as it:
            return sorted(e.path for e in it)[:limit]
    except OSError:
        return []


def sample_paths(plan: MountPlan, n: int, rng: random.Random) -> list[str]:
    """Every carveout, its parent and a child; writable roots; a few system paths; n random."""
    picked: list[str] = []
    for rule in plan.rules:
        if rule.path in ("/", "/dev", "/proc"):
            continue
        picked += [rule.path, os.path.dirname(rule.path)]
        picked += _children(rule.path, 1)
    picked += ["/usr/bin/true", "/etc/hostname", "/etc", "/usr/lib", "/var/log"]
    picked += _random_paths(plan.cwd, n // 2, rng) + _random_paths("/usr", n - n // 2, rng)
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
            if not os.path.isdir(path) or os.path.islink(path):
                break
        out.append(path)
    return out


def build_probes(plan: MountPlan, paths: Iterable[str], net_target: str | None,
                 udp_target: str | None) -> list[Probe]:
    probes = [p for path in paths for p in probes_for_path(path)]
    if net_target:
        probes.append(Probe("tcp", net_target))
    if udp_target:
        probes.append(Probe("udp", udp_target))
    probes += [Probe("unix-socket", "-"), Probe("socketpair", "-")]
    return probes


def compare(
    plan: MountPlan,
    probes: Sequence[Probe],
    answers: Sequence[dict[str, Any]],
    unenforced: Iterable[str] = (),
) -> list[ProbeResult]:
    """Pair each probe with its answer; a missing answer is a failure of the probe run."""
    mounts = _mount_points(plan)
    unenforced = tuple(unenforced)
    by_index = {a["i"]: a for a in answers}
    results = []
    for i, probe in enumerate(probes):
        answer = by_index.get(i, {"ok": False, "errno": "NO-ANSWER"})
        predicted = predict(plan, probe, mounts)
        expected = probe.op not in NET_OPS and any(
            probe.path == u or probe.path.startswith(u + "/") for u in unenforced)
        results.append(ProbeResult(probe, predicted, bool(answer["ok"]), answer["errno"],
                                   expected and predicted.allowed != bool(answer["ok"])))
    return results
