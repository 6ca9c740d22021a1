"""The mask stage: the launcher mounts most file masks itself, inside the sandbox, while bwrap
waits at `--block-fd`, before the command exists.

Why: bwrap re-reads /proc/self/mountinfo for every mount, so its setup grows with the square of
the mount count (1,000 masked files in their own directories took 45 s with their pins), and
its argument limit refused plans of more than about 2,990 denied paths. A monorepo with a
`.env.example` in every package is ordinary.

What moves here (`split_ops`), from the very same `MountPlan.ops` (explain, the tree, `plan
--json`, `--dry-run` and verify show every one): every denied file but the first (bwrap binds
the empty mode-000 file there: the stage's masks are clones of that mount, so they are
read-only, nosuid, nodev like bwrap's own), and every pin (`BIND d d` inside a writable bind)
that has no bwrap mount beneath it. Everything else stays a bwrap argument, in plan order, so
the stage only ever adds mounts on top of bwrap's and never covers one.

How (`apply`): a child forked from the launcher joins the user namespace that owns the
sandbox's mount namespace, and that mount namespace (unprivileged bwrap runs the command in a
second user namespace nested in the first, with no capability over these mounts). Its working
directory is the host's /proc/self/fd, so `mount("M", "N")` binds descriptor M onto descriptor
N. For each op, in plan order:
1. the parent directory is opened from the sandbox's root one component at a time with
   O_PATH|O_NOFOLLOW|O_DIRECTORY (a symlink anywhere on the way fails) and compared (device,
   inode) with the directory found on the host while bwrap set up (`record`);
2. the target is opened with O_PATH|O_NOFOLLOW beneath it and compared too: a rename, a hard
   link swapped in or a planted symlink fails;
3. the mount lands on that descriptor: nothing is looked up by name in between;
4. the name is opened again: it must now show the mask (the empty file) or the pinned
   directory (mount-then-verify: a rename between 2 and 3 would leave the mask elsewhere).
Pins are bound from a recursive clone of their writable bind, hung on bwrap's /dev for the
stage only and detached after (binding from the bind itself, each pin would copy all its
siblings: quadratic again). Any failure kills the sandbox before the command runs (exit 4,
naming the path). The command then holds no capability (bwrap drops them all, no-new-privs),
exactly as for bwrap's own mounts: it cannot unmount, move or clone a mask away, and in a
nested user namespace the kernel locks every inherited mount (MNT_LOCKED).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import os
import select
import signal
import stat
from dataclasses import dataclass

from sandboxtui.core.paths import is_within
from sandboxtui.core.plan import Ident, MountOp, MountPlan, OpKind
from sandboxtui.core.setup_check import WorkspaceChanged, as_planned

_MS_BIND = 0x1000
_MS_REC = 0x4000
_MNT_DETACH = 2
_NS_GET_USERNS = 0xB701
_CLONE_NEWNS = 0x00020000
_CLONE_NEWUSER = 0x10000000
_DIR = os.O_PATH | os.O_NOFOLLOW | os.O_DIRECTORY | os.O_CLOEXEC
_ANY = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True)
class OpSplit:
    """A plan's mount ops: what bwrap mounts, what the stage mounts after it (both in plan
    order), the mask whose mount the stage clones, and where it hangs its pins' sources."""

    bwrap: tuple[MountOp, ...]
    staged: tuple[MountOp, ...]
    source: MountOp | None  # the first denied file: bwrap binds the empty file there
    spot: str  # bwrap's /dev: covered by the pins' sources during the stage only
    within: dict[str, str]  # a staged pin -> the bwrap bind its source is cloned from


@dataclass(frozen=True)
class Target:
    """A staged op's destination and its parent as found on the host just before bwrap ran;
    for a pin, the bwrap bind it lies in (its clone is the pin's source)."""

    kind: OpKind
    dest: str
    ident: Ident
    parent: Ident
    within: str = ""


def split_ops(plan: MountPlan) -> OpSplit:
    """Which ops the stage mounts: denied files but the first, and pins in writable binds
    with no bwrap op beneath them (so the stage never covers a bwrap mount). Computed once
    per plan object (the check, the argv and the launch all ask)."""
    if _last_split and _last_split[0][0] is plan:
        return _last_split[0][1]
    ops = plan.ops
    source = next((op for op in ops if op.kind is OpKind.DENY_FILE), None)
    spot = next((op.dest for op in ops if op.kind is OpKind.DEV), "")
    mounts = {op.dest: op for op in ops if op.kind is not OpKind.REMOUNT_RO}
    nearest: dict[str, MountOp | None] = {}  # directory -> the op mounted at or above it

    def mounted_at_or_above(d: str) -> MountOp | None:
        chain = []
        while d not in nearest:
            if d in mounts:
                nearest[d] = mounts[d]
                break
            if d == "/":
                nearest[d] = None
                break
            chain.append(d)
            d = _up(d)
        found = nearest[d]
        for c in chain:
            nearest[c] = found
        return found

    below_bwrap: set[str] = set()  # directories with a bwrap op beneath them
    staged: set[int] = set()
    for i in range(len(ops) - 1, -1, -1):  # children before their parents
        op = ops[i]
        if op.dest not in below_bwrap and op is not source and spot \
                and not is_within(op.dest, spot) \
                and _stageable(op, mounted_at_or_above(_up(op.dest))):
            staged.add(i)
            continue
        d = op.dest
        while d != "/" and (d := _up(d)) not in below_bwrap:
            below_bwrap.add(d)
    within: dict[str, str] = {}  # a staged pin -> the bwrap bind above its chain of pins
    for i in sorted(staged):
        op = ops[i]
        if op.kind is OpKind.BIND:
            up = mounted_at_or_above(_up(op.dest))
            assert up is not None  # _stageable: a bind lies above
            within[op.dest] = within.get(up.dest, up.dest)
    split = OpSplit(tuple(op for i, op in enumerate(ops) if i not in staged),
                    tuple(op for i, op in enumerate(ops) if i in staged),
                    source if staged else None, spot, within)
    _last_split[:] = [(plan, split)]
    return split


_last_split: list[tuple[MountPlan, OpSplit]] = []


def _up(path: str) -> str:
    """os.path.dirname for the plan's normalised absolute paths, at a fraction of its cost."""
    return path[:path.rindex("/")] or "/"


def _name(path: str) -> str:
    """os.path.basename, likewise."""
    return path[path.rindex("/") + 1:]


def _stageable(op: MountOp, up: MountOp | None) -> bool:
    """Mounted from inside, `op` does what bwrap would only where the sandbox shows the
    host's own file at its path (not in /proc, a tmpfs or the empty root): beneath a bind of
    the same path (writable for a pin) or the read-only root; `up` is the op mounted
    nearest above it."""
    if op.dest == "/" or op.kind not in (OpKind.DENY_FILE, OpKind.BIND) \
            or op.kind is OpKind.BIND and op.source != op.dest:
        return False
    if up is None or up.kind is OpKind.RO_BIND_ROOT:
        return op.kind is OpKind.DENY_FILE
    return up.source == up.dest and (up.kind is OpKind.BIND or op.kind is OpKind.DENY_FILE
                                     and up.kind is OpKind.RO_BIND)


def record(split: OpSplit) -> tuple[Target, ...]:
    """Each staged op's destination and parent as found on the host now (while bwrap sets
    up: it mounts none of them); WorkspaceChanged if one is gone already, or is not what the
    plan's scan found there (`as_planned`)."""
    parents: dict[str, Ident | None] = {}
    out = []
    for op in split.staged:
        parent = _up(op.dest)
        if parent not in parents:
            parents[parent] = _ident(parent)
        try:
            st = os.lstat(op.dest)
        except OSError:
            st = None
        up = parents[parent]
        if st is None or up is None:
            raise WorkspaceChanged(
                f"{op.dest} no longer exists: the workspace changed since the plan was made "
                "(a running command renaming or deleting files?); launch again")
        if stat.S_ISLNK(st.st_mode) or stat.S_ISDIR(st.st_mode) != (op.kind is OpKind.BIND):
            # A mount on a symlink lands on its target; the plan masks no symlink.
            raise WorkspaceChanged(
                f"{op.dest} became a {'symlink' if stat.S_ISLNK(st.st_mode) else 'different'}"
                " kind of file since the plan was made (a running command?); nothing ran, "
                "launch again")
        as_planned(op, (st.st_dev, st.st_ino), up)
        out.append(Target(op.kind, op.dest, (st.st_dev, st.st_ino), up,
                          split.within.get(op.dest, "")))
    return tuple(out)


def _ident(path: str) -> Ident | None:
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


class _Refused(Exception):
    """One staged mount could not be made as planned: the sandbox must not run."""


class _Mounter:
    """The forked child's work, inside the sandbox's namespaces. Its working directory is the
    host's /proc/self/fd (opened before joining): `mount("M", "N")` there binds descriptor M
    onto descriptor N, so no path is looked up between the check and the mount."""

    def __init__(self, libc: ctypes.CDLL, empty: Ident, source: int,
                 dirs: dict[str, int]) -> None:
        self.libc = libc
        self.empty = empty
        self.source = str(source).encode()
        self.dirs = dirs  # path -> descriptor at its top mount
        self.checked: set[str] = set()
        self.spot_path = ""
        self.clones: dict[str, dict[str, int]] = {}  # bwrap bind -> its clone's directories

    @staticmethod
    def walk(dirs: dict[str, int], path: str) -> int:
        """`path` opened one component at a time, following no symlink. `dirs` caches the
        way down (plan order is depth first: what is not above `path` is not needed again,
        and closing it now and then keeps 10,000 directories below the open-files limit)."""
        if len(dirs) > 64:
            for known in [d for d in dirs if not is_within(path, d)]:
                os.close(dirs.pop(known))
        return _Mounter._open(dirs, path)

    @staticmethod
    def _open(dirs: dict[str, int], path: str) -> int:
        fd = dirs.get(path)
        if fd is None:
            parent = _Mounter._open(dirs, _up(path))
            try:
                fd = os.open(_name(path), _DIR, dir_fd=parent)
            except OSError as exc:
                raise _Refused(f"{path}: not the directory the plan was made from "
                               f"({_cause(exc, 'a symlink or a rename?')})") from exc
            dirs[path] = fd
        return fd

    def target(self, e: Target) -> tuple[int, int]:
        """(parent, target) descriptors of `e.dest`, each checked against the host record."""
        parent_path = _up(e.dest)
        parent = self.walk(self.dirs, parent_path)
        if parent_path not in self.checked:
            if _fd_ident(parent) != e.parent:
                raise _Refused(f"{e.dest}: the directory holding it is not the one the plan "
                               "was made from (renamed since?)")
            self.checked.add(parent_path)
        try:
            fd = os.open(_name(e.dest), _ANY, dir_fd=parent)
        except OSError as exc:
            raise _Refused(f"{e.dest}: cannot be opened "
                           f"({_cause(exc, 'removed or renamed since the plan was made?')})"
                           ) from exc
        if _fd_ident(fd) != e.ident:
            os.close(fd)
            raise _Refused(f"{e.dest} is not the file the plan was made from (replaced, "
                           "renamed or turned into a symlink since?)")
        return parent, fd

    def bind(self, e: Target, source: bytes | None, flags: int) -> int:
        """Bind `source` (None: the target itself) onto the checked target; its parent."""
        parent, fd = self.target(e)
        try:
            onto = str(fd).encode()
            if self.libc.mount(source or onto, onto, None, ctypes.c_ulong(flags), None) != 0:
                raise _Refused(f"{e.dest}: mount failed: {os.strerror(ctypes.get_errno())}")
        finally:
            os.close(fd)
        return parent

    def mask(self, e: Target) -> None:
        os.close(self.seen(e.dest, self.bind(e, self.source, _MS_BIND), self.empty, _ANY))

    def clone(self, root: str, spot: tuple[int, int]) -> None:
        """Hang a recursive clone of the bwrap bind at `root` on the spot (bwrap's /dev, for
        the stage only; `spot` is its parent's descriptor and its own): the pins beneath
        `root` are bound from it. A clone made now holds none of the stage's mounts, so
        binding from it costs the same for the 10,000th pin as for the first (bound from
        `root` itself, each pin would copy all its siblings)."""
        fd = self.walk(self.dirs, root)
        want = _fd_ident(fd)
        if self.libc.mount(str(fd).encode(), str(spot[1]).encode(), None,
                           ctypes.c_ulong(_MS_BIND | _MS_REC), None) != 0:
            raise _Refused(f"{root}: cannot clone it: {os.strerror(ctypes.get_errno())}")
        top = os.open(os.path.basename(self.spot_path), _DIR, dir_fd=spot[0])
        self.clones[root] = {root: top}
        if _fd_ident(top) != want:
            raise _Refused(f"{root}: its clone is not the same directory")

    def pin(self, e: Target) -> None:
        clone = self.clones[e.within]
        try:
            source = self.walk(clone, e.dest)
        except _Refused as exc:
            raise _Refused(f"{e.dest}: not the directory the plan was made from") from exc
        if _fd_ident(source) != e.ident:
            raise _Refused(f"{e.dest} is not the directory the plan was made from (renamed "
                           "since?)")
        # Recursive, as bwrap's binds are: host mounts beneath it come along.
        parent = self.bind(e, str(source).encode(), _MS_BIND | _MS_REC)
        old = self.dirs.pop(e.dest, None)
        if old is not None:
            os.close(old)
        self.dirs[e.dest] = self.seen(e.dest, parent, e.ident, _DIR)

    def unhang(self) -> None:
        """Detach every clone (the latest first); /dev is bwrap's again."""
        for clone in reversed(self.clones.values()):
            root = next(iter(clone.values()))
            if self.libc.umount2(str(root).encode(), _MNT_DETACH) != 0:
                raise _Refused(f"{self.spot_path}: cannot detach a pin source: "
                               f"{os.strerror(ctypes.get_errno())}")

    @staticmethod
    def seen(dest: str, parent: int, want: Ident, flags: int) -> int:
        """Mount-then-verify: the name now shows `want` (a rename between our check and the
        mount would leave it elsewhere); its descriptor."""
        try:
            fd = os.open(_name(dest), flags, dir_fd=parent)
        except OSError as exc:
            raise _Refused(f"{dest}: cannot be opened after mounting ({exc.strerror})") from exc
        if _fd_ident(fd) != want:
            os.close(fd)
            raise _Refused(f"{dest} is not masked after mounting (renamed meanwhile?)")
        return fd


def _cause(exc: OSError, guess: str) -> str:
    """Why an open failed: out of descriptors is said as such (with its remedy), anything
    else with `guess`."""
    if exc.errno in (errno.EMFILE, errno.ENFILE):
        return f"{exc.strerror}: raise the open-files limit (ulimit -n) and launch again"
    return f"{exc.strerror}; {guess}"


def _fd_ident(fd: int) -> Ident:
    st = os.fstat(fd)
    return st.st_dev, st.st_ino


def _child(namespaces: tuple[int, int], report: int, staged: tuple[Target, ...],
           source: str, spot: str, empty: Ident) -> None:
    """In the forked child: join the sandbox, mount, report "ok" or the problem."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        own_fds = os.open("/proc/self/fd", _DIR)  # the host's: the sandbox's procfs lacks us
        for fd, kind in zip(namespaces, (_CLONE_NEWUSER, _CLONE_NEWNS), strict=True):
            if libc.setns(fd, kind) != 0:
                raise _Refused(f"cannot join the sandbox's namespaces: "
                               f"{os.strerror(ctypes.get_errno())}")
        os.fchdir(own_fds)  # setns moved us to the sandbox's root
        dirs = {"/": os.open("/", _DIR)}
        source_fd = os.open(os.path.basename(source), _ANY,
                            dir_fd=_Mounter.walk(dirs, os.path.dirname(source)))
        if _fd_ident(source_fd) != empty or not stat.S_ISREG(os.fstat(source_fd).st_mode):
            raise _Refused(f"{source} is not masked by bwrap")
        m = _Mounter(libc, empty, source_fd, dirs)
        m.spot_path = spot
        spot_parent = os.dup(_Mounter.walk(dirs, os.path.dirname(spot)))
        spot_fd = os.open(os.path.basename(spot), _DIR, dir_fd=spot_parent)
        for root in dict.fromkeys(e.within for e in staged if e.within):
            m.clone(root, (spot_parent, spot_fd))
        for e in staged:
            if e.kind is OpKind.DENY_FILE:
                m.mask(e)
            else:
                m.pin(e)
        m.unhang()
        os.close(m.seen(spot, spot_parent, _fd_ident(spot_fd), _DIR))
        message = b"ok"
    except _Refused as exc:
        message = str(exc).encode(errors="replace")
    except BaseException as exc:  # noqa: BLE001 - whatever it is, the launch is refused
        message = f"the mask stage failed: {exc!r}".encode(errors="replace")
    with contextlib.suppress(OSError):
        os.write(report, message[:4096])
    os._exit(0)


def _namespaces(pid: int) -> tuple[int, int]:
    """The mount namespace of `pid` and the user namespace that owns it (unprivileged bwrap
    runs the command in a second user namespace nested in that one, which holds no
    capability over the mounts: neither does the command)."""
    pidfd = os.pidfd_open(pid)
    try:
        mnt = os.open(f"/proc/{pid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
        try:
            signal.pidfd_send_signal(pidfd, 0)  # still that process: not a reused pid
            return fcntl.ioctl(mnt, _NS_GET_USERNS), mnt
        except BaseException:
            os.close(mnt)
            raise
    finally:
        os.close(pidfd)


def apply(pid: int, staged: tuple[Target, ...], split: OpSplit, empty_file: str,
          patience: float) -> str | None:
    """Mount `staged` inside the sandbox whose first process (blocked before the command) is
    `pid`; None when every mount is in place and checked, else the problem."""
    empty = _ident(empty_file)
    if empty is None:
        return f"the empty file {empty_file} is gone"
    try:
        namespaces = _namespaces(pid)
    except OSError as exc:
        return f"cannot reach the sandbox's namespaces: {exc.strerror}"
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    try:
        child = os.fork()
        if child == 0:
            os.close(read_end)
            _child(namespaces, write_end, staged, split.source.dest if split.source else "",
                   split.spot, empty)
        os.close(write_end)
        write_end = -1
        ready, _, _ = select.select([read_end], [], [], max(patience, 0.0))
        if not ready:
            os.kill(child, signal.SIGKILL)
            os.waitpid(child, 0)
            return f"mounting {len(staged)} masks did not finish in time"
        message = os.read(read_end, 4096).decode(errors="replace")
        os.waitpid(child, 0)
    finally:
        os.close(read_end)
        if write_end >= 0:
            os.close(write_end)
        for fd in namespaces:
            os.close(fd)
    return None if message == "ok" else (message or "the mask stage ended without a word")
