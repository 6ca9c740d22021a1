"""The host terminal's side of a launch: strings from the command are never
interpreted by it, and the state the command leaves it in is undone.

`inert()` is the one function every untrusted string (command output, argv, file names, rule
reasons that quote paths) goes through before it reaches a terminal, the CLI's and the TUI's
alike. `preserved()` wraps every launch that hands the terminal to the command.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import signal
import struct
import termios
from collections.abc import Iterator
from dataclasses import dataclass

# What a terminal acts on instead of showing: C0 controls and DEL (ESC starts CSI/OSC/DCS),
# C1 controls (0x9b is a one-byte CSI, 0x9d a one-byte OSC), lone surrogates (an undecodable
# file name; they cannot even be encoded for the terminal), and the characters that move text
# around without being seen: line/paragraph separators and bidi controls ("Trojan source").
_HIDDEN = "\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff"
_UNSAFE = re.compile(f"[\x00-\x1f\x7f-\x9f{_HIDDEN}]")
_UNSAFE_KEEP_LINES = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{_HIDDEN}]")


def _escape(match: re.Match[str]) -> str:
    return repr(match.group())[1:-1]  # ESC -> \x1b, newline -> \n, U+202E -> \u202e


def inert(text: str, *, lines: bool = False) -> str:
    """`text` with every character a terminal would act on spelled out as visible Python-style
    escapes (`\\x1b]0;title\\x07`), so a string from a command or a hostile file name cannot
    repaint, retitle or reprogram the terminal, nor forge a line. `lines=True` keeps newlines
    and tabs (multi-line command output). Callers that render with Rich still must not parse
    the result as markup (pass it as `Text`, never as a markup string)."""
    return (_UNSAFE_KEEP_LINES if lines else _UNSAFE).sub(_escape, text)


# Exclusive mode (TIOCEXCL) makes every later open of the terminal fail with EBUSY for users
# without CAP_SYS_ADMIN: sudo, ssh and gpg prompts open /dev/tty. Python's termios has neither
# the query nor the clear; these are the asm-generic numbers, used only where they apply.
TIOCNXCL, TIOCGEXCL = 0x540D, 0x80045440
_GENERIC_IOCTLS = {"x86_64", "i686", "aarch64", "armv7l", "riscv64", "s390x", "loongarch64"}


@dataclass(frozen=True)
class _Saved:
    fd: int  # our own descriptor for the terminal, closed after the restore
    attrs: list[object]  # termios.tcgetattr()
    size: bytes  # struct winsize, TIOCGWINSZ
    exclusive: bool | None  # TIOCEXCL set (None: cannot tell on this architecture)


def _exclusive(fd: int) -> bool | None:
    if os.uname().machine not in _GENERIC_IOCTLS:
        return None
    try:
        return struct.unpack("i", fcntl.ioctl(fd, TIOCGEXCL, bytes(4)))[0] != 0
    except OSError:
        return None


def _terminals() -> Iterator[int]:
    """Our own descriptors for stdin, stdout, stderr and the controlling terminal."""
    for fd in (0, 1, 2):
        with contextlib.suppress(OSError):
            if os.isatty(fd):
                yield os.dup(fd)
    with contextlib.suppress(OSError):
        yield os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)


def _save() -> list[_Saved]:
    saved: list[_Saved] = []
    seen: set[int] = set()
    for fd in _terminals():
        try:
            device = os.fstat(fd).st_rdev
            if device not in seen:
                saved.append(_Saved(fd, termios.tcgetattr(fd),
                                    fcntl.ioctl(fd, termios.TIOCGWINSZ, bytes(8)),
                                    _exclusive(fd)))
                seen.add(device)
                continue
        except (OSError, termios.error):
            pass
        os.close(fd)  # not a terminal after all, or one already saved
    return saved


def _restore(saved: list[_Saved]) -> None:
    # A launcher in a background process group would be stopped by SIGTTOU on tcsetattr;
    # with SIGTTOU blocked the kernel lets the restore through.
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTTOU})
    try:
        for s in saved:
            with contextlib.suppress(OSError, termios.error):
                if termios.tcgetattr(s.fd) != s.attrs:
                    termios.tcsetattr(s.fd, termios.TCSANOW, s.attrs)
            with contextlib.suppress(OSError):
                if fcntl.ioctl(s.fd, termios.TIOCGWINSZ, bytes(8)) != s.size:
                    fcntl.ioctl(s.fd, termios.TIOCSWINSZ, s.size)
            with contextlib.suppress(OSError, termios.error):
                termios.tcflow(s.fd, termios.TCOON)  # output the command stopped flows again
            with contextlib.suppress(OSError):
                if s.exclusive is not None and _exclusive(s.fd) != s.exclusive:
                    fcntl.ioctl(s.fd, termios.TIOCEXCL if s.exclusive else TIOCNXCL)
            os.close(s.fd)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)


@contextlib.contextmanager
def preserved() -> Iterator[None]:
    """Save the modes (termios), window size and exclusive mode of every terminal the command
    can reach (stdin, stdout, stderr, the controlling terminal) and put them back on exit, with
    output flowing: `stty -echo -isig`, `stty rows 3`, TIOCEXCL or tcflow(TCOOFF) must not
    outlive the command, however it ended. A window resized
    by the user during the run is set back to its size at launch too (the kernel cannot tell
    who resized it)."""
    saved = _save()
    try:
        yield
    finally:
        _restore(saved)
