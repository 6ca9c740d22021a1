"""Legacy Landlock (`features.use_legacy_landlock = true`): no namespaces; the exec stage
restricts itself (Landlock read beneath the readable roots, full access beneath the writable
ones, no-new-privs, the seccomp filter, resource limits), then execs the command and
supervises it. Landlock cannot subtract: denied paths inside a readable tree are left
unenforced, each named in a warning."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from typing import TYPE_CHECKING

from sandboxtui.core.bwrap import data_fd
from sandboxtui.core.outcome import RunResult, command_result
from sandboxtui.core.pipeline import Pipeline
from sandboxtui.core.pipelines.base import (
    Enforcer,
    Sandbox,
    StatusPipe,
    Streams,
    closing,
)
from sandboxtui.core.pipelines.stage import STAGE_ARGV, stage_spec
from sandboxtui.core.seccomp import SeccompFilter, compile_bpf, render_table

if TYPE_CHECKING:
    from sandboxtui.core.landlock import LandlockModel
    from sandboxtui.core.launch import LaunchSpec
    from sandboxtui.core.plan import Rule


class _Staged(Sandbox):
    def __init__(self, proc: subprocess.Popen[bytes], status: StatusPipe, argv: list[str]
                 ) -> None:
        self.proc = proc
        self.status = status
        self.argv = argv

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.terminate()  # the supervising exec stage kills what is left

    def result(self, code: int, duration: float, stderr_tail: bytes) -> RunResult:
        self.status.drain()
        failure = self.status.stage_failure()
        if failure is not None:  # the stage could not restrict or exec: nothing ran
            return RunResult(failure[0], duration, None, error=failure[1])
        return command_result(code, duration)

    def close(self) -> None:
        os.close(self.status.fd)


class LegacyLandlock(Enforcer):
    pipeline = Pipeline.LANDLOCK
    traceable = False  # same PID namespace, host /proc readable: it could forge trace lines

    def __init__(self, model: LandlockModel, seccomp: SeccompFilter) -> None:
        self.model = model
        self.seccomp = seccomp

    @property
    def unenforced(self) -> tuple[Rule, ...]:
        return self.model.unenforced

    def _stage(self, spec: LaunchSpec, **fds: int) -> dict[str, object]:
        return stage_spec(list(spec.command), dict(spec.plan.policy.limits.items()),
                          landlock={"read": list(self.model.read_roots),
                                    "write": list(self.model.write_roots),
                                    "list": list(self.model.list_roots)},
                          supervise=True, **fds)

    def argv(self, spec: LaunchSpec) -> list[str]:
        return [*STAGE_ARGV, "SPEC_FD", *spec.command]

    def describe(self, spec: LaunchSpec) -> list[str]:
        return ["legacy Landlock pipeline: the exec stage restricts itself, then execs:",
                *(f"  {a!r}" for a in self.argv(spec)),
                "", "Landlock read+execute beneath:",
                *(f"  {p!r}" for p in self.model.read_roots),
                "Landlock full access beneath:", *(f"  {p!r}" for p in self.model.write_roots),
                "", render_table(self.seccomp)]

    def start(self, spec: LaunchSpec, streams: Streams, patience: float | None) -> Sandbox:
        status_r, status_w = os.pipe2(os.O_CLOEXEC)
        try:
            with closing(status_w), \
                    closing(data_fd(compile_bpf(self.seccomp), "sandboxtui-seccomp")) as bpf, \
                    closing(data_fd(json.dumps(self._stage(
                        spec, seccomp_fd=bpf, status_fd=status_w)).encode(),
                        "sandboxtui-stage")) as stage:
                proc = streams.popen([*STAGE_ARGV, str(stage)], spec.cwd, dict(spec.env),
                                     (bpf, status_w, stage))
        except BaseException:
            os.close(status_r)
            raise
        return _Staged(proc, StatusPipe(status_r), [*STAGE_ARGV, str(stage), *spec.command])
