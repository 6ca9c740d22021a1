"""Did bwrap mount the plan on the files the plan was made from? (the scan-to-bwrap race)

bwrap resolves every mount by name, some milliseconds after the plan was made. A running
sandbox (or any host process) that renames a directory inside a writable root in that window
makes a mask land on the wrong directory: the secret stays readable under the other name, and
bwrap creates an empty mount point file (a stray `.env`) on the host where the name vanished.

So the launcher (1) records, just before bwrap starts (the mask stage likewise, for its own
ops), refusing the launch when a file the plan's scan found to mask is no longer that very file
(`as_planned`), the identity (device, inode) of every
mount destination inside a writable area, refusing the launch when one is gone already, and
(2) starts bwrap with `--block-fd`: once bwrap has set up every mount and blocks before
running the command, the launcher looks into the sandbox through `/proc/PID/root` and
compares. A bound directory must be the very directory recorded; a masked file's or
directory's parent must be the recorded parent, and the mask must be in place. Any difference
kills the sandbox before the command runs (exit 4, with a message), and empty mount points
bwrap created on the host meanwhile are removed.
"""

from __future__ import annotations

import contextlib
import os
import stat
import time
from dataclasses import dataclass

from sandboxtui.core.outcome import SandboxtuiError
from sandboxtui.core.plan import Ident, MountOp, MountPlan, OpKind
from sandboxtui.core.policy import Access

_CHECKED = (OpKind.BIND, OpKind.RO_BIND, OpKind.DENY_FILE, OpKind.DENY_DIR,
            OpKind.BLOCK_MISSING, OpKind.BLOCK_MISSING_DIR)
# What each masking op leaves at its destination: the empty file, or a fresh directory.
_FILE_MASKS = (OpKind.DENY_FILE, OpKind.BLOCK_MISSING)
_DIR_MASKS = (OpKind.DENY_DIR, OpKind.BLOCK_MISSING_DIR)


class WorkspaceChanged(SandboxtuiError):
    """The workspace changed between planning and mounting: exit 4, nothing ran."""


@dataclass(frozen=True)
class Expected:
    """One mount destination inside a writable area, as found on the host before bwrap."""

    kind: OpKind
    dest: str
    ident: Ident  # the destination's identity before bwrap ran
    parent: Ident  # its parent directory's


def _ident(path: str) -> Ident | None:
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def expected(plan: MountPlan, ops: tuple[MountOp, ...]) -> tuple[Expected, ...]:
    """Record every racy destination of `ops` (bwrap's share of the plan's); WorkspaceChanged
    if one is gone already, or is not what the plan's scan found there."""
    out = []
    for op in ops:
        if op.kind not in _CHECKED or op.dest == "/" or (
                op.kind in (OpKind.BIND, OpKind.RO_BIND) and op.source != op.dest):
            continue
        parent = os.path.dirname(op.dest)
        # Inside the sandbox nothing can rename what lies in a read-only parent; on the host,
        # anything can between the plan and the launch.
        racy = plan.rule_for(parent).access is Access.RW
        if not racy and op.rule.ident is None:
            continue
        ident, up = _ident(op.dest), _ident(parent)
        if ident is None or up is None:
            raise WorkspaceChanged(
                f"{op.dest} no longer exists: the workspace changed since the plan was made "
                "(a running command renaming or deleting files?); launch again")
        as_planned(op, ident, up)
        if racy:
            out.append(Expected(op.kind, op.dest, ident, up))
    return tuple(out)


def as_planned(op: MountOp, ident: Ident, parent: Ident) -> None:
    """WorkspaceChanged unless `op`'s destination and its parent, found now as `ident` and
    `parent`, are what the plan's scan found there: the plan masks the files it saw, and a
    directory swapped for one holding a decoy (`mv d dx; mkdir d; echo x > d/.env`), even
    while an approval waits, would otherwise take the mask while the secret, renamed, has
    none."""
    rule = op.rule
    if rule.ident is None or op.dest != rule.path:
        return
    if ident != rule.ident or rule.parent_ident not in (None, parent):
        raise WorkspaceChanged(
            f"{op.dest} changed since the plan was made (replaced, or its directory renamed "
            "or swapped): nothing ran, plan again")


def wait_blocked(pid: int, block_fd: int, alive: float) -> bool:
    """Wait until the sandbox's first process blocks reading `block_fd` (bwrap has set up
    every mount by then); False if it ended or did not get there in `alive` seconds."""
    deadline = time.monotonic() + alive
    want = hex(block_fd)
    delay = 0.0002
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/wchan", encoding="ascii", errors="replace") as fh:
                wchan = fh.read()
            with open(f"/proc/{pid}/syscall", encoding="ascii", errors="replace") as fh:
                args = fh.read().split()
        except OSError:
            return False
        if "pipe" in wchan and len(args) > 1 and args[1] == want:
            return True
        time.sleep(delay)
        delay = min(delay * 2, 0.0005)
    return False


def verify(pid: int, wanted: tuple[Expected, ...], empty_file: str) -> str | None:
    """Compare the sandbox's mounts (seen through /proc/PID/root) with `wanted`; the first
    difference, or None."""
    root = f"/proc/{pid}/root"
    empty = _ident(empty_file)
    for e in wanted:
        inside = root + e.dest
        if e.kind in (OpKind.BIND, OpKind.RO_BIND):
            if _ident(inside) != e.ident:
                return f"{e.dest} is not the directory the plan was made from"
            continue
        if _ident(os.path.dirname(inside)) != e.parent:
            return f"the directory holding {e.dest} is not the one the plan was made from"
        try:
            st = os.lstat(inside)
        except OSError:
            return f"{e.dest} is not masked"
        if e.kind in _FILE_MASKS and (st.st_dev, st.st_ino) != empty:
            return f"{e.dest} is not masked"
        if e.kind in _DIR_MASKS and (not stat.S_ISDIR(st.st_mode)
                                     or (st.st_dev, st.st_ino) == e.ident):
            return f"{e.dest} is not masked"
    return None


def remove_strays(wanted: tuple[Expected, ...], since: float) -> None:
    """After a refused or failed setup: remove the empty mount points (files, directories)
    bwrap created on the host where a recorded destination had vanished."""
    for e in wanted:
        for path, ident in ((e.dest, e.ident), (os.path.dirname(e.dest), e.parent)):
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if (st.st_dev, st.st_ino) == ident or st.st_ctime < since:
                continue
            with contextlib.suppress(OSError):
                if stat.S_ISREG(st.st_mode) and st.st_size == 0:
                    os.unlink(path)
                elif stat.S_ISDIR(st.st_mode):
                    os.rmdir(path)  # only if empty
