"""The bubblewrap pipeline: `MountPlan.ops` -> bwrap arguments, and the host files they need.

`bwrap_options()` is the only place that turns a plan into bwrap arguments (each mount op through
`plan.mount_args`, which `MountOp.describe` reads too); `run --dry-run`, the TUI and the launcher
all print or execute its output. The options travel to bwrap through `--args FD` (NUL-separated),
so paths with newlines or a leading `-` and plans with thousands of carveouts need no quoting and
hit no argv limit. Denied files (all but one) and the pins above them are not bwrap arguments:
the mask stage (core/mask_stage.py) mounts them while bwrap waits.

Host side effects (`LaunchFiles`), documented for the threat model:

- Every launch gets a private directory (mode 0700) under the per-user runtime directory
  (`$XDG_RUNTIME_DIR/sandboxtui`, else `/tmp/sandboxtui-UID`) holding one empty, mode-000 file.
  It is bound read-only over denied files and over missing protected files. The whole runtime
  directory is hidden inside the sandbox (empty read-only tmpfs), so the sandboxed command
  cannot chmod or fill that file, nor touch another launch's files. The directory is removed
  when the launch ends.
- A missing protected path inside a writable root (say `.git` or `.agents`, also in `/tmp`) is
  blocked by a mount over it, which needs a mount point on the host: before bwrap starts, the
  launcher creates an empty directory (mode 0555) there for a directory name (`.git`,
  `.codex`, `.agents`, a git directory's `hooks`, `info`, ...; inside, an empty read-only tmpfs
  is mounted on it, which git takes for "not a repository"), or an empty, read-only regular
  file for a file name (`config`; the empty mode-000 file is bound over it). While any sandbox
  runs, these are visible on the host (an empty `.git` directory: host `git` goes on up, as
  if it were absent). Each launch holds a shared flock on every placeholder it mounts over;
  after its sandbox exits it removes the ones it created, but only under an exclusive flock (so
  never while another launch, of any user, still mounts over it: removing a mount point would
  detach that mount inside the running sandbox and make the path creatable there) and only
  while each is still an empty regular file or empty directory of ours with the placeholder
  mode. A placeholder left by an overlapping or crashed launch is listed in a
  record in the runtime directory (locked by its launch while that lives) and removed by a
  later launch of the same user. A launch directory is swept only once the process that made
  it is gone (so a fresh one is never removed before its launch locks it).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import stat
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from sandboxtui.core.mask_stage import split_ops
from sandboxtui.core.outcome import SandboxtuiError
from sandboxtui.core.paths import runtime_dir
from sandboxtui.core.plan import PLACEHOLDER_DIR_MODE, MountPlan, OpKind, _lstat, mount_args
from sandboxtui.core.policy import NetworkMode

# bubblewrap refuses more arguments than this (its MAX_ARGS, `--args` contents included): with
# six arguments per denied directory, a plan can hold about 1,490 of them (denied files are
# mounted by the mask stage, which has no such limit).
BWRAP_MAX_ARGS = 9000


class SandboxSetupError(SandboxtuiError):
    """The sandbox cannot be prepared (exit 4): the message names the cause."""


@dataclass(frozen=True)
class LaunchFiles:
    """Per-launch host resources the bwrap arguments refer to."""

    runtime_dir: str  # per-user, hidden inside every sandbox
    empty_file: str  # empty, mode 000: bound over denied files and missing protected paths
    seccomp_fd: int | None  # compiled BPF for --seccomp
    status_fd: int | None  # write end for --json-status-fd
    block_fd: int = 5  # read end for --block-fd: bwrap waits on it before running the command


def dry_run_files() -> LaunchFiles:
    """What `run --dry-run` shows for the per-launch values (a real launch picks its own)."""
    base = runtime_dir()
    return LaunchFiles(base, f"{base}/launch-XXXX/empty", 3, 4, 5)


def bwrap_options(plan: MountPlan, files: LaunchFiles, chdir: str) -> list[str]:
    """The bwrap options (everything before `--`) that realise `plan`, in order."""
    if plan.unsandboxed:
        raise ValueError("an unsandboxed plan has no bwrap arguments")
    # A private IPC namespace: the host's SysV shared memory, queues and semaphores stay out.
    args = ["--new-session", "--die-with-parent", "--unshare-user", "--unshare-pid",
            "--unshare-ipc"]
    if plan.policy.network is not NetworkMode.ON:
        args.append("--unshare-net")
    # bwrap started by root keeps every capability inside the sandbox unless told otherwise.
    args += ["--cap-drop", "ALL"]
    tail: list[str] = []
    for op in split_ops(plan).bwrap:  # the mask stage mounts the rest (core/mask_stage.py)
        op_args = mount_args(op, files.empty_file)
        args += op_args.now
        tail += op_args.last
    args += tail
    args += ["--chdir", chdir]
    if files.seccomp_fd is not None:
        args += ["--seccomp", str(files.seccomp_fd)]
    if files.status_fd is not None:
        args += ["--json-status-fd", str(files.status_fd)]
    return args


def display_argv(bwrap: str, options: Sequence[str], command: Sequence[str]) -> list[str]:
    """The argv as if the options were inline: what `--dry-run` and the TUI print."""
    return [bwrap, *options, "--", *command]


def encode_args(options: Sequence[str]) -> bytes:
    """The `--args FD` payload: NUL-terminated arguments."""
    for a in options:
        if "\0" in a:
            raise SandboxSetupError(f"argument {a!r} contains a NUL byte")
    return b"".join(os.fsencode(a) + b"\0" for a in options)


def data_fd(data: bytes, name: str) -> int:
    """A close-on-exec memfd at offset 0 holding `data` (bwrap reads it to EOF)."""
    fd = os.memfd_create(name, os.MFD_CLOEXEC)
    try:
        os.write(fd, data)
        os.lseek(fd, 0, os.SEEK_SET)
    except OSError:
        os.close(fd)
        raise
    return fd


# --- per-user runtime directory, placeholders ------------------------------------------------


def _private_dir(path: str) -> None:
    """Create `path` 0700, or accept it only if it is ours, a real directory, and private."""
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700)
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise SandboxSetupError(
            f"runtime directory {path} is not a private directory owned by uid {os.getuid()} "
            f"(mode {stat.filemode(st.st_mode)}, owner {st.st_uid}); remove it and retry")


PLACEHOLDER_MODE = 0o444


class _Placeholders:
    """Host mount points for missing protected paths, shared safely between launches.

    Each launch creates (or finds) the placeholder itself before bwrap runs and holds a shared
    flock on it while its sandbox lives. A placeholder is removed only by an exclusive flock
    that succeeds, i.e. when no launch of any user still binds over it (unlinking a mount point
    would detach the mount inside a running sandbox), and only while it is an empty regular
    file or empty directory of ours with the placeholder mode (the directory's fd carries the
    flocks). Placeholders this user created are listed in a
    record file, so that a later launch removes the ones a crashed or overlapping launch had to
    leave; each launch holds an exclusive flock on its own record while it lives, so no other
    launch judges (and deletes) a record whose placeholders are not created yet. (A record
    is only as trustworthy as the runtime directory: bwrap sandboxes cannot see it, but a
    pipeline that leaves `/tmp` writable must not share a `/tmp` runtime directory.)
    """

    def __init__(self, records_dir: str, token: str) -> None:
        self.records_dir = records_dir
        self.record = os.path.join(records_dir, f"{token}.json")
        self.record_fd: int | None = None  # exclusively locked while this launch lives
        self.held: list[int] = []

    def hold(self, plan: MountPlan) -> None:
        paths = [(op.dest, op.kind is OpKind.BLOCK_MISSING_DIR) for op in plan.ops
                 if op.kind in (OpKind.BLOCK_MISSING, OpKind.BLOCK_MISSING_DIR)]
        # Recorded before anything is created, so that even a crash leaves a trace.
        intended = [p for p, _ in paths if _lstat(p) is None]
        if intended:
            self._write_record(intended)
        created = []
        for path, is_dir in paths:
            fd, made = self._open_dir(path) if is_dir else self._open(path)
            if fd is not None:
                self.held.append(fd)
            if made:
                created.append(path)
        if created != intended:
            self._write_record(created)

    def _write_record(self, paths: list[str]) -> None:
        if self.record_fd is None:
            self.record_fd = _locked_record(self.record)
        data = json.dumps(paths).encode()
        os.ftruncate(self.record_fd, 0)
        os.pwrite(self.record_fd, data, 0)

    def _open(self, path: str) -> tuple[int | None, bool]:
        """Open (creating if missing) and share-lock the placeholder at `path`."""
        for _ in range(5):
            made = False
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                             | os.O_CLOEXEC, PLACEHOLDER_MODE)
                os.fchmod(fd, PLACEHOLDER_MODE)  # exactly, whatever the umask
                made = True
            except FileExistsError:
                try:
                    # O_NONBLOCK: a FIFO planted under the name must not hang the launch
                    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK
                                 | os.O_CLOEXEC)
                except OSError:
                    _refuse_symlink(path)
                    return None, False  # not a file we can lock: bwrap binds whatever is there
            except OSError as exc:
                raise SandboxSetupError(f"cannot create the placeholder {path} that keeps it "
                                        f"from being created: {exc.strerror}") from exc
            if _locked_if_current(fd, path, fcntl.LOCK_SH):
                return fd, made
        raise SandboxSetupError(f"the placeholder {path} keeps changing; retry the launch")

    def _open_dir(self, path: str) -> tuple[int | None, bool]:
        """Make (if missing) and share-lock the placeholder directory at `path`."""
        for _ in range(5):
            made = False
            try:
                os.mkdir(path, PLACEHOLDER_DIR_MODE)
                made = True
            except FileExistsError:
                pass
            except OSError as exc:
                raise SandboxSetupError(f"cannot create the placeholder directory {path} that "
                                        f"keeps it from being created: {exc.strerror}") from exc
            try:
                fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
            except FileNotFoundError:
                continue  # removed by another launch's cleanup meanwhile: retry
            except OSError:
                _refuse_symlink(path)
                return None, False  # not a directory we can lock: bwrap mounts over it
            if made:
                os.fchmod(fd, PLACEHOLDER_DIR_MODE)  # exactly, whatever the umask
            if _locked_if_current(fd, path, fcntl.LOCK_SH):
                return fd, made
        raise SandboxSetupError(f"the placeholder {path} keeps changing; retry the launch")

    def release(self) -> None:
        for fd in self.held:
            os.close(fd)
        self.held = []
        # Our record is judged like any other from here: a live launch holds its record's
        # exclusive lock, an ending one only a shared lock while it looks. Ending launches
        # never skip each other's records, so the last one out removes what the others had
        # to leave (they skipped one another while a record's owner held it exclusively).
        if self.record_fd is not None:
            os.close(self.record_fd)
            self.record_fd = None
        for name in os.listdir(self.records_dir):
            record = os.path.join(self.records_dir, name)
            try:
                fd = os.open(record, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                # A record whose launch still lives (or is being written) is not ours to
                # judge: its placeholders may not exist yet.
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            try:
                try:
                    paths = json.loads(os.pread(fd, 1 << 20, 0) or b"[]")
                except (OSError, ValueError):
                    paths = []
                if not isinstance(paths, list):
                    paths = []
                if all([_remove_if_unused(p) for p in paths if isinstance(p, str)]):
                    with contextlib.suppress(OSError):
                        os.unlink(record)
            finally:
                os.close(fd)


def _locked_record(path: str) -> int:
    """Create and exclusively lock this launch's record (retrying if another launch's cleanup
    removed the name between our open and our lock)."""
    for _ in range(5):
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        if _locked_if_current(fd, path, fcntl.LOCK_EX):
            return fd
    raise SandboxSetupError(f"the placeholder record {path} keeps vanishing; retry the launch")


def _locked_if_current(fd: int, path: str, operation: int) -> bool:
    """flock `fd`; True if `path` still names it, else (another launch's cleanup removed or
    replaced it between our open and our lock) close it for the caller to retry."""
    fcntl.flock(fd, operation)
    if _same_file(fd, path):
        return True
    os.close(fd)
    return False


def _same_file(fd: int, path: str) -> bool:
    st, now = os.fstat(fd), _lstat(path)
    return now is not None and (st.st_dev, st.st_ino) == (now.st_dev, now.st_ino)


def _refuse_symlink(path: str) -> None:
    """A symlink where the plan found nothing (or a placeholder) was planted since: bwrap would
    mount over the link's target, and the name itself would stay creatable inside."""
    st = _lstat(path)
    if st is not None and stat.S_ISLNK(st.st_mode):
        raise SandboxSetupError(f"{path} became a symlink since the plan was made (a running "
                                "command?); nothing ran, launch again")


def _remove_if_unused(path: str) -> bool:
    """Remove the placeholder unless a launch holds it; True when nothing is left to do."""
    try:
        # O_NONBLOCK: a FIFO another sandbox put in its place must not hang the cleanup
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return True  # gone, or no longer a file we made
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return False  # still bound over by a running launch
    try:
        st, same = os.fstat(fd), _same_file(fd, path)
        ours = same and st.st_uid == os.getuid()
        if ours and stat.S_ISREG(st.st_mode) and st.st_size == 0 \
                and stat.S_IMODE(st.st_mode) == PLACEHOLDER_MODE:
            with contextlib.suppress(OSError):
                os.unlink(path)
        elif ours and stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) \
                == PLACEHOLDER_DIR_MODE:
            with contextlib.suppress(OSError):
                os.rmdir(path)  # only while empty
    finally:
        os.close(fd)
    return True


def stale_dirs(base: str, abandoned: Callable[[str], bool]) -> Iterator[str]:
    """Directories in `base` whose name `abandoned` accepts and whose flock is free (their
    owner died without cleaning up); each is yielded while we hold its lock."""
    for name in os.listdir(base):
        if not abandoned(name):
            continue
        path = os.path.join(base, name)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue
        else:
            yield path
        finally:
            os.close(fd)


def pid_gone(name: str, prefix: str) -> bool:
    """Is `name` (`PREFIX-PID-...`) a per-launch entry whose creating process has died? A live
    creator's directory is never swept, so one that exists but is not locked yet is safe."""
    pid = name[len(prefix):].split("-", 1)[0] if name.startswith(prefix) else ""
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # another user's live process
    return False


def _remove_stale_launch_dirs(base: str) -> None:
    for path in stale_dirs(base, lambda name: pid_gone(name, "launch-")):
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(path, "empty"))
        with contextlib.suppress(OSError):
            os.rmdir(path)


@contextlib.contextmanager
def launch_files(plan: MountPlan, *, seccomp_fd: int | None,
                 status_fd: int | None) -> Iterator[LaunchFiles]:
    """Prepare the per-launch host files; clean them (and placeholders) up afterwards."""
    base = runtime_dir()
    token = f"{os.getpid()}-{os.urandom(6).hex()}"
    launch_dir = os.path.join(base, f"launch-{token}")
    try:
        _private_dir(base)
        records = os.path.join(base, "placeholders")
        _private_dir(records)
        os.mkdir(launch_dir, 0o700)
        dir_fd = os.open(launch_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise SandboxSetupError(f"cannot prepare runtime directory {base}: {exc}") from exc
    placeholders = _Placeholders(records, token)
    try:
        fcntl.flock(dir_fd, fcntl.LOCK_EX)  # marks this launch directory as in use
        empty = os.path.join(launch_dir, "empty")
        os.close(os.open(empty, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o000))
        placeholders.hold(plan)
        yield LaunchFiles(base, empty, seccomp_fd, status_fd)
    finally:
        placeholders.release()
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(launch_dir, "empty"))
        with contextlib.suppress(OSError):
            os.rmdir(launch_dir)
        os.close(dir_fd)
        _remove_stale_launch_dirs(base)
