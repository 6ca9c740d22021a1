"""What a launch ends in, for every caller (CLI, TUI, verify): the exit codes, the one error
base every refusal shares, and the result of a command that ran.

Exit codes (the command's own otherwise): 128+N when signal N ended it; 2 usage or config
error; 3 denied by the precheck or an approver; 4 the sandbox could not be enforced; 126 / 127
the command is not executable / not found (kept apart from sandbox failures).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    MISMATCH = 1  # verify: the kernel's answers disagree with the picture
    USAGE = 2
    DENIED = 3
    UNENFORCEABLE = 4
    NOT_EXECUTABLE = 126
    NOT_FOUND = 127

    @staticmethod
    def signalled(signum: int) -> int:
        """The exit code of a command that signal `signum` ended."""
        return 128 + signum


class SandboxtuiError(Exception):
    """A refusal: nothing (more) happens. `exit_code` is what the CLI exits with, `remedy`
    what would change the answer (empty when the message already says it)."""

    exit_code: int = ExitCode.UNENFORCEABLE
    label: str = ""  # what the CLI puts before the message ("config error: ")

    def __init__(self, message: str, *, exit_code: int | None = None, remedy: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.remedy = remedy
        if exit_code is not None:
            self.exit_code = exit_code


class LaunchError(SandboxtuiError):
    """The command cannot be launched: nothing ran."""

    def __init__(self, exit_code: int, message: str) -> None:
        super().__init__(message, exit_code=exit_code)


@dataclass(frozen=True)
class OutputEvent:
    stream: str  # "stdout" | "stderr"
    data: bytes


@dataclass(frozen=True)
class RunResult:
    exit_code: int  # the command's, 128+N on signal N, 4, 126, 127
    duration: float  # seconds, spawn to exit
    signal: int | None  # the signal that ended the command, when known
    timed_out: bool = False
    cancelled: bool = False
    error: str | None = None  # why nothing (or not the command) ran: exit 4 / 126 / 127
    # what was done to repositories the command created or changed (gitguard), one line each
    git_neutralised: tuple[str, ...] = ()


def command_result(code: int, duration: float) -> RunResult:
    """A command's own end: a negative code (Popen's) is the signal that ended it, and so is
    a code of 128+N (a shell's, or bwrap's report)."""
    if code < 0:
        return RunResult(ExitCode.signalled(-code), duration, -code)
    return RunResult(code, duration, code - 128 if 128 < code < 128 + 65 else None)
