"""Claude Code's sandbox settings (`--claude [SETTINGS]`), merged the way Claude Code merges.

Without SETTINGS: `~/.claude/settings.json`, the project's `.claude/settings.json`, then its
`.claude/settings.local.json` (a later file wins a value; lists from every file are joined).
With SETTINGS: that file alone, in Claude Code's shape (`{"sandbox": {...}}`) or in
sandbox-runtime's (`srt --settings`: `{"filesystem": {...}, "network": {...}}`). Claude Code's
managed settings (`/etc/claude-code/managed-settings.json`) come last, winning, in both of
Claude Code's cases. A project file that turns the sandbox off where the user's own files do
not is named in `AgentSource.unsandboxed_by`: the plan refuses launches.

Claude Code's sandbox: reads everywhere but `denyRead`; writes in the project and `allowWrite`
but not `denyWrite`; network only to `allowedDomains` through its own proxy. sandboxtui cannot
filter by domain: a domain list maps to the proxy mode (traffic only through the proxy that
`*_PROXY` names) and is named as NOT enforced by sandboxtui.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from sandboxtui.core.agents.layers import Layer, fail, json_layer, merge, under
from sandboxtui.core.config import ConfigError, _fs_entry_value, dotted
from sandboxtui.core.policy import (
    PROTECTED_NAMES,
    Access,
    AgentSource,
    Difference,
    FsEntry,
    GitProtection,
    NetworkMode,
    Policy,
    Provenance,
    SandboxMode,
    policy_from,
)

AGENT = "Claude Code"
# What sandbox-runtime never lets a sandboxed command write in the project (its mandatory
# deny list): shell and git configuration that runs code, editor and agent settings.
CLAUDE_PROTECTED = (".git", ".claude", ".vscode", ".idea", ".gitconfig", ".gitmodules",
                    ".bashrc", ".bash_profile", ".zshrc", ".zprofile", ".profile", ".ripgreprc",
                    ".mcp.json")
_FS_KEYS = {"denyRead": Access.NONE, "denyWrite": Access.RO, "allowWrite": Access.RW}


# Claude Code's managed settings (system-wide, highest precedence); the variable moves them for
# tests.
MANAGED_SETTINGS = "/etc/claude-code/managed-settings.json"
MANAGED_VARIABLE = "SANDBOXTUI_CLAUDE_MANAGED_SETTINGS"


def managed_settings(env: Mapping[str, str]) -> str:
    return env.get(MANAGED_VARIABLE) or MANAGED_SETTINGS


def default_settings(cwd: str, env: Mapping[str, str]) -> list[str]:
    home = env.get("HOME") or os.path.expanduser("~")
    return [os.path.join(home, ".claude", "settings.json"),
            os.path.join(cwd, ".claude", "settings.json"),
            os.path.join(cwd, ".claude", "settings.local.json")]


def _join_lists(layers: list[Layer]) -> tuple[Layer, dict[tuple[Any, ...], Provenance]]:
    """Claude Code's merge: a later file wins a value, lists from every file are joined; and
    each list item's origin, the first file that lists it."""
    merged = merge(layers)
    origins: dict[tuple[Any, ...], Provenance] = {}
    for key in merged:
        items: list[Any] = []
        for layer in layers:
            value, prov = layer.get(key, (None, None))
            if isinstance(value, list):
                for v in value:
                    if isinstance(v, str) and (key, v) not in origins and prov is not None:
                        origins[(key, v)] = prov
                items += [v for v in value if v not in items]
        if items:
            merged[key] = (items, merged[key][1])
    return merged, origins


def read_claude(settings: str | None, cwd: str, *, strict: bool = False,
                env: Mapping[str, str] | None = None) -> Policy:
    env = os.environ if env is None else env
    paths = [os.path.abspath(settings)] if settings else [
        p for p in default_settings(cwd, env) if os.path.exists(p)]
    if not paths:
        raise ConfigError("no Claude Code settings found (" + ", ".join(
            default_settings(cwd, env)) + "): nothing says what Claude Code's sandbox allows",
            key="--claude")
    layers = [json_layer(p) for p in paths]
    srt = settings is not None and not any(k[0] == "sandbox" for k in layers[0])
    managed = managed_settings(env)
    if not srt and os.path.exists(managed):
        layers.append(json_layer(managed))
        paths.append(managed)
    merged, origins = _join_lists(layers)
    box = merged if srt else under(merged, ("sandbox",))
    prefix = () if srt else ("sandbox",)
    ignored = [(dotted(k), str(p)) for k, (_, p) in merged.items()
               if not srt and k[0] != "sandbox"]
    values: dict[tuple[str, ...], Any] = {("mode",): SandboxMode.WORKSPACE_WRITE,
                                          ("exclude_slash_tmp",): True}
    provenance: dict[str, Provenance] = {}
    notes: list[Difference] = []
    enabled, prov = box.get(("enabled",), (srt, Provenance("default", "Claude Code's "
                                                            "default (sandbox off)")))
    provenance["sandbox_mode"] = prov
    if enabled is not True:
        values[("mode",)] = SandboxMode.DANGER_FULL_ACCESS
    unsandboxed_by = "" if enabled is True or settings else _project_disables(
        paths, layers, prov, default_settings(cwd, env)[1:])
    entries: list[FsEntry] = []
    for key, (value, p) in box.items():
        name = (*prefix, *key)
        if key[:1] == ("filesystem",) and len(key) == 2 and key[1] in _FS_KEYS:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise fail("expected a list of path strings", name, merged)
            for raw in value:
                entries += _entries(raw, _FS_KEYS[key[1]], origins.get((key if srt else name,
                                                                         raw), p),
                                    cwd, name, merged, notes)
        elif key[:1] == ("network",) and key[1:] in (("allowedDomains",),
                                                    ("allowUnixSockets",)):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise fail("expected a list of strings", name, merged)
        elif key[:1] in (("filesystem",), ("network",)) or key == ("enabled",):
            if key != ("enabled",):
                ignored.append((dotted(name), str(p)))
        else:
            ignored.append((dotted(name), str(p)))
    values[("default_permissions",)] = "claude" if entries else None
    values[("fs_entries",)] = tuple(entries)
    domains, net_prov = box.get(("network", "allowedDomains"), ([], prov))
    values[("network",)] = NetworkMode.PROXY if domains else NetworkMode.OFF
    provenance["sandbox_workspace_write.network_access"] = net_prov
    if domains:
        notes.append(Difference(
            f"allow only {', '.join(domains)} through its own proxy",
            "network only through the proxy that *_PROXY names (proxy mode; it fails closed "
            "without one); the domain list itself is NOT enforced by sandboxtui", True))
    sockets, _ = box.get(("network", "allowUnixSockets"), ([], prov))
    if sockets or box.get(("network", "allowAllUnixSockets"), (False,))[0] is True:
        notes.append(Difference(
            f"let commands connect to the host Unix sockets {', '.join(sockets) or '(all)'}",
            "nothing: host Unix sockets stay unreachable (allowUnixSockets is NOT enforced, "
            "sandboxtui is stricter)", True))
    values[("provenance",)] = provenance
    policy = policy_from(values)
    differences = [
        Difference("let commands read and write .env and .env.* files (it masks nothing by "
                   "default)", "denies them (sensitive_paths = [\".env\", \".env.*\"])", strict),
        Difference("keep only .claude's settings, commands and agents read-only",
                   "keeps all of .claude read-only", True),
        Difference("keep its protected names (.claude, .bashrc, .git hooks and config, ...) "
                   "read-only to depth 3 below the project",
                   "keeps them read-only to depth 3 in every writable root, and a nested "
                   "repository's .git hooks and config at any depth", True),
        Difference("leave the rest of a nested repository's .git writable",
                   "keeps every existing .git at any depth read-only", strict),
        *notes,
    ]
    provenance["sensitive_paths"] = Provenance(
        "--strict" if strict else "builtin",
        "--strict: sandboxtui's default" if strict else "Claude Code masks nothing by default")
    return replace(
        policy, provenance=provenance,
        protected_names=tuple(dict.fromkeys((*CLAUDE_PROTECTED, *PROTECTED_NAMES))),
        protect_git=GitProtection.FULL if strict else GitProtection.CONFIG_AND_HOOKS,
        protect_nested_repos=True, sensitive_paths=Policy().sensitive_paths if strict else (),
        caches=False,
        agent=AgentSource(AGENT, tuple(paths), tuple(ignored), tuple(differences), strict,
                          unsandboxed_by))


def _project_disables(paths: list[str], layers: list[Layer], prov: Provenance,
                      project: list[str]) -> str:
    """The project file(s) that turn the sandbox off where the user's own files (home,
    managed) do not: the one that sets `enabled`, or those that replace the whole `sandbox`."""
    if any(prov.detail == p or prov.detail.startswith(f"{p}:") for p in project):
        return prov.detail
    own = merge([layer for p, layer in zip(paths, layers, strict=True) if p not in project])
    if own.get(("sandbox", "enabled"), (None,))[0] is True:
        return ", ".join(p for p in paths if p in project)
    return ""


def _entries(raw: str, access: Access, prov: Provenance, cwd: str, key: tuple[str, ...],
             merged: Layer, notes: list[Difference]) -> list[FsEntry]:
    """One path of a filesystem list: absolute, `~`, or relative to the project (`./x`, `x`).
    A glob can only deny in sandboxtui: a `denyWrite` glob denies reading too (stricter)."""
    path = raw if raw.startswith(("/", "~")) else os.path.join(cwd, raw)
    path = path.rstrip("/") or "/"
    glob = any(ch in path for ch in "*?[")
    if glob and access is not Access.NONE:
        if access is Access.RW:
            raise fail("allowWrite takes paths, not globs", key, merged)
        notes.append(Difference(f"keep {raw} readable (denyWrite)",
                                f"denies {raw} entirely: a glob can only deny", True))
        access = Access.NONE
    try:
        _fs_entry_value(path, {Access.RO: "read", Access.RW: "write",
                               Access.NONE: "none"}[access])
    except ValueError as exc:
        raise fail(f"{raw!r}: {exc}", key, merged) from None
    return [FsEntry(path, access, prov)]
