"""What an untraced `run` wrote to stderr, for the denial hint (core/trace.py `denial_hint`),
read without changing what the command's stderr is.

- A regular file (`2>log`, `>log 2>&1`): what the run appended is read back afterwards.
- A pipe or socket (an agent harness, `2>&1 | tee`): the command gets a pipe of the launcher's
  instead, and a thread copies every byte on to the original as it comes, keeping the last
  `TAIL` bytes. The command sees a pipe either way; when stdout is the same pipe, both go
  through the one copy, so their order is kept. When the reader of the original goes away,
  the copy stops and the command's next write fails, as it would have; a slow reader is
  waited for after the command ends, so nothing is dropped.
- A terminal (or /dev/null): nothing is read. Putting a pipe between the command and the
  terminal would change the command (colours, progress bars, prompts); `sandboxtui trace`
  is the way to see what was refused.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import stat
import threading
from collections.abc import Callable, Iterator

TAIL = 1 << 16  # the bytes kept: the hint reads the last lines
PIPE_SIZE = 1 << 20  # the copy's pipe and reads
LEFTOVER_WAIT = 5.0  # seconds a copy may wait for a writer other than the ended command


@contextlib.contextmanager
def stderr_tail(fd: int = 2) -> Iterator[Callable[[], str]]:
    """While the block runs, children inherit an `fd` whose output can be read back; the
    yielded function gives the last `TAIL` bytes written meanwhile ("" where nothing can be
    read without interposing: a terminal)."""
    try:
        st = os.fstat(fd)
    except OSError:
        yield lambda: ""
        return
    if stat.S_ISREG(st.st_mode):
        with _read_back(fd, st) as tail:
            yield tail
    elif stat.S_ISFIFO(st.st_mode) or stat.S_ISSOCK(st.st_mode):
        with _relayed(fd, st) as tail:
            yield tail
    else:
        yield lambda: ""


@contextlib.contextmanager
def _read_back(fd: int, st: os.stat_result) -> Iterator[Callable[[], str]]:
    appending = fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_APPEND
    start = st.st_size if appending else os.lseek(fd, 0, os.SEEK_CUR)
    seen = ""

    def tail() -> str:
        return seen

    yield tail
    try:
        reader = os.open(f"/proc/self/fd/{fd}", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        end = os.fstat(reader).st_size
        begin = max(start, end - TAIL)
        seen = os.pread(reader, max(end - begin, 0), begin).decode(errors="replace")
    finally:
        os.close(reader)


@contextlib.contextmanager
def _relayed(fd: int, st: os.stat_result) -> Iterator[Callable[[], str]]:
    # stdout on the same pipe goes through the same copy, in the order it was written
    fds = [fd]
    with contextlib.suppress(OSError):
        out = os.fstat(1)
        if fd != 1 and (out.st_dev, out.st_ino) == (st.st_dev, st.st_ino):
            fds.append(1)
    original = os.dup(fd)
    r, w = os.pipe2(os.O_CLOEXEC)
    with contextlib.suppress(OSError):  # fewer, larger copies (the unprivileged maximum)
        fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
    kept = bytearray()

    reading = threading.Event()  # the copy waits for the command, not for the reader

    def copy() -> None:
        while True:
            reading.set()
            chunk = os.read(r, PIPE_SIZE)
            reading.clear()
            if not chunk:
                break
            kept.extend(chunk)
            del kept[:-TAIL]
            if not _write_all(original, chunk):
                break  # the reader went away: the command's next write fails
        os.close(r)

    saved = [os.dup(n) for n in fds]
    for n in fds:
        os.dup2(w, n)  # inheritable: the command's stderr
    os.close(w)
    thread = threading.Thread(target=copy, name="sandboxtui-stderr", daemon=True)
    thread.start()
    try:
        yield lambda: bytes(kept).decode(errors="replace")
    finally:
        for n, old in zip(fds, saved, strict=True):
            os.dup2(old, n)
            os.close(old)
        # The sandbox is gone, and its ends of the pipe with it: the copy ends once the
        # original's reader has taken everything (a slow reader is waited for: nothing is
        # dropped). Only a copy left waiting to read (a writer left behind) is given up.
        waiting = 0.0
        while thread.is_alive() and waiting < LEFTOVER_WAIT:
            thread.join(0.1)
            waiting = waiting + 0.1 if reading.is_set() else 0.0
        if not thread.is_alive():  # else the copy keeps its descriptors
            os.close(original)


def _write_all(fd: int, data: bytes) -> bool:
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view):]
        except BlockingIOError:  # the original is non-blocking: wait until it takes more
            select.select([], [fd], [])
        except OSError:
            return False
    return True
