"""Repositories a sandboxed command created or changed: neutralised after the run (SPEC §3).

A command may `git init` or `git clone` inside its writable roots, and that must keep working
inside. But git on the host later runs what a repository's config and hooks name
(`core.fsmonitor` on every `git status`, `core.hooksPath`, `!` aliases, filters, ...): a
command could plant code that the user's next host `git` runs unsandboxed. So the launcher
snapshots the repositories under the walked writable roots before the run (`snapshot`, from
the plan's own walk), and after it (`neutralise`), in every repository that appeared or whose
config or hooks changed, removes the code-running settings the run added (with `git config
--file F --unset-all`, which reads that one file and runs nothing of the repository's) and
renames aside the executable hooks that appeared or changed (git no longer finds them); what
the user had before stays. What was done is returned, one line per action, for `run`'s stderr,
the audit log and the TUI.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import subprocess
import time
from dataclasses import dataclass

GIT_DIR = ".git"
DISABLED_SUFFIX = ".sandboxtui-disabled"

# Config keys (lower-cased section and key; the subsection kept) whose value git runs, or that
# make git read another file (includes) or run hooks from elsewhere.
_RUNS_CODE = re.compile(
    r"^(core\.(fsmonitor|hookspath|sshcommand|pager|editor|askpass|gitproxy"
    r"|alternaterefscommand)"
    r"|include\.path|includeif\..*\.path"
    r"|credential\.(.*\.)?helper"
    r"|filter\..*\.(clean|smudge|process)"
    r"|diff\.external|diff\..*\.(textconv|command)"
    r"|merge\..*\.driver"
    r"|gpg\.program|gpg\..*\.program"
    r"|sequence\.editor|pager\..*"
    r"|remote\..*\.(uploadpack|receivepack)|uploadpack\.packobjectshook"
    r"|(difftool|mergetool|man|browser)\..*\.(cmd|path)|web\.browser"
    r"|sendemail\..*|tar\..*\.command|interactive\.difffilter)$")
# Keys that run code only with a `!` value.
_BANG = re.compile(r"^(alias\..*|submodule\..*\.update)$")


Signature = tuple[tuple[str, int, int, int, int], ...]  # (path, ino, mtime, size, mode)
_CONFIGS = ("config", "config.worktree")
_MAX_CONFIG = 1 << 20


@dataclass(frozen=True)
class Snapshot:
    """For each repository's git directory: a signature of its config and hooks; and what
    its config files held, so that only what the command added is removed."""

    repos: dict[str, Signature]
    configs: dict[str, bytes]


@dataclass(frozen=True)
class Bounds:
    max_depth: int = 32
    max_entries: int = 200_000
    max_seconds: float = 2.0


def _within(path: str, roots: list[str]) -> bool:
    """Only what a sandbox could write is ever touched: a `gitdir:` line naming a host
    directory elsewhere must not make the launcher edit it."""
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def _git_dirs(roots: list[str], bounds: Bounds) -> list[str]:
    """The git directories (a `.git` directory, or what a `.git` file's `gitdir:` names) at
    any depth under each root, without following symlinks; only those that lie (resolved)
    inside the roots."""
    tops = [os.path.realpath(r) for r in roots]
    found: list[str] = []
    seen, start = 0, time.monotonic()
    for root in roots:
        stack = [(root, 0)]
        while stack and seen < bounds.max_entries and time.monotonic() - start \
                < bounds.max_seconds:
            directory, depth = stack.pop()
            try:
                with os.scandir(directory) as it:
                    entries = list(it)
            except OSError:
                continue
            seen += len(entries)
            for entry in entries:
                try:
                    is_dir = entry.is_dir(follow_symlinks=False)
                except OSError:
                    continue
                if entry.name == GIT_DIR:
                    git_dir = _git_dir_of(directory, tops)
                    if git_dir is not None:
                        found.append(git_dir)
                elif is_dir and depth + 1 < bounds.max_depth:
                    stack.append((entry.path, depth + 1))
    return list(dict.fromkeys(found))


def _git_dir_of(repo: str, tops: list[str]) -> str | None:
    """The git directory of the repository at `repo` (resolved), if it lies in `tops`."""
    path = os.path.join(repo, GIT_DIR)
    git_dir = path if os.path.isdir(path) and not os.path.islink(path) else _gitdir_of(path)
    if git_dir is None or not _within(os.path.realpath(git_dir), tops):
        return None
    return os.path.realpath(git_dir)


def _gitdir_of(git_file: str) -> str | None:
    """The directory a `.git` file's `gitdir:` line names (a symlink `.git`: its target)."""
    if os.path.islink(git_file):
        target = os.path.realpath(git_file)
        return target if os.path.isdir(target) else None
    try:
        with open(git_file, encoding="utf-8", errors="replace") as fh:
            line = fh.readline(4096)
    except OSError:
        return None
    if not line.startswith("gitdir:") or not line[7:].strip():
        return None
    target = os.path.realpath(os.path.join(os.path.dirname(git_file), line[7:].strip()))
    return target if os.path.isdir(target) else None


def _repo_dirs(git_dir: str, tops: list[str]) -> list[str]:
    """The git directory, and the common directory of a linked worktree if it lies in `tops`
    (where the config and hooks that apply are)."""
    dirs = [git_dir]
    with contextlib.suppress(OSError), open(os.path.join(git_dir, "commondir"),
                                            encoding="utf-8") as fh:
        common = fh.readline(4096).strip()
        if common:
            real = os.path.realpath(os.path.join(git_dir, common))
            if _within(real, tops):
                dirs.append(real)
    return dirs


def _watched(dirs: list[str]) -> list[str]:
    """The files whose change matters: configs, the hooks directory and its entries."""
    out = []
    for d in dirs:
        out += [os.path.join(d, n) for n in ("config", "config.worktree", "hooks")]
        with contextlib.suppress(OSError):
            out += [os.path.join(d, "hooks", n) for n in sorted(os.listdir(
                os.path.join(d, "hooks")))]
    return out


def _stamp(path: str) -> tuple[int, int, int, int] | None:
    st = _lstat(path)
    return None if st is None else (st.st_ino, st.st_mtime_ns, st.st_size, st.st_mode)


def _signature(dirs: list[str]) -> Signature:
    return tuple((path, *stamp) for path in _watched(dirs)
                 if (stamp := _stamp(path)) is not None)


def snapshot(roots: list[str], repos: tuple[str, ...] | None = None,
             bounds: Bounds = Bounds()) -> Snapshot:
    """The repositories under `roots` and their signatures. `repos`: the directories already
    known to hold a `.git` there (the plan's walk found them), so that no walk is needed;
    None: walk."""
    tops = [os.path.realpath(r) for r in roots]
    dirs = _git_dirs(roots, bounds) if repos is None else [
        d for d in (_git_dir_of(r, tops) for r in repos) if d is not None]
    configs = {}
    for d in dict.fromkeys(dirs):
        for repo_dir in _repo_dirs(d, tops):
            for name in _CONFIGS:
                data = _read_small(os.path.join(repo_dir, name))
                if data is not None:
                    configs[os.path.join(repo_dir, name)] = data
    return Snapshot({d: _signature(_repo_dirs(d, tops)) for d in dict.fromkeys(dirs)}, configs)


def _read_small(path: str) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as fh:
        return fh.read(_MAX_CONFIG) if stat.S_ISREG(os.fstat(fd).st_mode) else None


def neutralise(before: Snapshot, roots: list[str],
               bounds: Bounds = Bounds()) -> tuple[str, ...]:
    """Neutralise every repository that appeared or whose config or hooks changed since
    `before`; one line per thing done."""
    tops = [os.path.realpath(r) for r in roots]
    done: list[str] = []
    for git_dir in _git_dirs(roots, bounds):
        dirs = _repo_dirs(git_dir, tops)
        old = before.repos.get(git_dir)
        if old == _signature(dirs):
            continue
        had = {entry[0]: entry[1:] for entry in old or ()}
        for d in dirs:
            for name in _CONFIGS:
                path = os.path.join(d, name)
                if had.get(path) != _stamp(path):  # appeared or changed during the run
                    done += _clean_config(path, before.configs.get(path))
            done += _disable_hooks(os.path.join(d, "hooks"), had)
    return tuple(dict.fromkeys(done))


def _git_env() -> dict[str, str]:
    """git reading exactly one file: no system or global config, no repository around."""
    return {"PATH": os.environ.get("PATH", os.defpath), "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull, "HOME": "/nonexistent", "LC_ALL": "C"}


def _settings(args: list[str], data: bytes | None = None) -> list[tuple[str, str]] | None:
    """The (key, value) pairs of one config file (`args`: how git names it), as git parses
    it; None when git cannot."""
    try:
        out = subprocess.run(["git", "config", *args, "--null", "--list"], cwd="/",
                             env=_git_env(), capture_output=True, timeout=10, input=data)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    pairs = []
    for item in out.stdout.split(b"\0"):
        key, _, value = item.decode("utf-8", "surrogateescape").partition("\n")
        if key:
            pairs.append((key, value))
    return pairs


def _clean_config(path: str, before: bytes | None) -> list[str]:
    """Remove the code-running settings the command added or changed (what the file held
    before the run, the user's own, stays)."""
    st = _lstat(path)
    if st is None:
        return []
    if not stat.S_ISREG(st.st_mode):
        # A symlinked config could make git edit (and read) any file: move it aside.
        return _move_aside(path, "not a regular file")
    now = _settings(["--file", path])
    if now is None:
        return _move_aside(path, "git cannot parse it")
    had = set(_settings(["--file", "-"], before) or ()) if before is not None else set()
    keys: dict[str, None] = {}
    for key, value in now:
        runs = _RUNS_CODE.match(key) or (_BANG.match(key) and value.startswith("!"))
        if runs and (key, value) not in had:
            keys[key] = None
    done = []
    for key in keys:
        r = subprocess.run(["git", "config", "--file", path, "--unset-all", key], cwd="/",
                           env=_git_env(), capture_output=True, timeout=10)
        if r.returncode not in (0, 5):  # 5: already gone (a bang alias next to a plain one)
            return [*done, *_move_aside(path, f"cannot remove {key}")]
        done.append(f"removed {key} from {path}")
    return done


def _disable_hooks(hooks: str, had: dict[str, tuple[int, int, int, int]]) -> list[str]:
    """Move aside the executable hooks that appeared or changed (`had`: their signatures
    before the run)."""
    st = _lstat(hooks)
    if st is not None and not stat.S_ISDIR(st.st_mode):
        if had.get(hooks) == _stamp(hooks):
            return []  # the user's own (say, a symlink to shared hooks)
        return _move_aside(hooks, "a hooks directory that is not a directory")
    done = []
    try:
        names = sorted(os.listdir(hooks))
    except OSError:
        return []
    for name in names:
        path = os.path.join(hooks, name)
        st = _lstat(path)
        if st is None or name.endswith((".sample", DISABLED_SUFFIX)) or had.get(path) == \
                _stamp(path):
            continue
        if stat.S_ISLNK(st.st_mode) or (stat.S_ISREG(st.st_mode) and st.st_mode & 0o111):
            done += _move_aside(path, "hook")
    return done


def _move_aside(path: str, why: str) -> list[str]:
    aside = path + DISABLED_SUFFIX
    try:
        os.replace(path, aside)
    except OSError as exc:
        return [f"could not disable {path} ({why}): {exc.strerror}"]
    return [f"disabled {path} ({why}): now {os.path.basename(aside)}"]


def _lstat(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except OSError:
        return None
