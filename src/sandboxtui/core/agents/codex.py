"""Codex's own sandbox settings (`--codex [CONFIG]`), read the way Codex 0.171 reads them.

Layers, lowest first: `/etc/codex/config.toml`, `$CODEX_HOME/config.toml` (or CONFIG),
`$CODEX_HOME/NAME.config.toml` (`--profile NAME`), the project's `.codex/config.toml` files
from the project root down to the cwd (only when the user config trusts the project; the keys
Codex ignores there are ignored), `-c key=value` (a TOML value, else the literal string), and
`--sandbox MODE`. The sandbox keys become the same `Policy` sandboxtui's own config yields; the
other keys (model, approval_policy, mcp_servers, [tui], ...) are listed as ignored. A project
config that makes it danger-full-access where the user's own layers do not is named in
`AgentSource.unsandboxed_by`: the plan refuses launches.

Legacy settings (`sandbox_mode`, `[sandbox_workspace_write]`) win over `default_permissions`
when `sandbox_mode` is set anywhere (Codex: the two do not compose). A permission profile
(`[permissions.NAME]`, `extends` down to a built-in `:read-only`, `:workspace` or
`:danger-full-access`) becomes filesystem entries: `:project_roots` (and its nested subpaths)
the workspace roots, `none`/`deny` a denial.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import fields, replace
from functools import reduce
from typing import Any

from sandboxtui.core.agents.layers import Key, Layer, fail, flatten, merge, toml_layer, under
from sandboxtui.core.config import SCHEMA, ConfigError, _fs_entry_value, dotted
from sandboxtui.core.policy import (
    PROTECTED_NAMES,
    SETTINGS,
    Access,
    AgentSource,
    Difference,
    FsEntry,
    NetworkMode,
    Policy,
    Provenance,
    SandboxMode,
    check_path,
    policy_from,
)

AGENT = "Codex"
# Codex keeps these read-only in every writable root (codex-rs/protocol permissions.rs), and a
# missing one cannot be created; a nested repository's `.git` stays writable.
CODEX_PROTECTED = (".git", ".codex", ".agents", ".aws")
# Top-level keys Codex ignores in a project's `.codex/config.toml` (credential routing).
PROJECT_IGNORED = ("openai_base_url", "chatgpt_base_url", "model_provider", "model_providers",
                   "profile", "profiles", "experimental_realtime_ws_base_url")
SYSTEM_CONFIG = "/etc/codex/config.toml"
# The keys both Codex and sandboxtui have: read as Codex's wherever they are set. sandboxtui's
# other keys (limits, system_bwrap, ...) apply when given with -c.
CODEX_KEYS = {("sandbox_mode",), ("default_permissions",), ("profile",),
              ("features", "use_legacy_landlock"),
              *(("sandbox_workspace_write", k) for k in ("writable_roots", "network_access",
                                                         "exclude_tmpdir_env_var",
                                                         "exclude_slash_tmp"))}
MODES = ("read-only", "workspace-write", "danger-full-access")
_PROFILE_KEYS = ("description", "extends", "workspace_roots", "filesystem", "network")
_NETWORK_KEYS = ("enabled", "proxy_url", "enable_socks5", "socks_url", "enable_socks5_udp",
                 "allow_upstream_proxy", "dangerously_allow_non_loopback_proxy",
                 "dangerously_allow_all_unix_sockets", "mode", "domains", "unix_sockets",
                 "allow_local_binding")
Ignored = list[tuple[str, str]]  # (key, "file:line", and why when not obvious)
_ACCESS = {"read": "read", "write": "write", "none": "none", "deny": "none"}
# The built-in permission profiles, as the TOML a user would write for them.
BUILTINS: dict[str, dict[str, Any] | None] = {
    ":read-only": {"filesystem": {":root": "read"}},
    ":workspace": {"filesystem": {":root": "read", ":project_roots": "write",
                                  ":tmpdir": "write", ":slash_tmp": "write"}},
    ":danger-full-access": None,
}


def codex_home(env: Mapping[str, str]) -> str:
    home = env.get("CODEX_HOME")
    return home if home else os.path.join(env.get("HOME") or os.path.expanduser("~"), ".codex")


def default_config(env: Mapping[str, str]) -> str:
    return os.path.join(codex_home(env), "config.toml")


def codex_profiles(config: str | os.PathLike[str]) -> tuple[str, ...]:
    """The profiles `--profile NAME` can select: the `NAME.config.toml` beside the config."""
    try:
        names = os.listdir(os.path.dirname(os.fspath(config)) or ".")
    except OSError:
        return ()
    return tuple(sorted(n.removesuffix(".config.toml") for n in names
                        if n.endswith(".config.toml") and n != ".config.toml"))


def _leaf(key: Key, value: dict[str, Any]) -> bool:
    """A scoped filesystem entry (`":project_roots" = { "." = "write" }`) is one value."""
    return len(key) == 4 and key[0] == "permissions" and key[2] == "filesystem"


def read_codex(
    config_path: str | None,
    cwd: str,
    *,
    profile: str | None = None,
    sandbox_mode: str | None = None,
    overrides: Iterable[str] = (),
    strict: bool = False,
    env: Mapping[str, str] | None = None,
) -> Policy:
    """The policy Codex would enforce in `cwd` (plus sandboxtui's stricter defaults: strict)."""
    env = os.environ if env is None else env
    user = os.path.abspath(config_path) if config_path else default_config(env)
    layers: list[Layer] = []
    files: list[str] = []
    ignored: Ignored = []
    for path, required in ((SYSTEM_CONFIG, False), (user, config_path is not None),
                           *([(os.path.join(os.path.dirname(user), f"{profile}.config.toml"),
                               True)] if profile else [])):
        if required or os.path.exists(path):
            layers.append(toml_layer(path, _leaf))
            files.append(path)
    base = merge(layers)
    if ("profile",) in base:
        name = base[("profile",)][0]
        raise fail(f'legacy `profile = "{name}"` config is no longer supported; use '
                   f"`--profile {name}` with `{name}.config.toml` instead", ("profile",), base)
    own_layers = list(layers)
    projects = _project_configs(cwd, base, user, ignored)
    for path in projects:
        layer = toml_layer(path, _leaf)
        for key in [k for k in layer if k[0] in PROJECT_IGNORED]:
            ignored.append((dotted(key), f"{layer.pop(key)[1]}: ignored by Codex in a "
                            "project config"))
        layers.append(layer)
        files.append(path)
    cli = _overrides(overrides, sandbox_mode)
    own = {k: cli.pop(k) for k in list(cli) if k in SCHEMA and k not in CODEX_KEYS}
    layers.append(cli)
    merged = merge(layers)
    policy, notes = _policy(merged, cwd, env, ignored)
    unsandboxed_by = ", ".join(projects) if projects and policy.mode is \
        SandboxMode.DANGER_FULL_ACCESS and not _own_danger(own_layers + [cli], cwd, env) else ""
    return _with_own_settings(_with_semantics(policy, files, ignored, notes, strict,
                                              unsandboxed_by), own)


def _own_danger(layers: list[Layer], cwd: str, env: Mapping[str, str]) -> bool:
    """Do the user's own layers (without the project's) say danger-full-access?"""
    try:
        return _policy(merge(layers), cwd, env, [])[0].mode is SandboxMode.DANGER_FULL_ACCESS
    except ConfigError:  # e.g. a profile only the project defines
        return False


def _with_own_settings(policy: Policy, own: Layer) -> Policy:
    """sandboxtui's own keys given with `-c` (limits, system_bwrap, protect_git, ...: keys
    Codex does not have) on top, as sandboxtui's config would set them."""
    values: dict[tuple[str, ...], Any] = {}
    provenance = dict(policy.provenance)
    for key, (value, prov) in own.items():
        try:
            values[SCHEMA[key].attr] = SCHEMA[key].parse(value)
        except ValueError as exc:
            raise ConfigError(str(exc), origin="-c", key=dotted(key)) from None
        provenance[dotted(key)] = prov
    if not values:
        return policy
    changed = policy_from({**{s.attr: reduce(getattr, s.attr, policy) for s in SETTINGS},
                           **values})
    return replace(policy, **{f.name: getattr(changed, f.name) for f in fields(Policy)
                              if f.name in {a[0] for a in values}}, provenance=provenance)


def _project_configs(cwd: str, base: Layer, user: str, ignored: Ignored) -> list[str]:
    """The project's `.codex/config.toml` files, root first, when the project is trusted."""
    cwd = os.path.realpath(cwd)
    dirs = [cwd]
    while not os.path.exists(os.path.join(dirs[-1], ".git")) and dirs[-1] != "/":
        dirs.append(os.path.dirname(dirs[-1]))
    root = dirs[-1] if os.path.exists(os.path.join(dirs[-1], ".git")) else cwd
    dirs = dirs[:dirs.index(root) + 1]
    found = [p for d in reversed(dirs) if os.path.isfile(p := os.path.join(d, ".codex",
                                                                           "config.toml"))
             and os.path.realpath(p) != os.path.realpath(user)]
    trust = [base.get(("projects", d, "trust_level"), (None,))[0] for d in (cwd, root)]
    if found and "trusted" not in trust:
        ignored += [("(the whole file)", f"{p}: Codex reads a project config only in a trusted "
                     f'project: [projects."{root}"] trust_level = "trusted"') for p in found]
        return []
    return found


def _overrides(overrides: Iterable[str], sandbox_mode: str | None) -> Layer:
    """Codex's `-c key=value` (a TOML value, else the literal string) and `--sandbox`."""
    import tomllib

    from sandboxtui.core.config import _scan_key

    layer: Layer = {}
    for item in overrides:
        key_text, sep, value_text = item.partition("=")
        scanned = _scan_key(key_text)
        if not sep or scanned is None or scanned[1].strip():
            raise ConfigError("expected KEY=VALUE (a dotted key)", origin="-c", key=item)
        try:
            value = tomllib.loads(f"v = {value_text.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            value = value_text.strip()  # Codex: what is not TOML is the literal string
        key = tuple(scanned[0])
        prov = Provenance("-c", f"-c {item}")
        tree = flatten(value, _leaf, key) if isinstance(value, dict) and not _leaf(key, value) \
            else {key: value}
        layer.update({k: (v, prov) for k, v in tree.items()})
    if sandbox_mode is not None:
        layer[("sandbox_mode",)] = (sandbox_mode, Provenance("-c", f"--sandbox {sandbox_mode}"))
    return layer


def _policy(merged: Layer, cwd: str, env: Mapping[str, str], ignored: Ignored
            ) -> tuple[Policy, list[Difference]]:
    sandbox = {k: v for k, v in merged.items() if k[0] in ("sandbox_mode",
                                                          "sandbox_workspace_write",
                                                          "default_permissions", "permissions")
               or k in (("features", "use_legacy_landlock"), ("features", "network_proxy"))}
    ignored += [(dotted(k), str(p)) for k, (_, p) in merged.items() if k not in sandbox]
    values: dict[tuple[str, ...], Any] = {}
    provenance: dict[str, Provenance] = {}
    if ("features", "use_legacy_landlock") in merged:
        value, prov = merged[("features", "use_legacy_landlock")]
        if not isinstance(value, bool):
            raise fail(f"expected true or false, got {value!r}",
                       ("features", "use_legacy_landlock"), merged)
        values[("use_legacy_landlock",)] = value
        provenance["features.use_legacy_landlock"] = prov
    legacy = ("sandbox_mode",) in merged or ("default_permissions",) not in merged
    notes: list[Difference] = []
    if legacy:
        for key, (_, prov) in under(merged, ("permissions",)).items():
            ignored.append((f"permissions.{dotted(key)}", f"{prov}: not applied: Codex uses "
                            "the legacy settings when sandbox_mode is set"))
        if ("default_permissions",) in merged:
            ignored.append(("default_permissions", f"{merged[('default_permissions',)][1]}: "
                            "not applied: sandbox_mode is set (the two do not compose)"))
        _legacy(merged, values, provenance, ignored)
    else:
        ignored += [(f"sandbox_workspace_write.{dotted(k)}", f"{p}: not applied: Codex uses "
                     "the permission profile when sandbox_mode is not set")
                    for k, (_, p) in under(merged, ("sandbox_workspace_write",)).items()]
        _profile(merged, cwd, env, values, provenance, notes)
    values[("provenance",)] = provenance
    return policy_from(values), notes


def _legacy(merged: Layer, values: dict[tuple[str, ...], Any],
            provenance: dict[str, Provenance], ignored: Ignored) -> None:
    mode, prov = merged.get(("sandbox_mode",), ("read-only", Provenance(
        "default", "Codex's default (no sandbox_mode)")))
    if mode not in MODES:
        raise fail(f"unknown variant `{mode}`, expected one of {', '.join(MODES)}",
                   ("sandbox_mode",), merged)
    values[("mode",)] = SandboxMode(mode)
    provenance["sandbox_mode"] = prov
    for key, (value, prov) in under(merged, ("sandbox_workspace_write",)).items():
        name = dotted(("sandbox_workspace_write", *key))
        if ("sandbox_workspace_write", *key) not in CODEX_KEYS:
            ignored.append((name, str(prov)))
            continue
        try:
            if key[0] == "writable_roots":
                if not isinstance(value, list):
                    raise ValueError(f"expected a list of paths, got {value!r}")
                values[("writable_roots",)] = tuple(check_path(v) for v in value)
            elif not isinstance(value, bool):
                raise ValueError(f"expected true or false, got {value!r}")
            elif key[0] == "network_access":
                values[("network",)] = NetworkMode.ON if value else NetworkMode.OFF
            else:
                values[(key[0],)] = value
        except ValueError as exc:
            raise fail(str(exc), ("sandbox_workspace_write", *key), merged) from None
        provenance[name] = prov


def _resolve_profile(merged: Layer, name: str) -> tuple[Layer, list[str]]:
    """The selected profile with its `extends` chain merged (parent first), as a flat layer;
    and the chain's names, selected first."""
    chain: list[str] = []
    layers: list[Layer] = []
    while True:
        if name in chain:
            raise fail("permissions profile inheritance cycle detected: "
                       + " -> ".join([*chain[chain.index(name):], name]),
                       ("permissions", chain[-1], "extends"), merged)
        key = ("permissions", chain[-1], "extends") if chain else ("default_permissions",)
        if not isinstance(name, str):
            raise fail(f"expected a profile name, got {name!r}", key, merged)
        chain.append(name)
        if name.startswith(":"):
            if name not in BUILTINS:
                raise fail(f"unknown built-in profile `{name}` (one of {', '.join(BUILTINS)})",
                           key, merged)
            builtin = BUILTINS[name]
            prov = Provenance("builtin", f"Codex built-in {name}")
            layers.append({("danger",): (True, prov)} if builtin is None else
                          {k: (v, prov) for k, v in flatten(builtin, _leaf).items()})
            break
        profile = under(merged, ("permissions", name))
        if not profile:
            raise fail(f"default_permissions refers to undefined profile `{name}`" if len(chain)
                       == 1 else f"permissions profile `{chain[-2]}` extends undefined profile "
                       f"`{name}`", ("default_permissions",) if len(chain) == 1 else
                       ("permissions", chain[-2], "extends"), merged)
        for key in profile:
            if key[0] not in _PROFILE_KEYS:
                raise fail(f"unknown field `{key[0]}`, expected one of "
                           f"{', '.join(_PROFILE_KEYS)}", key, merged, ("permissions", name))
        layers.append({k: v for k, v in profile.items() if k[0] != "extends"})
        parent = profile.get(("extends",))
        if parent is None:
            break
        name = parent[0]
    return merge(list(reversed(layers))), chain


def _profile(merged: Layer, cwd: str, env: Mapping[str, str],
             values: dict[tuple[str, ...], Any], provenance: dict[str, Provenance],
             notes: list[Difference]) -> None:
    selected, prov = merged[("default_permissions",)]
    provenance["default_permissions"] = prov
    profile, chain = _resolve_profile(merged, selected)
    values[("default_permissions",)] = selected
    if ("danger",) in profile:
        values[("mode",)] = SandboxMode.DANGER_FULL_ACCESS
        provenance["sandbox_mode"] = profile[("danger",)][1]
        return
    values[("mode",)] = SandboxMode.READ_ONLY  # writes come from the entries alone
    provenance["sandbox_mode"] = Provenance("builtin", f"Codex permission profile {selected} "
                                            "(writes from its filesystem entries)")
    where = ("permissions", chain[0])
    roots = [cwd]
    for key, (enabled, p) in under(profile, ("workspace_roots",)).items():
        if not isinstance(enabled, bool):
            raise fail(f"expected true or false, got {enabled!r}", ("workspace_roots", *key),
                       merged, where)
        if enabled:
            try:
                roots.append(check_path(key[0]))
            except ValueError as exc:
                raise fail(str(exc), ("workspace_roots", *key), merged, where) from None
            provenance["sandbox_workspace_write.writable_roots"] = p
    values[("writable_roots",)] = tuple(roots[1:])
    entries: list[FsEntry] = []
    for key, (value, p) in under(profile, ("filesystem",)).items():
        if key == ("glob_scan_max_depth",):
            continue  # the bound of Codex's own glob walk; sandboxtui's walk has its own
        scoped = value.items() if isinstance(value, dict) else [(None, value)]
        for sub, word in scoped:
            if word not in _ACCESS:
                raise fail(f"expected read, write, none or deny, got {word!r}",
                           ("filesystem", *key, *([sub] if sub else [])), merged, where)
            if sub is not None and not _descendant(sub):
                raise fail(f"filesystem subpath `{sub}` must be a descendant path without "
                           "`.` or `..` components", ("filesystem", *key, sub), merged, where)
            for path in _entry_paths(key[0], sub, roots, env):
                try:
                    access = _fs_entry_value(path, _ACCESS[word])
                except ValueError as exc:
                    raise fail(str(exc), ("filesystem", *key), merged, where) from None
                entries.append(FsEntry(path, access, p))
    readable = {e.path for e in entries if e.access is not Access.NONE}
    if ":root" not in readable:
        # An empty root and the entries; `:minimal` as the platform defaults, which also
        # recreate their symlinks (/lib64 -> usr/lib64) in the empty root.
        minimal = [e for e in entries if e.path == ":minimal" and e.access is Access.RO]
        entries = [e for e in entries if e not in minimal]
        values[("read_access", "restricted")] = True
        values[("read_access", "include_platform_defaults")] = bool(minimal)
        provenance["read_access.mode"] = prov
        if minimal:
            provenance["read_access.include_platform_defaults"] = minimal[0].provenance
    values[("fs_entries",)] = tuple(entries)
    network = under(profile, ("network",))
    for key in network:
        if key[0] not in _NETWORK_KEYS:
            raise fail(f"unknown field `{key[0]}`, expected one of {', '.join(_NETWORK_KEYS)}",
                       ("network", *key), merged, where)
    enabled, net_prov = network.get(("enabled",), (False, prov))
    if not isinstance(enabled, bool):
        raise fail(f"expected true or false, got {enabled!r}", ("network", "enabled"), merged,
                   where)
    domains = {k[1]: v for k, (v, _) in network.items() if k[0] == "domains" and len(k) == 2}
    proxied = merged.get(("features", "network_proxy"), (False,))[0] is True
    values[("network",)] = (NetworkMode.OFF if not enabled else NetworkMode.ON if not domains
                            else NetworkMode.PROXY if proxied else NetworkMode.OFF)
    provenance["sandbox_workspace_write.network_access"] = net_prov
    if enabled and domains:
        rules = ", ".join(f"{d} ({v})" for d, v in domains.items())
        notes.append(Difference(
            f"filter the network by its domain rules {rules} through its own proxy"
            if proxied else f"leave the network fully on: its domain rules {rules} need "
            "features.network_proxy",
            "network only through the proxy that *_PROXY names (proxy mode; it refuses to "
            "start without one); the domain rules are NOT enforced by sandboxtui"
            if proxied else "network off: sandboxtui cannot filter by domain, and a domain "
            "list never opens the whole network", applied=True))


def _descendant(sub: str) -> bool:
    """Codex's rule for a scoped entry's subpath: `.` (the path itself), or a relative path
    without `.` or `..` components (it refuses `../x`, `/etc`, `""` and `./x`)."""
    parts = sub.split("/")
    return sub == "." or bool(sub) and not sub.startswith("/") and not any(
        p in (".", "..") for p in parts)


def _entry_paths(key: str, sub: str | None, roots: list[str], env: Mapping[str, str]
                 ) -> list[str]:
    """A filesystem entry's paths in sandboxtui's terms: `:project_roots` is
    `:workspace_roots`; a nested subpath is joined to each path its key names."""
    special = ":workspace_roots" if key in (":project_roots", ":workspace_roots") else key
    if sub is None or sub == ".":
        return [special]
    if special == ":workspace_roots":
        bases = roots
    elif key == ":tmpdir":
        bases = [env["TMPDIR"]] if env.get("TMPDIR") else []
    else:
        bases = [{":root": "/", ":slash_tmp": "/tmp"}.get(key, key)]
    return [os.path.join(os.path.expanduser(b), sub) for b in bases]


def _with_semantics(policy: Policy, files: list[str], ignored: Ignored,
                    notes: list[Difference], strict: bool, unsandboxed_by: str) -> Policy:
    """Codex's semantics (no `.env` masking, its protected names, nested repositories
    writable, no cache directory), or with sandboxtui's stricter defaults on top (strict)."""
    differences = [
        Difference("let commands read and write .env and .env.* files (it masks nothing by "
                   "default)", "denies them (sensitive_paths = [\".env\", \".env.*\"])", strict),
        Difference("leave a nested repository's .git writable (it protects only each writable "
                   "root's own .git, .codex, .agents and .aws)",
                   "keeps every existing .git at any depth read-only", strict),
        Difference("let commands create or change .codex, .agents and .aws in a subdirectory "
                   "of a writable root (it protects them only in the root)",
                   "keeps existing ones read-only to depth 3, and refuses to run unsandboxed "
                   "because of a project's .codex/config.toml", True),
        Difference("let commands write sandboxtui's own config, state and install (it does not "
                   "know them)", "keeps them read-only or hidden", True),
        Difference("let a sandbox started by root open /proc/sys for writing",
                   "keeps the host-global kernel interfaces (/proc/sys, ...) read-only", True),
        *([Difference("let commands create and remove entries in the directories of its empty "
                      "root that hold the readable paths (a throwaway tmpfs)",
                      "keeps those directories read-only", True)]
          if policy.read_access.restricted else []),
        *notes,
    ]
    defaults = Policy()
    semantics = dict(
        protected_names=tuple(dict.fromkeys((*CODEX_PROTECTED, *PROTECTED_NAMES))),
        protect_nested_repos=strict,
        sensitive_paths=defaults.sensitive_paths if strict else (),
        caches=False,
        agent=AgentSource(AGENT, tuple(files), tuple(ignored), tuple(differences), strict,
                          unsandboxed_by))
    provenance = dict(policy.provenance)
    provenance["sensitive_paths"] = Provenance(
        "--strict" if strict else "builtin",
        "--strict: sandboxtui's default" if strict else "Codex masks nothing by default")
    return replace(policy, provenance=provenance, **semantics)
