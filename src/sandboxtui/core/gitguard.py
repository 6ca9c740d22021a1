"""Repositories a sandboxed command created or changed: neutralised after the run.

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

Every change is made through directory descriptors opened one O_NOFOLLOW component at a time
from a writable root: another sandbox still running on the same workspace may swap a `.git` or
`hooks` directory for a symlink at any moment (RENAME_EXCHANGE), and the launcher, perhaps
root, must never rename or rewrite anything outside that workspace. A config is rewritten from a
private copy that git edits, then renamed into place within the held directory.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from sandboxtui.core.paths import is_within, runtime_dir
from sandboxtui.core.plan import _entry_is_dir, _first_line, _lstat

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
    r"|gpg\..*|protocol\..*|url\..*|trailer\..*\.(command|cmd)|remote\..*\.vcs"
    r"|instaweb\..*"
    r"|sequence\.editor|pager\..*"
    r"|remote\..*\.(uploadpack|receivepack)|uploadpack\.packobjectshook"
    r"|(difftool|mergetool|man|browser)\..*\.(cmd|path)|web\.browser"
    r"|sendemail\..*|tar\..*\.command|interactive\.difffilter)$")
# Keys that run code only with a `!` value.
_BANG = re.compile(r"^(alias\..*|submodule\..*\.update)$")


Signature = tuple[tuple[str, int, int, int, int], ...]  # (path, ino, ctime, size, mode)
_CONFIGS = ("config", "config.worktree")
_MAX_CONFIG = 1 << 20


@dataclass(frozen=True)
class Snapshot:
    """For each repository's git directory: a signature of its config and hooks; and what
    its config files held, so that only what the command added is removed."""

    repos: dict[str, Signature]
    configs: dict[str, bytes]
    # `.git` files naming a git directory outside the roots: (ino, ctime, size, mode)
    pointers: dict[str, tuple[int, int, int, int]] = field(default_factory=dict)


@dataclass(frozen=True)
class Bounds:
    max_depth: int = 32
    max_entries: int = 200_000
    max_seconds: float = 2.0


def _within(path: str, roots: list[str]) -> bool:
    """Only what a sandbox could write is ever touched: a `gitdir:` line naming a host
    directory elsewhere must not make the launcher edit it."""
    return any(is_within(path, r) for r in roots)


@dataclass
class _Found:
    """What a walk of the writable roots found."""

    git_dirs: list[str]  # resolved git directories inside the roots (`.git`, bare ones)
    pointers: list[str]  # `.git` files (or symlinks) naming a git directory outside them
    bound: str | None = None  # why the walk stopped early, if it did


def _is_git_dir(names: set[str], entries: list[os.DirEntry[str]]) -> bool:
    """Does a directory with these entries look like a git directory (git's own test: HEAD,
    and objects/ and refs/ here or in the directory its `commondir` names)? A bare repository
    (or a workspace a command turned into one) has no `.git` to find it by, and git discovers
    it all the same."""
    if {"HEAD", "commondir"} <= names:
        return True
    if not {"HEAD", "objects", "refs"} <= names:
        return False
    kinds = {e.name: e for e in entries if e.name in ("objects", "refs")}
    return all(_entry_is_dir(kinds[n]) for n in ("objects", "refs"))


def _git_dirs(roots: list[str], bounds: Bounds) -> _Found:
    """The git directories (a `.git` directory, what a `.git` file's `gitdir:` names, or a
    directory that is itself one) at any depth under each root, without following symlinks;
    only those that lie (resolved) inside the roots. `.git` files naming one outside are
    listed apart: git follows them, the launcher must not edit there."""
    tops = [os.path.realpath(r) for r in roots]
    found = _Found([], [])
    seen, start = 0, time.monotonic()
    for root in roots:
        stack = [(root, 0)]
        while stack:
            if seen >= bounds.max_entries or time.monotonic() - start >= bounds.max_seconds:
                found.bound = f"{seen} entries or {bounds.max_seconds:g} s"
                break
            directory, depth = stack.pop()
            try:
                with os.scandir(directory) as it:
                    entries = list(it)
            except OSError:
                continue
            seen += len(entries)
            names = {e.name for e in entries}
            bare = _is_git_dir(names, entries)
            if bare:
                found.git_dirs.append(os.path.realpath(directory))
            for entry in entries:
                if bare and entry.name in ("objects", "refs"):
                    continue  # its own store: no repositories there
                if entry.name == GIT_DIR:
                    git_dir = _git_dir_of(directory, tops)
                    if git_dir is not None:
                        found.git_dirs.append(git_dir)
                    elif not _entry_is_dir(entry) and _gitdir_of(entry.path) is not None:
                        found.pointers.append(entry.path)
                elif _entry_is_dir(entry):
                    if depth + 1 < bounds.max_depth:
                        stack.append((entry.path, depth + 1))
                    else:
                        found.bound = f"depth {bounds.max_depth} ({entry.path})"
    found.git_dirs = list(dict.fromkeys(found.git_dirs))
    return found


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
    line = _first_line(git_file)
    if not line.startswith("gitdir:") or not line[7:].strip():
        return None
    target = os.path.realpath(os.path.join(os.path.dirname(git_file), line[7:].strip()))
    return target if os.path.isdir(target) else None


def _commondir_of(git_dir: str) -> str | None:
    """Where a `commondir` file sends git for the config and hooks (resolved), if any."""
    common = _first_line(os.path.join(git_dir, "commondir")).strip()
    return os.path.realpath(os.path.join(git_dir, common)) if common else None


def _repo_dirs(git_dir: str, tops: list[str]) -> list[str]:
    """The git directory, and the common directory of a linked worktree if it lies in `tops`
    (where the config and hooks that apply are)."""
    common = _commondir_of(git_dir)
    return [git_dir] + ([common] if common is not None and _within(common, tops) else [])


def _watched(dirs: list[str]) -> list[str]:
    """The files whose change matters: configs, the hooks directories and their entries (the
    git directory's own, and one its `core.hooksPath` names, say husky's `.husky/_`)."""
    out = []
    for d in dirs:
        out += [os.path.join(d, n) for n in ("config", "config.worktree", "commondir")]
        for hooks in (os.path.join(d, "hooks"), _hooks_path(d)):
            if hooks is None:
                continue
            out.append(hooks)
            with contextlib.suppress(OSError):
                out += [os.path.join(hooks, n) for n in sorted(os.listdir(hooks))]
    return out


_HOOKS_PATH = re.compile(rb"^\s*hookspath\s*=\s*\"?([^\"\n]*?)\"?\s*$",
                         re.IGNORECASE | re.MULTILINE)


def _hooks_path(git_dir: str) -> str | None:
    """The directory the git directory's own config names as `core.hooksPath` (relative to
    the working tree, `git_dir`'s parent), resolved; None when unset. Read with a pattern,
    not git: this runs before every launch in a repository (a wrong guess only watches one
    directory more, or one fewer that the run's own config changes then reveal)."""
    data = _read_small(os.path.join(git_dir, "config")) or b""
    values = _HOOKS_PATH.findall(data)
    if not values or not values[-1]:
        return None
    value = os.path.expanduser(values[-1].decode("utf-8", "surrogateescape"))
    return os.path.realpath(os.path.join(os.path.dirname(git_dir), value))


def _stamp_of(st: os.stat_result) -> tuple[int, int, int, int]:
    """What tells a file apart from its earlier self: the change time, which (unlike the
    modification time) a command cannot set back after an in-place edit."""
    return (st.st_ino, st.st_ctime_ns, st.st_size, st.st_mode)


def _stamp(path: str) -> tuple[int, int, int, int] | None:
    st = _lstat(path)
    return None if st is None else _stamp_of(st)


def _signature(dirs: list[str]) -> Signature:
    return tuple((path, *stamp) for path in _watched(dirs)
                 if (stamp := _stamp(path)) is not None)


def snapshot(roots: list[str], repos: tuple[str, ...] | None = None,
             bounds: Bounds = Bounds()) -> Snapshot:
    """The repositories under `roots` and their signatures. `repos`: the directories already
    known to hold a `.git` there (the plan's walk found them), so that no walk is needed;
    None: walk."""
    tops = [os.path.realpath(r) for r in roots]
    if repos is None:
        found = _git_dirs(roots, bounds)
        dirs, pointers = found.git_dirs, found.pointers
    else:
        dirs, pointers = [], []
        for repo in repos:
            git_dir = _git_dir_of(repo, tops)
            if git_dir is not None:
                dirs.append(git_dir)
            elif _gitdir_of(pointer := os.path.join(repo, GIT_DIR)) is not None:
                pointers.append(pointer)
        dirs += [t for t in tops if _looks_like_git_dir(t)]  # a workspace that is a bare repo
    configs = {}
    signatures = {}
    for d in dict.fromkeys(dirs):
        repo_dirs = _repo_dirs(d, tops)
        for repo_dir in repo_dirs:
            for name in _CONFIGS:
                data = _read_small(os.path.join(repo_dir, name))
                if data is not None:
                    configs[os.path.join(repo_dir, name)] = data
        signatures[d] = _signature(repo_dirs)
    return Snapshot(signatures, configs,
                    {p: stamp for p in pointers if (stamp := _stamp(p)) is not None})


def _looks_like_git_dir(path: str) -> bool:
    try:
        with os.scandir(path) as it:
            entries = list(it)
    except OSError:
        return False
    return _is_git_dir({e.name for e in entries}, entries)


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
    found = _git_dirs(roots, bounds)
    for git_dir in found.git_dirs:
        dirs = _repo_dirs(git_dir, tops)
        old = before.repos.get(git_dir)
        if old == _signature(dirs):
            continue
        had = {entry[0]: entry[1:] for entry in old or ()}
        for d in dirs:
            with _held(d, tops) as dfd:
                if dfd is None:
                    done.append(f"could not neutralise {d}: it moved or is reached through a "
                                "symlink")
                    continue
                for name in _CONFIGS:
                    path = os.path.join(d, name)
                    if had.get(path) != _stamp_at(dfd, name):  # appeared or changed
                        done += _clean_config(dfd, d, name, before.configs.get(path))
                common = os.path.join(d, "commondir")
                if (stamp := _stamp_at(dfd, "commondir")) is not None and \
                        had.get(common) != stamp and not any(
                            _within(c, tops) for c in [_commondir_of(d)] if c is not None):
                    done += _move_aside(dfd, d, "commondir", "it sends git for its config "
                                        "and hooks outside the writable roots")
                done += _disable_hooks(dfd, d, had)
            hooks_path = _hooks_path(d)
            if hooks_path is not None and _within(hooks_path, tops):
                with _held(hooks_path, tops) as hfd:
                    done += [] if hfd is None else _disable_in(hfd, hooks_path, had)
    for pointer in found.pointers:
        if before.pointers.get(pointer) == _stamp(pointer):
            continue  # the user's own (a worktree of a repository elsewhere, say)
        parent = os.path.dirname(pointer)
        with _held(parent, tops) as dfd:
            done += [f"could not disable {pointer}: its directory moved"] if dfd is None else \
                _move_aside(dfd, parent, GIT_DIR, "it names a git directory outside the "
                            "writable roots, whose config git would run")
    if found.bound is not None:
        done.append(f"the search for repositories stopped at {found.bound}: repositories "
                    "beyond it were not checked")
    return tuple(dict.fromkeys(done))


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@contextlib.contextmanager
def _held(path: str, tops: list[str]) -> Iterator[int | None]:
    """A descriptor of the directory `path`, opened from the writable root holding it one
    O_NOFOLLOW component at a time (None if a component is missing, a symlink or not a
    directory now), closed afterwards."""
    top = next((t for t in sorted(tops, key=len, reverse=True) if _within(path, [t])), None)
    fd = None
    if top is not None:
        with contextlib.suppress(OSError):
            fd = os.open(top, _DIR_FLAGS)
            for part in [p for p in path[len(top):].split("/") if p]:
                up, fd = fd, None
                try:
                    fd = os.open(part, _DIR_FLAGS, dir_fd=up)
                finally:
                    os.close(up)
    try:
        yield fd
    finally:
        if fd is not None:
            os.close(fd)


def _stamp_at(dfd: int, name: str) -> tuple[int, int, int, int] | None:
    try:
        st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
    except OSError:
        return None
    return _stamp_of(st)


# The system's git, never one found through the caller's PATH: that may hold a directory a
# sandbox can write (an activated venv's bin/, node_modules/.bin), and the launcher runs git
# unsandboxed.
_TRUSTED_PATH = "/usr/local/bin:/usr/bin:/bin"


def _git() -> str:
    import shutil  # here, as tempfile below: only a run that left a repository pays for them

    return shutil.which("git", path=_TRUSTED_PATH) or "/usr/bin/git"


def _git_env() -> dict[str, str]:
    """git reading exactly one file: no system or global config, no repository around."""
    return {"PATH": _TRUSTED_PATH, "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull, "HOME": "/nonexistent", "LC_ALL": "C"}


def _settings(args: list[str], data: bytes | None = None) -> list[tuple[str, str]] | None:
    """The (key, value) pairs of one config file (`args`: how git names it), as git parses
    it; None when git cannot."""
    try:
        out = subprocess.run([_git(), "config", *args, "--null", "--list"], cwd="/",
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


def _clean_config(dfd: int, git_dir: str, name: str, before: bytes | None) -> list[str]:
    """Remove the code-running settings the command added or changed in `name` of the held
    git directory (what the file held before the run, the user's own, stays)."""
    path = os.path.join(git_dir, name)
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                     dir_fd=dfd)
    except FileNotFoundError:
        return []
    except OSError:
        # A symlinked config could make git edit (and read) any file: move it aside.
        return _move_aside(dfd, git_dir, name, "not a regular file")
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return _move_aside(dfd, git_dir, name, "not a regular file")
        data = fh.read(_MAX_CONFIG + 1)
    if len(data) > _MAX_CONFIG:
        return _move_aside(dfd, git_dir, name, "too large to check")
    now = _settings(["--file", "-"], data)
    if now is None:
        return _move_aside(dfd, git_dir, name, "git cannot parse it")
    had = set(_settings(["--file", "-"], before) or ()) if before is not None else set()
    keys = list(dict.fromkeys(
        key for key, value in now
        if (_RUNS_CODE.match(key) or (_BANG.match(key) and value.startswith("!")))
        and (key, value) not in had))
    if not keys:
        return []
    # git edits a private copy (in the per-user runtime directory, hidden in every sandbox);
    # the result replaces the file within the held directory, whatever its path leads to now.
    import shutil
    import tempfile

    os.makedirs(runtime_dir(), 0o700, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix="gitguard-", dir=runtime_dir())
    try:
        copy = os.path.join(scratch, "config")
        with open(copy, "wb") as fh:
            fh.write(data)
        for key in keys:
            r = subprocess.run([_git(), "config", "--file", copy, "--unset-all", key], cwd="/",
                               env=_git_env(), capture_output=True, timeout=10)
            if r.returncode not in (0, 5):  # 5: already gone (a bang alias beside a plain one)
                return _move_aside(dfd, git_dir, name, f"cannot remove {key}")
        with open(copy, "rb") as fh:
            cleaned = fh.read()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    tmp = f".{name}.sandboxtui-{os.urandom(6).hex()}"  # not a name a sandbox can plant
    try:
        out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                      stat.S_IMODE(st.st_mode) & 0o777, dir_fd=dfd)
        with os.fdopen(out, "wb") as fh:
            fh.write(cleaned)
        os.replace(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=dfd)
        return _move_aside(dfd, git_dir, name, "cannot be rewritten")
    return [f"removed {key} from {path}" for key in keys]


def _disable_hooks(dfd: int, git_dir: str, had: dict[str, tuple[int, int, int, int]]
                   ) -> list[str]:
    """Move aside the executable hooks that appeared or changed (`had`: their signatures
    before the run), through a descriptor of the held git directory's `hooks`."""
    hooks = os.path.join(git_dir, "hooks")
    stamp = _stamp_at(dfd, "hooks")
    if stamp is None:
        return []
    if not stat.S_ISDIR(stamp[3]):
        if had.get(hooks) == stamp:
            return []  # the user's own (say, a symlink to shared hooks)
        return _move_aside(dfd, git_dir, "hooks", "a hooks directory that is not a directory")
    try:
        hfd = os.open("hooks", _DIR_FLAGS, dir_fd=dfd)
    except OSError:
        return []
    try:
        return _disable_in(hfd, hooks, had)
    finally:
        os.close(hfd)


def _disable_in(hfd: int, hooks: str, had: dict[str, tuple[int, int, int, int]]) -> list[str]:
    """The executable entries of the held hooks directory `hfd` (shown as `hooks`) that
    appeared or changed, moved aside."""
    done = []
    for name in sorted(os.listdir(hfd)):
        path = os.path.join(hooks, name)
        try:
            st = os.stat(name, dir_fd=hfd, follow_symlinks=False)
        except OSError:
            continue
        if name.endswith((".sample", DISABLED_SUFFIX)) or had.get(path) == _stamp_of(st):
            continue
        if stat.S_ISLNK(st.st_mode) or (stat.S_ISREG(st.st_mode) and st.st_mode & 0o111):
            done += _move_aside(hfd, hooks, name, "hook")
    return done


def _move_aside(dfd: int, directory: str, name: str, why: str) -> list[str]:
    """Rename `name` within the held directory `dfd` (shown as `directory`)."""
    path = os.path.join(directory, name)
    try:
        os.replace(name, name + DISABLED_SUFFIX, src_dir_fd=dfd, dst_dir_fd=dfd)
    except OSError as exc:
        return [f"could not disable {path} ({why}): {exc.strerror}"]
    return [f"disabled {path} ({why}): now {name + DISABLED_SUFFIX}"]
