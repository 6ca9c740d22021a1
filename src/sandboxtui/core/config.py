"""Config resolution: defaults < file < profile < `-c`, each value keeping its provenance.

Bad input is a `ConfigError` naming the file, line and key; the CLI turns it into exit 2
before anything runs.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any

from sandboxtui.core.globs import check_glob
from sandboxtui.core.outcome import ExitCode, SandboxtuiError
from sandboxtui.core.paths import config_dir
from sandboxtui.core.policy import (
    SETTINGS,
    SPECIAL_PATHS,
    Access,
    FsEntry,
    Policy,
    Provenance,
    Setting,
    check_path,
    policy_from,
)

Key = tuple[str, ...]


class ConfigError(SandboxtuiError):
    """A config problem, located as precisely as we can: `file:line: key: message` (exit 2;
    `message` is the bare message)."""

    exit_code = ExitCode.USAGE
    label = "config error: "

    def __init__(self, message: str, *, origin: str = "", key: str = "") -> None:
        prefix = ": ".join(p for p in (origin, key) if p)
        super().__init__(f"{prefix}: {message}" if prefix else message)
        self.message = message
        self.origin = origin
        self.key = key


# The config schema: every declared key's parser (see `policy.SETTINGS`).
SCHEMA: dict[Key, Setting] = {s.key: s for s in SETTINGS}
SCHEMA_NAMES = [".".join(k) for k in SCHEMA]
_ACCESS_WORDS = {"read": Access.RO, "write": Access.RW, "none": Access.NONE}


def dotted(key: Key) -> str:
    return ".".join(k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else f'"{k}"' for k in key)


def _validate(key: Key, value: Any) -> Any:
    """Validate one flat key; returns the converted value or raises ValueError/KeyError."""
    if key in SCHEMA:
        return SCHEMA[key].parse(value)
    if len(key) == 4 and key[0] == "permissions" and key[2] == "filesystem":
        return _fs_entry_value(key[3], value)
    raise KeyError(dotted(key))


def _fs_entry_value(path: str, value: Any) -> Access:
    if value not in _ACCESS_WORDS:
        raise ValueError(f"expected read, write or none, got {value!r}")
    access = _ACCESS_WORDS[value]
    if access is Access.RW and (path == ":root" or (
            path not in SPECIAL_PATHS and not any(ch in path for ch in "*?[")
            and check_path(path) == "/")):
        raise ValueError('a writable / is no sandbox: use sandbox_mode = "danger-full-access" '
                         "to run unsandboxed, or list the directories that must be writable")
    if path in SPECIAL_PATHS:
        return access
    if path.startswith(":"):
        raise ValueError(f"unknown special path {path!r} (one of {', '.join(SPECIAL_PATHS)})")
    if any(ch in path for ch in "*?["):
        if access is not Access.NONE:
            raise ValueError("a glob entry can only deny (= \"none\")")
        check_glob(path)
        return access
    check_path(path)
    return access


# --- locating keys in a file ------------------------------------------------------------------

_BARE = re.compile(r"[A-Za-z0-9_-]+")


def _scan_key(text: str) -> tuple[list[str], str] | None:
    """Parse a (dotted, possibly quoted) TOML key at the start of `text`."""
    parts: list[str] = []
    i = 0
    while True:
        while i < len(text) and text[i] in " \t":
            i += 1
        if i >= len(text):
            return None
        if text[i] == '"':
            j = i + 1
            buf = []
            while j < len(text) and text[j] != '"':
                if text[j] == "\\" and j + 1 < len(text):
                    buf.append(text[j : j + 2])
                    j += 2
                    continue
                buf.append(text[j])
                j += 1
            if j >= len(text):
                return None
            import tomllib

            try:
                parts.append(tomllib.loads(f'k = "{"".join(buf)}"')["k"])
            except tomllib.TOMLDecodeError:
                return None
            i = j + 1
        elif text[i] == "'":
            j = text.find("'", i + 1)
            if j < 0:
                return None
            parts.append(text[i + 1 : j])
            i = j + 1
        else:
            m = _BARE.match(text, i)
            if not m:
                return None
            parts.append(m.group())
            i = m.end()
        while i < len(text) and text[i] in " \t":
            i += 1
        if i < len(text) and text[i] == ".":
            i += 1
            continue
        return parts, text[i:]


def key_lines(source: str) -> dict[Key, int]:
    """Map each key (and table header) in a TOML document to its 1-based line number."""
    lines: dict[Key, int] = {}
    table: list[str] = []
    for n, raw in enumerate(source.splitlines(), start=1):
        line = raw.strip()
        if line.startswith("["):
            inner = line.lstrip("[")
            scanned = _scan_key(inner)
            if scanned and scanned[1].lstrip().startswith("]"):
                table = scanned[0]
                lines.setdefault(tuple(table), n)
            continue
        scanned = _scan_key(line)
        if scanned and scanned[1].startswith("=") and not scanned[1].startswith("=="):
            lines.setdefault((*table, *scanned[0]), n)
    return lines


# --- flattening and layering ------------------------------------------------------------------


def _is_leaf(key: Key, value: Any) -> bool:
    if not isinstance(value, dict):
        return True
    # `read_access = { ... }` and similar are tables of known leaves; a permissions
    # filesystem table maps paths to words, never nested further.
    return len(key) == 4 and key[0] == "permissions" and key[2] == "filesystem"


def flatten(tree: Mapping[str, Any], prefix: Key = ()) -> dict[Key, Any]:
    out: dict[Key, Any] = {}
    for k, v in tree.items():
        key = (*prefix, k)
        if _is_leaf(key, v):
            out[key] = v
        else:
            out.update(flatten(v, key))
    return out


# One source of settings (the file, a profile, the command line): flat key -> (value, provenance).
Layer = dict[Key, tuple[Any, Provenance]]


def _layer_from_tree(
    tree: Mapping[str, Any], origin: Callable[[Key], Provenance], where: Callable[[Key], str]
) -> tuple[Layer, dict[str, Layer]]:
    """Split a parsed document into its top-level layer and its profiles' layers."""
    top: Layer = {}
    profiles: dict[str, Layer] = {}
    for key, value in flatten(tree).items():
        if key[0] == "profiles":
            if len(key) < 3:
                raise ConfigError("profiles must be tables: [profiles.NAME]", origin=where(key),
                                  key=dotted(key))
            name, inner = key[1], key[2:]
            target = profiles.setdefault(name, {})
            prov_key = inner
        else:
            target, prov_key = top, key
        try:
            converted = _validate(prov_key, value)
        except KeyError:
            raise ConfigError(_unknown(prov_key), origin=where(key), key=dotted(key)) from None
        except ValueError as exc:
            raise ConfigError(str(exc), origin=where(key), key=dotted(key)) from None
        target[prov_key] = (converted, origin(key))
    return top, profiles


def default_config_path(env: Mapping[str, str]) -> str:
    return os.path.join(config_dir(env), "config.toml")


def _file_layer(path: str) -> tuple[Layer, dict[str, Layer]]:
    try:
        with open(path, encoding="utf-8") as fh:
            source = fh.read()
    except OSError as exc:
        raise ConfigError(f"cannot read config: {exc.strerror}", origin=str(path)) from None
    except UnicodeDecodeError:
        raise ConfigError("config is not valid UTF-8", origin=str(path)) from None
    import tomllib  # here: a launch without a config file or -c does not parse TOML

    try:
        tree = tomllib.loads(source)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"\(at line (\d+)", str(exc))
        origin = f"{path}:{m.group(1)}" if m else str(path)
        raise ConfigError(f"invalid TOML: {exc}", origin=origin) from None
    lines = key_lines(source)

    def line_of(key: Key) -> int | None:
        for n in range(len(key), 0, -1):
            if key[:n] in lines:
                return lines[key[:n]]
        return None

    def where(key: Key) -> str:
        n = line_of(key)
        return f"{path}:{n}" if n else str(path)

    def origin(key: Key) -> Provenance:
        return Provenance("file", where(key))

    return _layer_from_tree(tree, origin, where)


def _unknown(key: Key) -> str:
    """"unknown key", with the declared key it most likely meant."""
    import difflib

    near = difflib.get_close_matches(".".join(key), SCHEMA_NAMES, n=1, cutoff=0.6)
    return f"unknown key (did you mean {near[0]}?)" if near else "unknown key"


def _overrides_layer(overrides: Iterable[str]) -> tuple[Layer, dict[str, Layer]]:
    top: Layer = {}
    profiles: dict[str, Layer] = {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError("expected KEY=VALUE", origin="-c", key=item)
        import tomllib
        key_text, value_text = item.split("=", 1)
        try:
            tree = tomllib.loads(f"{key_text.strip()} = {value_text.strip()}")
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(
                f"value is not TOML ({exc}); quote strings, e.g. -c {key_text.strip()}='\"...\"'",
                origin="-c", key=key_text.strip(),
            ) from None
        layer, profs = _layer_from_tree(
            tree, lambda k, item=item: Provenance("-c", f"-c {item}"), lambda k: "-c"
        )
        top.update(layer)
        for name, pl in profs.items():
            profiles.setdefault(name, {}).update(pl)
    return top, profiles


# --- building the policy ----------------------------------------------------------------------


def resolve(
    *,
    config_path: str | os.PathLike[str] | None = None,
    profile: str | None = None,
    sandbox_mode: str | None = None,
    overrides: Iterable[str] = (),
    env: Mapping[str, str] | None = None,
) -> Policy:
    """Resolve the effective policy from the config file, profile, `-s` and `-c`."""
    env = os.environ if env is None else env
    explicit = config_path is not None
    path = os.fspath(config_path) if config_path is not None else default_config_path(env)
    if explicit or os.path.exists(path):
        file_layer, file_profiles = _file_layer(path)
    else:
        file_layer, file_profiles = {}, {}
    cli_layer, cli_profiles = _overrides_layer(overrides)
    if sandbox_mode is not None:
        try:
            mode = SCHEMA[("sandbox_mode",)].parse(sandbox_mode)
        except ValueError as exc:
            raise ConfigError(str(exc), origin="--sandbox") from None
        cli_layer[("sandbox_mode",)] = (mode, Provenance("-c", f"--sandbox {sandbox_mode}"))

    profiles = dict(file_profiles)
    for name, layer in cli_profiles.items():
        profiles[name] = {**profiles.get(name, {}), **layer}

    if profile is None:
        chosen = cli_layer.get(("profile",)) or file_layer.get(("profile",))
        profile = chosen[0] if chosen else None
    layers = [file_layer]
    if profile is not None:
        if profile not in profiles:
            known = ", ".join(sorted(profiles)) or "none defined"
            raise ConfigError(f"unknown profile {profile!r} (profiles: {known})", key="profile")
        layers.append({k: (v, Provenance("profile", f"profile {profile} ({p})"))
                       for k, (v, p) in profiles[profile].items()})
    layers.append(cli_layer)

    merged: Layer = {}
    for layer in layers:
        merged.update(layer)
    policy = build_policy(merged, profile)
    if explicit or os.path.exists(path):
        policy = replace(policy, config_file=os.path.realpath(path))
    return policy


def build_policy(merged: Mapping[Key, tuple[Any, Provenance]], profile: str | None) -> Policy:
    """The policy of the merged layers: each declared key's value, or its declared default."""
    provenance = {dotted(k): p for k, (_, p) in merged.items()}
    selected = merged[("default_permissions",)][0] if ("default_permissions",) in merged else None
    sets = sorted({k[1] for k in merged if k[0] == "permissions"})
    if selected is None and sets:
        raise ConfigError(
            f"permissions sets are defined ({', '.join(sets)}) but none is selected: "
            "set default_permissions",
            origin=str(merged[next(k for k in merged if k[0] == "permissions")][1]),
            key="default_permissions",
        )
    if selected is not None and selected not in sets:
        raise ConfigError(
            f"default_permissions names {selected!r}, but no [permissions.{selected}.filesystem] "
            "is defined",
            origin=str(merged[("default_permissions",)][1]),
            key="default_permissions",
        )
    entries = tuple(
        FsEntry(k[3], v, p)
        for k, (v, p) in sorted(merged.items())
        if k[0] == "permissions" and k[1] == selected
    )
    values = {SCHEMA[k].attr: v for k, (v, _) in merged.items() if k in SCHEMA}
    return policy_from({**values, ("profile",): profile, ("fs_entries",): entries,
                        ("provenance",): provenance})


def settings_table(policy: Policy) -> list[tuple[str, Any, str]]:
    """(key, value, provenance) for every config key, in the config file's own terms: the key
    as written (a filesystem entry under its permission set's name), the value as TOML would
    hold it (None where the key is unset). `plan --json` gives the values as they are; the
    Settings panel shows them as TOML text (`toml_text`)."""
    rows = [(s.name, s.value_in(policy), str(policy.source(s.name))) for s in SETTINGS]
    words = {Access.RO: "read", Access.RW: "write", Access.NONE: "none"}
    rows += [
        (f"permissions.{policy.default_permissions}.filesystem.{json.dumps(e.path)}",
         words[e.access], str(e.provenance))
        for e in policy.fs_entries
    ]
    return rows


def toml_text(value: Any) -> str:
    """A value as the config file writes it (a bare string for readability): `true`,
    `["a", "b"]`, `{ k = 1 }`; `(not set)` for None."""
    if value is None:
        return "(not set)"
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(json.dumps(v) if isinstance(v, str) else toml_text(v)
                               for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {json.dumps(v) if isinstance(v, str) else toml_text(v)}"
                                for k, v in value.items()) + " }"
    return str(value)


# The tables whose keys are names the user chooses, read by `_layer_from_tree` and
# `build_policy`: the README's config table ends with them.
_TABLES = (
    ("[permissions.NAME.filesystem]",
     '`"PATH" = "read" | "write" | "none"`; PATH is absolute, `~`, a special path (`:root`, '
     "`:minimal`, `:workspace_roots`, `:tmpdir`, `:slash_tmp`) or a glob (deny only, see below). "
     "The most specific path wins; on a tie `none` > `write` > `read`; `\":root\"` (or `\"/\"`) "
     '`= "write"` is a config error: use `danger-full-access`'),
    ("[profiles.NAME]", "any of the keys above, applied when the profile is selected"),
)


def config_reference() -> str:
    """The README's config table, generated from the declared keys (a test keeps them equal)."""
    defaults = Policy()
    rows = ["| key | default | meaning |", "|---|---|---|"]
    for s in SETTINGS:
        key = f"[{'.'.join(s.key[:-1])}] {s.key[-1]}" if len(s.key) > 1 else s.name
        value = s.value_in(defaults)
        default = "unset" if value is None else f"`{json.dumps(value)}`"
        rows.append(f"| `{key}` | {default} | {_escape_bars(s.doc)} |")
    rows += [f"| `{table}` | none | {_escape_bars(doc)} |" for table, doc in _TABLES]
    return "\n".join(rows) + "\n"


def _escape_bars(text: str) -> str:
    return text.replace("|", "\\|")
