"""Derived data cached in the state directory (the compiled seccomp program), trusted only as far
as it is checked.

A cache file is attacker-reachable state: another user's planted file, a symlink, a truncated
write, a file copied from another key. So a read (1) opens the cache directory without following
a final symlink and requires it to be ours and writable by nobody else, (2) opens the file
relative to it with `O_NOFOLLOW` and requires a regular file of ours, writable by nobody else,
with one link and a bounded size, and (3) requires its header to name the very key asked for
and the SHA-256 and length of the payload that follows, and (4) the file's extended attribute
`user.sandboxtui.sha256` to hold the seal of kind, key and payload together: an entry whose
header was rewritten in place to name another key, and renamed to that key's name, keeps its
attribute but no longer matches it. Anything else reads as a miss: the caller computes the data
again and the file is rewritten (a temporary file of our own, renamed over it).

No sandbox can forge an entry, even where it can write the file: the state directory is
read-only inside every bubblewrap sandbox (a plan rule), and where a pipeline cannot enforce
that (legacy Landlock with the state directory inside a writable root) its seccomp filter
refuses every extended-attribute call, so a rewritten or new file lacks the attribute of its
content. A filesystem without user extended attributes gets no cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat

from sandboxtui.core.paths import state_dir

FORMAT = b"sandboxtui-cache 1"
MAX_BYTES = 1 << 20
SEAL = "user.sandboxtui.sha256"  # set by the launcher only: no sandbox may set an attribute


def seal(kind: str, key: str, data: bytes) -> bytes:
    """What the attribute holds: binds the payload to the entry it was written for."""
    return hashlib.sha256(b"%s\0%s\0%s" % (kind.encode(), key.encode(), data)).hexdigest().encode()


def _header(key: str, data: bytes) -> bytes:
    return b"%s %s %s %d\n" % (FORMAT, key.encode(), hashlib.sha256(data).hexdigest().encode(),
                               len(data))


def _ours(st: os.stat_result) -> bool:
    return st.st_uid == os.geteuid() and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _open_dir(directory: str, create: bool) -> int | None:
    """The cache directory, if it is a directory of ours that nobody else can write."""
    try:
        if create:
            os.makedirs(directory, 0o700, exist_ok=True)
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    if not _ours(os.fstat(fd)):
        os.close(fd)
        return None
    return fd


def cache_path(kind: str, key: str) -> str:
    """Where the entry for `key` lives: `STATE_DIR/cache/KIND-KEY`."""
    return os.path.join(state_dir(), "cache", f"{kind}-{key}")


def read(kind: str, key: str) -> bytes | None:
    """The payload stored for `key`, or None when there is none that passes every check."""
    path = cache_path(kind, key)
    dir_fd = _open_dir(os.path.dirname(path), create=False)
    if dir_fd is None:
        return None
    try:
        fd = os.open(os.path.basename(path), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK
                     | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError:
        return None
    finally:
        os.close(dir_fd)
    try:
        st = os.fstat(fd)
        if not (stat.S_ISREG(st.st_mode) and _ours(st) and st.st_nlink == 1
                and st.st_size <= MAX_BYTES):
            return None
        content = os.read(fd, MAX_BYTES + 1)
        stored = os.getxattr(fd, SEAL)
    except OSError:
        return None
    finally:
        os.close(fd)
    header, _, data = content.partition(b"\n")
    genuine = header + b"\n" == _header(key, data) and stored == seal(kind, key, data)
    return data if genuine else None


def write(kind: str, key: str, data: bytes) -> None:
    """Store `data` for `key` (best effort: a cache that cannot be written is no error)."""
    path = cache_path(kind, key)
    dir_fd = _open_dir(os.path.dirname(path), create=True)
    if dir_fd is None:
        return
    name = os.path.basename(path)
    temporary = f".{name}.{os.urandom(8).hex()}"  # each writer its own, threads too
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                     | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
        try:
            os.write(fd, _header(key, data) + data)
            os.setxattr(fd, SEAL, seal(kind, key, data))
        finally:
            os.close(fd)
        os.replace(temporary, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(temporary, dir_fd=dir_fd)
    finally:
        os.close(dir_fd)
