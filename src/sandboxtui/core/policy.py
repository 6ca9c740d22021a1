"""The sandbox policy as plain, frozen data, and the one declaration of every config key.

A `Policy` is what the user asked for, after config resolution; it says nothing about the
filesystem. The planner (`plan.py`) turns it into mount operations for one cwd.

Each config key is declared once, as the `Policy` (or `ReadAccess`, `Limits`) field that carries
it: `setting(...)` gives its TOML name, parser, documentation and display form, the field its
type and default. `SETTINGS` lists them; the config schema, the policy builder, the Settings
panel, `plan --json`'s settings and the README's config table are all derived from it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from enum import Enum, StrEnum
from functools import reduce
from typing import Any, NamedTuple

from sandboxtui.core.globs import check_glob


class SandboxMode(StrEnum):
    READ_ONLY = "read-only"
    WORKSPACE_WRITE = "workspace-write"
    DANGER_FULL_ACCESS = "danger-full-access"


class Access(StrEnum):
    """Effective access to a path: the order is the tie-break order (none beats write)."""

    RW = "rw"
    RO = "ro"
    NONE = "none"


class PrecheckMode(StrEnum):
    ASK = "ask"
    BLOCK = "block"
    OFF = "off"


class GitProtection(StrEnum):
    """How much of a repository's `.git` stays read-only inside a writable root."""

    FULL = "full"  # the whole `.git`: no commits inside
    CONFIG_AND_HOOKS = "config-and-hooks"  # only what makes git run code: commits work


# The parts of a `.git` directory through which git runs code or reads configuration (hooks,
# config and its per-worktree twin, info/ with attributes selecting filters, a `commondir`
# redirecting the config, submodules' and worktrees' own git directories, and a stopped
# rebase's todo list, whose `exec` lines the host's `git rebase --continue` runs): the
# read-only set under `protect_git = "config-and-hooks"`. Each missing one is blocked from
# being created, except `commondir`: any file there, even an empty one, makes git fail
# ("failed to read commondir"), so a missing one stays creatable, and after the run the
# launcher moves aside one that appeared and leads outside the writable roots.
GIT_CODE_PATHS = ("config", "config.worktree", "commondir", "hooks", "info", "modules",
                  "worktrees", "rebase-merge", "rebase-apply")
GIT_UNBLOCKABLE = ("commondir",)


class NetworkMode(StrEnum):
    OFF = "off"
    ON = "on"
    PROXY = "proxy"


@dataclass(frozen=True)
class Provenance:
    """Where a resolved value came from: shown next to every value and rule."""

    source: str  # "default" | "file" | "profile" | "-c" | "builtin"
    detail: str = ""

    def __str__(self) -> str:
        return self.detail if self.detail else self.source


DEFAULT = Provenance("default")
BUILTIN = Provenance("builtin")

# Special paths usable in split filesystem entries.
SPECIAL_PATHS = (":root", ":minimal", ":workspace_roots", ":tmpdir", ":slash_tmp")

# Paths a process needs to run; `:minimal` and `include_platform_defaults` expand to these.
PLATFORM_DEFAULTS = (
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/etc",
    "/nix/store",
)

PROTECTED_NAMES = (".git", ".codex", ".agents")
# Protected names (and Codex's `.aws`) that are directories when present: a missing one is
# blocked by an empty, read-only directory, which git ("not a git repository", it goes on up)
# and rg take for nothing there. The other missing protected names (`config`,
# `config.worktree`) are files: they get an empty file.
PLACEHOLDER_DIR_NAMES = (*PROTECTED_NAMES, ".aws", "hooks", "info", "modules", "worktrees",
                         "rebase-merge", "rebase-apply")


# --- config keys: parsers, display, declaration ---------------------------------------------
# A parser turns a TOML value into a field value, or raises ValueError saying what it expected
# (the config layer adds the file, line and key).


def _expect(kind: type, label: str) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if isinstance(value, bool) and kind is not bool:
            raise ValueError(f"expected {label}, got a boolean")
        if not isinstance(value, kind):
            raise ValueError(f"expected {label}, got {type(value).__name__} {value!r}")
        return value

    return check


_BOOL = _expect(bool, "true or false")
_STR = _expect(str, "a string")


def choice(enum: type[StrEnum]) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        choices = [m.value for m in enum]
        if value not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {value!r}")
        return enum(value)

    return check


def check_path(value: Any) -> str:
    """An absolute or `~` path; relative paths and NUL bytes are refused."""
    if not isinstance(value, str):
        raise ValueError(f"expected a path string, got {type(value).__name__}")
    if "\0" in value:
        raise ValueError("path contains a NUL byte")
    if value == "":
        raise ValueError("path is empty")
    expanded = os.path.expanduser(value)
    if not os.path.isabs(expanded):
        raise ValueError(f"path must be absolute or start with ~, got {value!r}")
    return os.path.normpath(expanded)


def _path_list(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ValueError(f"expected a list of paths, got {type(value).__name__}")
    return tuple(check_path(v) for v in value)


def _str_list(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError("expected a list of strings")
    for v in value:
        if "\0" in v or v == "":
            raise ValueError(f"invalid entry {v!r}")
    return tuple(value)


def _glob_list(value: Any) -> tuple[str, ...]:
    globs = _str_list(value)
    for g in globs:
        check_glob(g)  # GlobError is a ValueError: file, line and key are added by the caller
    return globs


def _limit(value: Any) -> int:
    _expect(int, "a non-negative integer")(value)
    if value < 0:
        raise ValueError(f"expected a non-negative integer, got {value}")
    return value


def _network(value: Any) -> NetworkMode:
    """`network_access`: true, false, or "proxy" (network only through configured proxies)."""
    if isinstance(value, bool):
        return NetworkMode.ON if value else NetworkMode.OFF
    if value == NetworkMode.PROXY.value:
        return NetworkMode.PROXY
    raise ValueError(f'expected true or false, or "proxy", got {value!r}')


_NETWORK_VALUES: dict[NetworkMode, bool | str] = {
    NetworkMode.ON: True, NetworkMode.OFF: False, NetworkMode.PROXY: "proxy"}


def _restricted(value: Any) -> bool:
    """`read_access.mode`: "full" or "restricted", carried as `ReadAccess.restricted`."""
    if value not in ("full", "restricted"):
        raise ValueError(f"expected one of full, restricted, got {value!r}")
    return value == "restricted"


def toml_value(value: Any) -> Any:
    """A field value as the TOML value that reads back as it: enums by value, tuples as lists."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple):
        return [toml_value(v) for v in value]
    return value


class Setting(NamedTuple):
    """One config key. Declared with `setting()` on the field that carries it, which gives the
    key its type and default; `SETTINGS` fills in `attr`. (A NamedTuple: `sandboxtui run`
    imports this module, and a tuple class costs a fraction of a dataclass to create.)"""

    key: tuple[str, ...]  # the TOML key: ("sandbox_workspace_write", "network_access")
    parse: Callable[[Any], Any]  # TOML value -> field value, or ValueError
    doc: str  # one line for the README's config table
    show: Callable[[Any], Any] = toml_value  # field value -> the TOML value shown for it
    attr: tuple[str, ...] = ()  # the field's path from Policy: ("read_access", "restricted")

    @property
    def name(self) -> str:
        """The dotted key: what provenance, the Settings panel and `plan --json` are keyed by."""
        return ".".join(self.key)

    def value_in(self, policy: Policy) -> Any:
        """This key's value in `policy`, as TOML would say it."""
        return self.show(reduce(getattr, self.attr, policy))


def setting(key: str, default: Any, parse: Callable[[Any], Any], doc: str,
            show: Callable[[Any], Any] = toml_value) -> Any:
    """A dataclass field that is the config key `key` (dotted)."""
    return field(default=default,
                 metadata={"setting": Setting(tuple(key.split(".")), parse, doc, show)})


@dataclass(frozen=True)
class ReadAccess:
    restricted: bool = setting(
        "read_access.mode", False, _restricted,
        "`full` reads everything; `restricted` only the readable roots (plus the platform "
        "defaults when `include_platform_defaults`)",
        show=lambda restricted: "restricted" if restricted else "full")
    include_platform_defaults: bool = setting(
        "read_access.include_platform_defaults", True, _BOOL,
        "with `restricted`, also read what a process needs to run (`/usr`, `/bin`, `/lib*`, "
        "`/etc`, ...)")
    readable_roots: tuple[str, ...] = setting(
        "read_access.readable_roots", (), _path_list,
        "with `restricted`, the directories that may be read (absolute or `~`)")


@dataclass(frozen=True)
class FsEntry:
    """One `[permissions.NAME.filesystem]` entry: a path (or special path, or deny glob)."""

    path: str
    access: Access
    provenance: Provenance

    @property
    def is_glob(self) -> bool:
        return any(ch in self.path for ch in "*?[")


@dataclass(frozen=True)
class Difference:
    """One place where an agent's own sandbox and sandboxtui's defaults differ: what the agent
    would do, what sandboxtui adds, and whether the plan applies sandboxtui's way."""

    agent_would: str  # "let commands read and write .env files"
    sandboxtui_adds: str  # "denies .env and .env.* (sensitive_paths)"
    applied: bool  # True: sandboxtui's way is in the plan (always, or with --strict)

    @property
    def state(self) -> str:
        return "applied" if self.applied else "not applied: --strict applies it"

    def line(self, agent: str) -> str:
        return f"{agent} would {self.agent_would} / sandboxtui adds: {self.sandboxtui_adds} " \
               f"({self.state})"


@dataclass(frozen=True)
class AgentSource:
    """The agent config a policy was read from (`--codex`, `--claude`): its files, the keys
    that are not sandbox settings (listed once, never errors) and the differences."""

    agent: str  # "Codex" | "Claude Code"
    files: tuple[str, ...]  # the files read, lowest precedence first
    ignored: tuple[tuple[str, str], ...]  # (key, "file:line", and why when not obvious)
    differences: tuple[Difference, ...]
    strict: bool  # sandboxtui's stricter defaults applied on top (--strict)
    # The project file that turns the agent's sandbox off (danger-full-access) where the
    # user's own config does not: its plan refuses every launch (a command could plant it).
    unsandboxed_by: str = ""


@dataclass(frozen=True)
class Limits:
    cpu_seconds: int | None = setting("limits.cpu_seconds", None, _limit,
                                      "the sandboxed command's CPU time, in seconds (`RLIMIT_CPU`)")
    address_space: int | None = setting("limits.address_space", None, _limit,
                                        "its address space, in bytes (`RLIMIT_AS`)")
    open_files: int | None = setting("limits.open_files", None, _limit,
                                     "its open files (`RLIMIT_NOFILE`)")
    processes: int | None = setting("limits.processes", None, _limit,
                                    "its user's processes (`RLIMIT_NPROC`)")
    file_size: int | None = setting("limits.file_size", None, _limit,
                                    "the largest file it may write, in bytes (`RLIMIT_FSIZE`)")

    def items(self) -> list[tuple[str, int]]:
        return [(k, v) for k, v in vars(self).items() if v is not None]


@dataclass(frozen=True)
class Policy:
    """What the user asked for. Each field made with `setting()` is a config key (its one
    declaration); the others are derived by the config layer."""

    mode: SandboxMode = setting(
        "sandbox_mode", SandboxMode.WORKSPACE_WRITE, choice(SandboxMode),
        "`read-only`, `workspace-write` or `danger-full-access` (no sandbox)")
    profile: str | None = setting(
        "profile", None, _STR, "the profile used when `--profile` is not given")
    writable_roots: tuple[str, ...] = setting(
        "sandbox_workspace_write.writable_roots", (), _path_list,
        "extra writable directories (absolute or `~`)")
    network: NetworkMode = setting(
        "sandbox_workspace_write.network_access", NetworkMode.OFF, _network,
        'allow the network (`true`), or only through the configured loopback proxies (`"proxy"`)',
        show=_NETWORK_VALUES.__getitem__)
    exclude_tmpdir_env_var: bool = setting(
        "sandbox_workspace_write.exclude_tmpdir_env_var", False, _BOOL,
        "do not make `$TMPDIR` writable")
    exclude_slash_tmp: bool = setting(
        "sandbox_workspace_write.exclude_slash_tmp", False, _BOOL, "do not make `/tmp` writable")
    read_access: ReadAccess = ReadAccess()
    default_permissions: str | None = setting(
        "default_permissions", None, _STR,
        "which `[permissions.NAME.filesystem]` set applies (required when sets exist)")
    fs_entries: tuple[FsEntry, ...] = ()  # the selected set's entries
    use_legacy_landlock: bool = setting(
        "features.use_legacy_landlock", False, _BOOL, "use the legacy Landlock pipeline")
    sensitive_paths: tuple[str, ...] = setting(
        "sensitive_paths", (".env", ".env.*"), _glob_list,
        "globs (see below) denied under the workspace and writable roots")
    precheck_mode: PrecheckMode = setting(
        "sensitive_path_precheck_mode", PrecheckMode.ASK, choice(PrecheckMode),
        "`ask`, `block` or `off`")
    protect_git: GitProtection = setting(
        "protect_git", GitProtection.FULL, choice(GitProtection),
        "`full` keeps every `.git` inside a writable root read-only (no commits inside); "
        "`config-and-hooks` keeps only what makes git run code read-only (`config`, "
        "`config.worktree`, `hooks/`, `info/`, `modules/`, `worktrees/`, an existing "
        "`commondir`, and `rebase-merge/`/`rebase-apply/`, whose todo list "
        "`git rebase --continue` would run on the host: no rebase can be started or continued "
        "inside), so objects, refs and the index are writable and `git commit` works")
    caches: bool = setting(
        "caches.enabled", True, _BOOL,
        "in `workspace-write` with full read access, bind a cache directory of this workspace's "
        "own (`$XDG_CACHE_HOME/sandboxtui/workspaces/NAME-HASH`) writable inside, and point "
        "`XDG_CACHE_HOME`, `npm_config_cache`, `GOCACHE`, `GOMODCACHE`, `PIP_CACHE_DIR`, "
        "`YARN_CACHE_FOLDER`, `UV_CACHE_DIR` at it")
    system_bwrap: str = setting(
        "system_bwrap", "/usr/bin/bwrap", check_path, "where the system bwrap is looked for")
    env_passthrough: tuple[str, ...] = setting(
        "env_passthrough", (), _str_list, "secret-looking environment variables to pass anyway")
    limits: Limits = Limits()  # resource limits of the sandboxed command
    # An agent's own semantics (`--codex`, `--claude`): its protected names, whether nested
    # repositories' `.git` is protected, and where the policy came from.
    protected_names: tuple[str, ...] = PROTECTED_NAMES
    protect_nested_repos: bool = True
    agent: AgentSource | None = None
    config_file: str | None = None  # the config file that was read, if any
    # Dotted config key -> where its value came from.
    provenance: dict[str, Provenance] = field(default_factory=dict, compare=False, hash=False)

    def source(self, key: str) -> Provenance:
        return self.provenance.get(key, DEFAULT)


def _declared(cls: type, attrs: tuple[str, ...] = ()) -> Iterator[Setting]:
    for f in fields(cls):
        if "setting" in f.metadata:
            yield f.metadata["setting"]._replace(attr=(*attrs, f.name))
        elif is_dataclass(f.default):
            yield from _declared(type(f.default), (*attrs, f.name))


# Every config key, in the order the Settings panel, `plan --json` and the README list them.
SETTINGS: tuple[Setting, ...] = tuple(_declared(Policy))


def policy_from(values: Mapping[tuple[str, ...], Any]) -> Policy:
    """A Policy with each field found in `values` by its path from Policy (a nested one such as
    `("read_access", "restricted")` too); the rest keep their declared defaults."""
    return _with_fields(Policy, values, ())


def _with_fields(cls: type, values: Mapping[tuple[str, ...], Any], attrs: tuple[str, ...]) -> Any:
    kwargs: dict[str, Any] = {}
    for f in fields(cls):
        path = (*attrs, f.name)
        if is_dataclass(f.default):
            kwargs[f.name] = _with_fields(type(f.default), values, path)
        elif path in values:
            kwargs[f.name] = values[path]
    return cls(**kwargs)
