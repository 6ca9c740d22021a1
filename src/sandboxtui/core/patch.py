"""Applying a unified diff inside the workspace, under the policy's rules.

Three phases, so nothing is ever partially applied:
1. parse the whole diff (malformed -> `PatchError`, exit 2);
2. check every path it touches — source and target of renames, after `../` and symlink
   resolution — against the workspace and the plan: sensitive (a `sensitive_paths` glob, a path
   the plan denies, or a hard link to a denied file) -> `PatchDenied(sensitive=True)`, exit 3,
   whatever the precheck mode, *before any of its content is read*; outside the workspace or not
   writable per `plan.explain` -> `PatchDenied`, exit 3;
3. compute every new file content in memory against the current content (a hunk that does not
   match -> `PatchConflict`, exit 1), write each to a temp file beside its target, then rename
   them all into place, restoring the originals if any rename fails. Reads and writes go
   through held directory descriptors, one O_NOFOLLOW component at a time, so a directory a
   running sandbox swaps for a symlink cannot redirect them outside the workspace; an OS
   error on the way (a race, a full disk) is `PatchDenied` (exit 3) or `PatchConflict` (exit
   1), never a traceback. Nothing is ever written inside a `.git` directory, at any depth.

Supported: modify, create and delete (`/dev/null`), git headers (`diff --git`, `a/` `b/`
prefixes, `rename from/to`, `new file mode`, `deleted file mode`, `old/new mode`; a set-id mode
in any of them -> `PatchDenied`, exit 3), `\\ No newline
at end of file`, hunks at an offset from their stated line. Not supported (malformed): binary
patches, copies, fuzz (context must match exactly).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
import uuid
from dataclasses import dataclass

from sandboxtui.core.outcome import ExitCode, SandboxtuiError
from sandboxtui.core.paths import is_within
from sandboxtui.core.plan import MountPlan, resolve_host_path
from sandboxtui.core.policy import Access
from sandboxtui.core.precheck import match_path

DEV_NULL = "/dev/null"
GIT_DIR = ".git"
_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
_MAX_DIFF = 64 << 20


class PatchError(SandboxtuiError):
    """The diff is malformed or unsupported: exit 2, nothing written."""

    exit_code = ExitCode.USAGE
    label = "malformed patch: "


class PatchDenied(SandboxtuiError):
    """The diff touches a path the policy forbids: exit 3, nothing written."""

    exit_code = ExitCode.DENIED

    def __init__(self, message: str, *, sensitive: bool) -> None:
        super().__init__(message)
        self.sensitive = sensitive
        kind = "sensitive path" if sensitive else "denied"
        self.label = f"patch rejected ({kind}), nothing written: "


class PatchConflict(SandboxtuiError):
    """The diff does not apply to the current content: exit 1, nothing written."""

    exit_code = ExitCode.MISMATCH
    label = "patch does not apply, nothing written: "


@dataclass(frozen=True)
class Hunk:
    old_start: int
    old_lines: tuple[str, ...]  # each with its line terminator ("\n", or none at EOF)
    new_lines: tuple[str, ...]
    line: int  # where the hunk starts in the diff, for messages


@dataclass(frozen=True)
class FilePatch:
    old_path: str | None  # None: created
    new_path: str | None  # None: deleted
    hunks: tuple[Hunk, ...]
    new_mode: int | None  # permission bits from git's `new file mode` / `new mode`
    line: int
    git: bool  # plain `diff -u` has no renames: `--- x.orig` `+++ x` patches one file

    @property
    def renamed(self) -> bool:
        return (self.git and self.old_path is not None and self.new_path is not None
                and self.old_path != self.new_path)


@dataclass(frozen=True)
class Change:
    """One file operation of a validated patch: `content` None means delete `path`."""

    path: str  # absolute, symlink-resolved host path
    content: bytes | None
    mode: int
    display: str  # the path as the diff names it
    owner: tuple[int, int] | None = None  # (uid, gid) to keep when root rewrites a file


@dataclass(frozen=True)
class PatchResult:
    changes: tuple[Change, ...]

    def summary(self) -> list[str]:
        return [f"{'deleted' if c.content is None else 'wrote'} {c.display}"
                for c in self.changes]


# --- parsing ----------------------------------------------------------------------------------


def read_diff(path: str) -> str:
    try:
        with open(path, "rb") as fh:
            data = fh.read(_MAX_DIFF + 1)
    except OSError as exc:
        raise PatchError(f"cannot read {path}: {exc.strerror}") from exc
    if len(data) > _MAX_DIFF:
        raise PatchError(f"{path} is larger than {_MAX_DIFF >> 20} MiB")
    return data.decode("utf-8", "surrogateescape")


def parse_diff(text: str) -> tuple[FilePatch, ...]:
    """Every file section of a unified diff; text before the first section is ignored."""
    lines = text.splitlines(keepends=True)
    patches: list[FilePatch] = []
    i = 0
    while i < len(lines):
        if lines[i].startswith("diff --git "):
            i = _parse_section(lines, i, patches, git=True)
        elif lines[i].startswith("--- ") and i + 1 < len(lines) \
                and lines[i + 1].startswith("+++ "):
            i = _parse_section(lines, i, patches, git=False)
        elif lines[i].startswith("@@ "):
            raise PatchError(f"line {i + 1}: hunk outside of a file section")
        else:
            i += 1
    if not patches:
        raise PatchError("no file changes found (not a unified diff?)")
    return tuple(patches)


def _strip(line: str) -> str:
    return line.rstrip("\n").rstrip("\r")


def _parse_section(lines: list[str], i: int, out: list[FilePatch], *, git: bool) -> int:
    start = i
    old: str | None = None
    new: str | None = None
    rename_from = rename_to = None
    new_mode: int | None = None
    created = deleted = False
    if git:
        git_old, git_new = _git_header_paths(_strip(lines[i])[len("diff --git "):], i)
        i += 1
        while i < len(lines) and not lines[i].startswith(("--- ", "diff --git ", "@@ ")):
            head = _strip(lines[i])
            if head.startswith("rename from "):
                rename_from = _unquote(head[len("rename from "):], i)
            elif head.startswith("rename to "):
                rename_to = _unquote(head[len("rename to "):], i)
            if head.startswith(("old mode ", "new mode ", "new file mode ", "deleted file mode ")):
                _refuse_setid(head.rsplit(" ", 1)[1], i)
            if head.startswith(("new file mode ", "new mode ")):
                new_mode = _mode(head.rsplit(" ", 1)[1], i)
                created = created or head.startswith("new file")
            elif head.startswith("deleted file mode "):
                deleted = True
            elif head.startswith(("copy from ", "copy to ")):
                raise PatchError(f"line {i + 1}: copies are not supported")
            elif head.startswith(("GIT binary patch", "Binary files ")):
                raise PatchError(f"line {i + 1}: binary patches are not supported")
            i += 1
        old = None if created else (rename_from or git_old)
        new = None if deleted else (rename_to or git_new)
    hunks: list[Hunk] = []
    if i < len(lines) and lines[i].startswith("--- "):
        if i + 1 >= len(lines) or not lines[i + 1].startswith("+++ "):
            raise PatchError(f"line {i + 1}: '---' header without '+++'")
        minus = _header_path(lines[i], i)
        plus = _header_path(lines[i + 1], i + 1)
        minus, plus = _strip_prefixes(minus, plus)
        if not git:
            old, new = minus, plus
        elif (minus, plus) != (old, new):
            raise PatchError(f"line {i + 1}: '---'/'+++' name other files than the git header")
        i += 2
        while i < len(lines) and lines[i].startswith("@@"):
            hunk, i = _parse_hunk(lines, i)
            hunks.append(hunk)
    if i < len(lines) and hunks and _looks_like_hunk_body(lines[i]):
        raise PatchError(f"line {i + 1}: unexpected line after a hunk: {_strip(lines[i])!r}")
    if old is None and new is None:
        raise PatchError(f"line {start + 1}: a file section with neither an old nor a new file")
    if git and not hunks and not (old != new or new_mode is not None or created or deleted):
        raise PatchError(f"line {start + 1}: a file section without changes")
    if not git and not hunks:
        raise PatchError(f"line {start + 1}: a file section without hunks")
    out.append(FilePatch(old, new, tuple(hunks), new_mode, start + 1, git))
    return i


def _looks_like_hunk_body(line: str) -> bool:
    """A stray diff line after a hunk means its header's counts were wrong."""
    if line.startswith(("diff --git ", "--- ", "+++ ")) or _strip(line) == "--":
        return False  # the next section, or a `git format-patch` signature
    return line[:1] in (" ", "+", "-", "\\")


def _git_header_paths(rest: str, i: int) -> tuple[str, str]:
    if rest.startswith('"'):
        end = _quoted_end(rest, i)
        a, b = _unquote(rest[:end], i), _unquote(rest[end:].lstrip(" "), i)
    else:
        # `a/X b/X`: with spaces in names the split is where both halves name the same file.
        half = (len(rest) - 1) // 2
        if rest[half:half + 1] == " " and rest[:half][2:] == rest[half + 1:][2:]:
            a, b = rest[:half], rest[half + 1:]
        else:
            a, _, b = rest.partition(" ")
    if not (a.startswith("a/") and b.startswith("b/")):
        raise PatchError(f"line {i + 1}: 'diff --git' header without a/ and b/ paths")
    return a[2:], b[2:]


def _quoted_end(s: str, i: int) -> int:
    j = 1
    while j < len(s):
        if s[j] == "\\":
            j += 2
            continue
        if s[j] == '"':
            return j + 1
        j += 1
    raise PatchError(f"line {i + 1}: unterminated quoted path")


_ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\", "a": "\a", "b": "\b", "f": "\f",
            "r": "\r", "v": "\v"}


def _unquote(s: str, i: int) -> str:
    """A path as git writes it: C-quoted (with octal byte escapes) when it has odd bytes."""
    if not s.startswith('"'):
        return s
    if len(s) < 2 or not s.endswith('"'):
        raise PatchError(f"line {i + 1}: bad quoted path {s!r}")
    out = bytearray()
    body, j = s[1:-1], 0
    while j < len(body):
        ch = body[j]
        if ch != "\\":
            out += ch.encode("utf-8", "surrogateescape")
            j += 1
        elif body[j + 1:j + 4].isdigit() and len(body[j + 1:j + 4]) == 3:
            out.append(int(body[j + 1:j + 4], 8) & 0xFF)
            j += 4
        elif body[j + 1:j + 2] in _ESCAPES:
            out += _ESCAPES[body[j + 1]].encode()
            j += 2
        else:
            raise PatchError(f"line {i + 1}: bad escape in quoted path {s!r}")
    return out.decode("utf-8", "surrogateescape")


def _header_path(line: str, i: int) -> str | None:
    raw = _strip(line)[4:]
    # `--- name<TAB>timestamp`, or a C-quoted name
    path = _unquote(raw[:_quoted_end(raw, i)], i) if raw.startswith('"') \
        else raw.split("\t", 1)[0]
    if not path:
        raise PatchError(f"line {i + 1}: empty path")
    return None if path == DEV_NULL else path


def _strip_prefixes(old: str | None, new: str | None) -> tuple[str | None, str | None]:
    """Drop git-style `a/` and `b/` prefixes when the diff uses them on both sides."""
    if (old is None or old.startswith("a/")) and (new is None or new.startswith("b/")):
        return (None if old is None else old[2:]), (None if new is None else new[2:])
    return old, new


_SETID = stat.S_ISUID | stat.S_ISGID


def _refuse_setid(text: str, i: int) -> None:
    """A set-id mode in a diff (git itself never writes one) is refused: written by root, it
    would leave a binary that runs with its owner's or group's rights for any local user."""
    try:
        setid = int(text, 8) & _SETID
    except ValueError:
        return  # a malformed mode is reported by _mode, where the mode is used
    if setid:
        raise PatchDenied(f"line {i + 1}: mode {text} has the set-uid or set-gid bit; patches "
                          "never create set-id files", sensitive=False)


def _mode(text: str, i: int) -> int:
    try:
        mode = int(text, 8)
    except ValueError:
        raise PatchError(f"line {i + 1}: bad file mode {text!r}") from None
    if stat.S_IFMT(mode) not in (0, stat.S_IFREG):
        raise PatchError(f"line {i + 1}: only regular files can be patched (mode {text})")
    return stat.S_IMODE(mode)


def _parse_hunk(lines: list[str], i: int) -> tuple[Hunk, int]:
    m = _HUNK.match(lines[i])
    if not m:
        raise PatchError(f"line {i + 1}: bad hunk header {_strip(lines[i])!r}")
    start = i
    old_start = int(m.group(1))
    old_count = 1 if m.group(2) is None else int(m.group(2))
    new_count = 1 if m.group(4) is None else int(m.group(4))
    old: list[str] = []
    new: list[str] = []
    i += 1
    last: list[list[str]] = []
    while len(old) < old_count or len(new) < new_count or (
            i < len(lines) and lines[i].startswith("\\")):
        if i >= len(lines):
            raise PatchError(f"line {start + 1}: hunk ends early (expected {old_count} old "
                             f"and {new_count} new lines, found {len(old)} and {len(new)})")
        line = lines[i]
        tag, body = line[:1], line[1:]
        if not body.endswith("\n"):
            body += "\n"  # the diff file itself lacks a final newline
        if line in ("\n", "\r\n"):
            tag, body = " ", line  # a context line whose leading space was stripped
        if tag == "\\":
            if not last:
                raise PatchError(f"line {i + 1}: '\\ No newline' marker without a line")
            for side in last:
                side[-1] = side[-1][:-1]  # the previous line has no terminator
            last = []
        elif tag == " ":
            old.append(body)
            new.append(body)
            last = [old, new]
        elif tag == "-":
            old.append(body)
            last = [old]
        elif tag == "+":
            new.append(body)
            last = [new]
        else:
            raise PatchError(f"line {i + 1}: unexpected line inside a hunk: {_strip(line)!r}")
        if len(old) > old_count or len(new) > new_count:
            raise PatchError(f"line {start + 1}: hunk is longer than its header says")
        i += 1
    return Hunk(old_start, tuple(old), tuple(new), start + 1), i


# --- validation and application ----------------------------------------------------------------


def check_path(name: str, plan: MountPlan) -> str:
    """The absolute host path `name` writes to; raises PatchDenied if the policy forbids it."""
    if not name or "\0" in name:
        raise PatchError(f"bad path {name!r}")
    ws = plan.cwd
    lexical = os.path.normpath(os.path.join(ws, name))
    hit = match_path(name, plan, ws)
    if hit is not None:
        raise PatchDenied(f"{name}: sensitive path ({hit.rule} [{hit.provenance}]); patches "
                          "never touch sensitive paths", sensitive=True)
    if not is_within(lexical, ws):
        raise PatchDenied(f"{name}: outside the workspace {ws}", sensitive=False)
    resolved = resolve_host_path(lexical, "/")
    if not is_within(resolved, ws):
        raise PatchDenied(f"{name}: resolves to {resolved}, outside the workspace {ws} "
                          "(through a symlink)", sensitive=False)
    if GIT_DIR in (lexical.split("/") + resolved.split("/")):
        raise PatchDenied(f"{name}: inside a git directory ({GIT_DIR}); patches never write "
                          "there, since git runs code from its config and hooks",
                          sensitive=False)
    ex = plan.explain(resolved)
    if ex.access is not Access.RW:
        raise PatchDenied(f"{name}: not writable in the sandbox ({ex.access.value}: "
                          f"{ex.rule.reason} [{ex.rule.provenance}])", sensitive=False)
    with contextlib.suppress(OSError):
        st = os.stat(resolved)
        if stat.S_ISREG(st.st_mode) and st.st_nlink > 1 and _denied_inode(st, plan):
            raise PatchDenied(f"{name}: a hard link to a sensitive file", sensitive=True)
    return resolved


def _denied_inode(st: os.stat_result, plan: MountPlan) -> bool:
    for rule in plan.denied_paths():
        with contextlib.suppress(OSError):
            other = os.stat(rule.path)
            if (other.st_dev, other.st_ino) == (st.st_dev, st.st_ino):
                return True
    return False


def plan_patch(patches: tuple[FilePatch, ...], plan: MountPlan, tree: _Tree) -> PatchResult:
    """Validate every path, then compute every new content; raises before anything is written.
    Contents are read through `tree` (the workspace's held directory descriptors)."""
    targets: list[tuple[FilePatch, str | None, str | None]] = []
    for fp in patches:  # all paths first: no sensitive file is read if any hunk targets one
        old = None if fp.old_path is None else check_path(fp.old_path, plan)
        new = None if fp.new_path is None else check_path(fp.new_path, plan)
        if not fp.git and old is not None and new is not None and old != new:
            old = new = new if tree.lexists(new) else old  # patch the one that exists
        targets.append((fp, old, new))
    changes: list[Change] = []
    touched: set[str] = set()
    for fp, old, new in targets:
        if old is not None and (new is None or fp.renamed) and os.path.islink(
                os.path.join(plan.cwd, fp.old_path or "")):
            raise PatchError(f"line {fp.line}: {fp.old_path} is a symlink; patches do not "
                             "delete or rename symlinks")
        for path in {p for p in (old, new) if p is not None}:
            if path in touched:
                raise PatchError(f"line {fp.line}: {path} is changed twice in one patch")
            touched.add(path)
        content, mode, owner = b"", 0o666 & ~_umask(), None
        if old is not None:
            content, mode, owner = tree.read(old, fp.old_path or "")
        elif new is not None and tree.lexists(new):
            raise PatchConflict(f"{fp.new_path}: already exists, cannot create it")
        if fp.renamed and new is not None and tree.lexists(new):
            raise PatchConflict(f"{fp.new_path}: already exists, cannot rename onto it")
        text = _apply_hunks(content.decode("utf-8", "surrogateescape"), fp)
        if fp.new_mode is not None:
            mode = fp.new_mode
        mode &= ~_SETID  # a rewritten file loses its set-id bits, as a write without CAP_FSETID
        if new is None:
            if text:
                raise PatchConflict(f"{fp.old_path}: deleting it, but its content differs "
                                    "from the diff")
            changes.append(Change(str(old), None, mode, fp.old_path or ""))
            continue
        if fp.renamed and old is not None:
            changes.append(Change(old, None, mode, fp.old_path or ""))
        changes.append(Change(new, text.encode("utf-8", "surrogateescape"), mode,
                              fp.new_path or "", owner))
    return PatchResult(tuple(changes))


def _umask() -> int:
    """The process umask, read without changing it (os.umask would race other threads)."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    return 0o022


def _apply_hunks(text: str, fp: FilePatch) -> str:
    lines = text.splitlines(keepends=True)
    out: list[str] = []
    pos = 0  # next line of `lines` not yet copied
    for h in fp.hunks:
        want = max(h.old_start - 1, 0) if h.old_lines else h.old_start
        at = _find(lines, h.old_lines, want, pos)
        if at is None:
            raise PatchConflict(f"{fp.old_path or fp.new_path}: hunk at diff line {h.line} "
                                f"does not match the current content (near line "
                                f"{h.old_start})")
        out += lines[pos:at]
        out += h.new_lines
        pos = at + len(h.old_lines)
    out += lines[pos:]
    return "".join(out)


def _find(lines: list[str], old: tuple[str, ...], want: int, lo: int) -> int | None:
    """Where `old` occurs at or after `lo`, nearest to `want` (hunks may have shifted)."""
    n = len(old)
    last = len(lines) - n
    if last < lo:
        return None
    want = min(max(want, lo), last)
    for delta in range(0, max(want - lo, last - want) + 1):
        for at in (want - delta, want + delta):
            if lo <= at <= last and tuple(lines[at:at + n]) == old:
                return at
    return None


class _Tree:
    """The workspace, reached only through held directory descriptors.

    A path is opened one component at a time, each with O_NOFOLLOW relative to its parent's
    descriptor, from the workspace's own: a directory swapped for a symlink while the patch
    runs (a running sandbox can RENAME_EXCHANGE them at will) makes the step fail (ELOOP,
    ENOTDIR) instead of leading outside. Each directory is resolved once and its descriptor
    kept, so the checks, the temp file, the rename and the rollback all act on one directory.
    """

    def __init__(self, root: str) -> None:
        self.root = root
        self.fd = os.open(root, _DIR_FLAGS)
        self._dirs: dict[tuple[str, ...], int] = {(): self.fd}

    def close(self) -> None:
        for fd in self._dirs.values():
            os.close(fd)
        self._dirs = {}

    def parent(self, path: str, made: list[tuple[int, str]] | None = None) -> tuple[int, str]:
        """(descriptor of the directory holding `path`, its last name); missing directories
        are created (and listed in `made`) only when `made` is given."""
        rel = os.path.relpath(path, self.root)
        parts = tuple(rel.split("/"))
        if rel == "." or any(p in ("", ".", "..") for p in parts):
            raise PatchDenied(f"{path}: not a file inside the workspace {self.root}",
                              sensitive=False)
        for i in range(1, len(parts)):
            if parts[:i] in self._dirs:
                continue
            up = self._dirs[parts[:i - 1]]
            try:
                fd = os.open(parts[i - 1], _DIR_FLAGS, dir_fd=up)
            except FileNotFoundError:
                if made is None:
                    raise
                os.mkdir(parts[i - 1], 0o777, dir_fd=up)
                made.append((up, parts[i - 1]))
                fd = os.open(parts[i - 1], _DIR_FLAGS, dir_fd=up)
            self._dirs[parts[:i]] = fd
        return self._dirs[parts[:-1]], parts[-1]

    def lexists(self, path: str) -> bool:
        try:
            fd, name = self.parent(path)
            os.stat(name, dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        return True

    def read(self, path: str, name: str) -> tuple[bytes, int, tuple[int, int]]:
        try:
            dfd, last = self.parent(path)
            # O_NONBLOCK: a FIFO planted under the name must not hang the patch
            fd = os.open(last, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                         dir_fd=dfd)
        except FileNotFoundError:
            raise PatchConflict(f"{name}: does not exist") from None
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise PatchConflict(f"{name}: not a regular file")
            return fh.read(), stat.S_IMODE(st.st_mode), (st.st_uid, st.st_gid)


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _exists_at(dfd: int, name: str) -> bool:
    try:
        os.stat(name, dir_fd=dfd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


def apply_patch(result: PatchResult, tree: _Tree) -> None:
    """Write every change or none: temp files first, then renames, rolled back on failure."""
    staged: list[tuple[Change, int, str, str | None]] = []  # change, dir fd, name, temp name
    made: list[tuple[int, str]] = []
    try:
        for change in result.changes:
            dfd, name = tree.parent(change.path, None if change.content is None else made)
            if change.content is None:
                staged.append((change, dfd, name, None))
                continue
            tmp = f".sandboxtui-patch-{uuid.uuid4().hex}"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                         | os.O_CLOEXEC, 0o600, dir_fd=dfd)
            staged.append((change, dfd, name, tmp))
            with os.fdopen(fd, "wb") as fh:
                fh.write(change.content)
                fh.flush()
                if change.owner is not None and os.geteuid() == 0:
                    os.fchown(fh.fileno(), *change.owner)
                os.fchmod(fh.fileno(), change.mode)
                os.fsync(fh.fileno())
        _commit(staged)
    except BaseException:
        for _change, dfd, _name, tmp in staged:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp, dir_fd=dfd)
        for dfd, d in reversed(made):
            with contextlib.suppress(OSError):
                os.rmdir(d, dir_fd=dfd)
        raise


def _commit(staged: list[tuple[Change, int, str, str | None]]) -> None:
    """Move originals aside, move new contents in; on any failure undo what was done."""
    backups: list[tuple[int, str, str]] = []  # (dir fd, original name, backup name)
    placed: list[tuple[int, str]] = []
    try:
        for _change, dfd, name, tmp in staged:
            if _exists_at(dfd, name):
                backup = f".sandboxtui-backup-{uuid.uuid4().hex}"
                # fails rather than follows if the name exists
                os.link(name, backup, src_dir_fd=dfd, dst_dir_fd=dfd, follow_symlinks=False)
                backups.append((dfd, name, backup))
            if tmp is None:
                os.unlink(name, dir_fd=dfd)
            else:
                os.replace(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
                placed.append((dfd, name))
    except BaseException:
        for dfd, name in reversed(placed):
            with contextlib.suppress(OSError):
                os.unlink(name, dir_fd=dfd)
        for dfd, name, backup in reversed(backups):
            with contextlib.suppress(OSError):
                os.replace(backup, name, src_dir_fd=dfd, dst_dir_fd=dfd)
        raise
    for dfd, _name, backup in backups:
        with contextlib.suppress(OSError):
            os.unlink(backup, dir_fd=dfd)
    for dfd in {dfd for _c, dfd, _n, _t in staged}:
        with contextlib.suppress(OSError):
            os.fsync(dfd)


def _raced(exc: OSError) -> PatchDenied | PatchConflict:
    """An OS error while reading or writing through the held descriptors: the workspace
    changed under the patch (or the disk refused); either way nothing is left written."""
    where = f" ({exc.filename})" if exc.filename else ""
    if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EXDEV):
        return PatchDenied(f"a path of the patch{where} is now reached through a symlink or a "
                           "non-directory: the workspace changed under the patch; refused",
                           sensitive=False)
    return PatchConflict(f"{exc.strerror}{where}: the patch could not be written (did the "
                         "workspace change during it?)")


def patch_workspace(diff_text: str, plan: MountPlan) -> PatchResult:
    """Parse, validate and apply `diff_text` in `plan.cwd`; raises before writing on any error.

    Every read and write goes through held directory descriptors of the workspace (`_Tree`),
    so a concurrent rename cannot redirect it outside; any OS error on the way ends in
    PatchDenied (exit 3) or PatchConflict (exit 1) with everything rolled back."""
    patches = parse_diff(diff_text)
    try:
        tree = _Tree(plan.cwd)
    except OSError as exc:
        raise PatchConflict(f"cannot open the workspace {plan.cwd}: {exc.strerror}") from exc
    try:
        result = plan_patch(patches, plan, tree)
        apply_patch(result, tree)
    except OSError as exc:
        raise _raced(exc) from exc
    finally:
        tree.close()
    return result
