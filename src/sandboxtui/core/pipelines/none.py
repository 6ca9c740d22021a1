"""No sandbox (`sandbox_mode = "danger-full-access"`): the command runs directly, in a
session of its own so that cancel and timeout reach every process it started."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from typing import TYPE_CHECKING

from sandboxtui.core.outcome import RunResult, command_result
from sandboxtui.core.pipeline import Pipeline
from sandboxtui.core.pipelines.base import Enforcer, Sandbox, Streams, dying_with_parent

if TYPE_CHECKING:
    from sandboxtui.core.launch import LaunchSpec


class _Direct(Sandbox):
    def __init__(self, proc: subprocess.Popen[bytes], argv: list[str]) -> None:
        self.proc = proc
        self.argv = argv

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    def result(self, code: int, duration: float, stderr_tail: bytes) -> RunResult:
        return command_result(code, duration)


class Unsandboxed(Enforcer):
    pipeline = Pipeline.UNSANDBOXED
    seccomp = None

    def argv(self, spec: LaunchSpec) -> list[str]:
        return list(spec.command)

    def describe(self, spec: LaunchSpec) -> list[str]:
        return ["UNSANDBOXED (danger-full-access): the command runs directly:",
                "  " + " ".join(map(repr, self.argv(spec)))]

    def start(self, spec: LaunchSpec, streams: Streams, patience: float | None) -> Sandbox:
        # its own session (cancel kills the group), and killed if the launcher dies; a
        # descendant that leaves the session is beyond reach: there is no sandbox to end
        return _Direct(streams.popen(list(spec.command), spec.cwd, dict(spec.env), (),
                                     dying_with_parent(None), start_new_session=True),
                       list(spec.command))
