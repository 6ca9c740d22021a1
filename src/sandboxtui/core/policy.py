"""The sandbox policy as plain, frozen data.

A `Policy` is what the user asked for, after config resolution; it says nothing about the
filesystem. The planner (`plan.py`) turns it into mount operations for one cwd.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


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
# Protected names that are directories when present: a missing one is blocked by an empty,
# read-only directory, which git ("not a git repository", it goes on up) and rg take for
# nothing there. The other missing protected names (`config`, `config.worktree`) are files:
# they get an empty file.
PLACEHOLDER_DIR_NAMES = (*PROTECTED_NAMES, "hooks", "info", "modules", "worktrees",
                         "rebase-merge", "rebase-apply")


@dataclass(frozen=True)
class ReadAccess:
    restricted: bool = False
    include_platform_defaults: bool = True
    readable_roots: tuple[str, ...] = ()


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
class Limits:
    cpu_seconds: int | None = None
    address_space: int | None = None
    open_files: int | None = None
    processes: int | None = None
    file_size: int | None = None

    def items(self) -> list[tuple[str, int]]:
        return [(k, v) for k, v in vars(self).items() if v is not None]


@dataclass(frozen=True)
class Policy:
    mode: SandboxMode = SandboxMode.WORKSPACE_WRITE
    writable_roots: tuple[str, ...] = ()
    network: NetworkMode = NetworkMode.OFF
    exclude_tmpdir_env_var: bool = False
    exclude_slash_tmp: bool = False
    read_access: ReadAccess = ReadAccess()
    fs_entries: tuple[FsEntry, ...] = ()
    sensitive_paths: tuple[str, ...] = (".env", ".env.*")
    protect_git: GitProtection = GitProtection.FULL
    caches: bool = True  # a per-workspace cache directory, writable inside (workspace-write)
    precheck_mode: PrecheckMode = PrecheckMode.ASK
    use_legacy_landlock: bool = False
    limits: Limits = Limits()
    system_bwrap: str = "/usr/bin/bwrap"
    env_passthrough: tuple[str, ...] = ()
    profile: str | None = None
    config_file: str | None = None  # the config file that was read, if any
    # Dotted config key -> where its value came from.
    provenance: dict[str, Provenance] = field(default_factory=dict, compare=False, hash=False)

    def source(self, key: str) -> Provenance:
        return self.provenance.get(key, DEFAULT)
