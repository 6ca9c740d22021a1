"""bubblewrap, the default pipeline: the plan's mount operations become bwrap's options (on an
`--args` memfd), the compiled seccomp filter goes in on a `--seccomp` memfd, and bwrap reports
on a `--json-status-fd` pipe. Resource limits put the exec stage in front of bwrap.

bwrap starts with `--block-fd`: once it has set up every mount it waits, and the launcher
checks through `/proc/PID/root` that the mounts landed on the very directories the plan was
made from (`setup_check`), killing the sandbox before the command runs if a rename moved them
(exit 4). With the network off the launcher also serves the Unix-socket gate (unix_gate).

bwrap's status tells the ends apart: an `exit-code` record means the command ran (its code, or
128+N after signal N); none means bwrap failed before the command started: exit 4 with bwrap's
message as the cause, or 126/127 when bwrap's own exec of the command failed (when stderr is
not captured, bwrap's message goes to the terminal; whether bwrap got as far as `--block-fd`
tells the two apart).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import signal
import time
from dataclasses import replace
from typing import TYPE_CHECKING

from sandboxtui.core import mask_stage, setup_check, unix_gate
from sandboxtui.core.bwrap import (
    BWRAP_MAX_ARGS,
    LaunchFiles,
    bwrap_options,
    data_fd,
    display_argv,
    dry_run_files,
    encode_args,
    launch_files,
)
from sandboxtui.core.outcome import ExitCode, LaunchError, RunResult, command_result
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
    from sandboxtui.core.launch import LaunchSpec


class Bubblewrap(Enforcer):
    pipeline = Pipeline.BWRAP
    mounts_plan = True

    def __init__(self, bwrap: str, seccomp: SeccompFilter) -> None:
        self.bwrap = bwrap
        self.seccomp = seccomp

    @property
    def program(self) -> str:
        return self.bwrap

    def check(self, spec: LaunchSpec) -> None:
        count = len(self.options(spec)) + len(self.sandbox_command(spec)) + 4
        if count > BWRAP_MAX_ARGS:
            raise LaunchError(ExitCode.UNENFORCEABLE, f"the plan needs {count} bwrap arguments "
                              f"but bubblewrap accepts at most {BWRAP_MAX_ARGS} (about 1,490 "
                              "denied directories); deny a common parent directory or narrow "
                              "sensitive_paths")

    # -- what bwrap is given --

    @property
    def outer_filter(self) -> SeccompFilter:
        """The filter every process of the sandbox carries from its start, bwrap's own init
        included (else a command could write into that unfiltered init through /proc/1/mem)."""
        return self.seccomp

    def sandbox_command(self, spec: LaunchSpec, wrapper: list[str] | None = None) -> list[str]:
        """What bwrap runs inside: the command."""
        return list(spec.command)

    def options(self, spec: LaunchSpec, files: LaunchFiles | None = None) -> list[str]:
        files = dry_run_files() if files is None else files
        # bwrap waits on this pipe once the mounts are set up: the launcher checks them first
        return [*bwrap_options(spec.plan, files, spec.cwd), "--block-fd", str(files.block_fd)]

    @staticmethod
    def staged(spec: LaunchSpec) -> bool:
        """Resource limits: the exec stage sets them, then execs bwrap."""
        return bool(spec.plan.policy.limits.items())

    def argv(self, spec: LaunchSpec) -> list[str]:
        inner = display_argv(self.bwrap, self.options(spec), self.sandbox_command(spec))
        return [*STAGE_ARGV, "SPEC_FD", *inner] if self.staged(spec) else inner

    def describe(self, spec: LaunchSpec) -> list[str]:
        staged = mask_stage.split_ops(spec.plan).staged
        return ["bwrap argv (options go to bwrap through --args FD; the launch-XXXX directory "
                "and the fd numbers are allocated per launch):",
                *(f"  {a!r}" for a in self.argv(spec)), "",
                *([f"mounted by the mask stage while bwrap waits, before the command "
                   f"({len(staged)}; each checked against the host file first):",
                   *(f"  {op.describe()}" for op in staged), ""] if staged else []),
                render_table(self.seccomp)]

    # -- the launch --

    def wrap(self, spec: LaunchSpec, sandbox: BwrapSandbox, until_spawned: contextlib.ExitStack
             ) -> tuple[list[str], tuple[int, ...]]:
        """The command bwrap runs and the extra descriptors it needs (none here; the proxy
        mode puts its inside program in front)."""
        return self.sandbox_command(spec), ()

    def start(self, spec: LaunchSpec, streams: Streams, patience: float | None) -> Sandbox:
        sandbox = BwrapSandbox(self, spec, streams.capture)
        try:
            sandbox.spawn(spec, streams, patience)
        except BaseException:
            sandbox.close()
            raise
        return sandbox


class BwrapSandbox(Sandbox):
    """One bwrap launch: its files, its status pipe, its setup check and its gate."""

    def __init__(self, enforcer: Bubblewrap, spec: LaunchSpec, capture: bool) -> None:
        self.enforcer = enforcer
        self.spec = spec
        self.capture = capture
        self.cleanup = contextlib.ExitStack()
        self.released = False  # bwrap set the sandbox up and the command was let start
        self.expected: tuple[setup_check.Expected, ...] = ()
        self.split: mask_stage.OpSplit | None = None
        self.wall_start = time.time()
        status_r, self._status_w = os.pipe2(os.O_CLOEXEC)
        self.cleanup.enter_context(closing(status_r))
        self.status = StatusPipe(status_r)

    def spawn(self, spec: LaunchSpec, streams: Streams, patience: float | None) -> None:
        enforcer = self.enforcer
        with contextlib.ExitStack() as until_spawned:  # bwrap has its own copies after
            until_spawned.enter_context(closing(self._status_w))
            seccomp_fd = until_spawned.enter_context(closing(data_fd(
                compile_bpf(enforcer.outer_filter), "sandboxtui-seccomp")))
            files = self.cleanup.enter_context(launch_files(
                spec.plan, seccomp_fd=seccomp_fd, status_fd=self._status_w))
            self.split = mask_stage.split_ops(spec.plan)
            self.expected = setup_check.expected(spec.plan, self.split.bwrap)
            self.empty_file = files.empty_file
            block_r, self.block_w = os.pipe2(os.O_CLOEXEC)
            self.cleanup.enter_context(closing(self.block_w))
            until_spawned.enter_context(closing(block_r))
            self.block_fd = block_r
            options = enforcer.options(spec, replace(files, block_fd=block_r))
            command, inside_fds = enforcer.wrap(spec, self, until_spawned)
            self.argv = display_argv(enforcer.bwrap, options, command)
            args_fd = until_spawned.enter_context(
                closing(data_fd(encode_args(options), "sandboxtui-args")))
            fds = (args_fd, seccomp_fd, self._status_w, block_r, *inside_fds)
            argv = [enforcer.bwrap, "--args", str(args_fd), "--", *command]
            if enforcer.staged(spec):
                stage_fd = until_spawned.enter_context(closing(data_fd(json.dumps(stage_spec(
                    argv, dict(spec.plan.policy.limits.items()))).encode(),
                    "sandboxtui-stage")))
                argv = [*STAGE_ARGV, str(stage_fd)]
                fds += (stage_fd,)
                self.argv = [*argv, *self.argv]
            program = unix_gate.gate_program(enforcer.seccomp)
            installer = (until_spawned.enter_context(unix_gate.ChildInstaller(program))
                         if program is not None else None)
            self.proc = streams.popen(argv, spec.cwd, dict(spec.env), fds, installer)
            if installer is not None:
                self._start_gate(installer)
        self._release(patience)

    def _start_gate(self, installer: unix_gate.ChildInstaller) -> None:
        """Serve the sandbox's Unix-socket calls; bwrap is still held at --block-fd."""
        try:
            gate = unix_gate.UnixGate(installer.receive())
        except unix_gate.GateError:
            self.proc.kill()
            self.proc.wait()
            raise
        self.cleanup.callback(gate.close)

    def _release(self, patience: float | None) -> None:
        """Let the command start only once bwrap has mounted the plan on the very files it
        was made from (setup_check); otherwise kill the sandbox before anything runs. The
        setup counts towards the launch's timeout (`patience`)."""
        deadline = None if patience is None else time.monotonic() + patience

        def left() -> float:
            return 1e6 if deadline is None else deadline - time.monotonic()

        unmasked, staged = None, ()
        if self.split is not None and self.split.staged:
            try:  # while bwrap sets up (it mounts none of them)
                staged = mask_stage.record(self.split)
            except setup_check.WorkspaceChanged as exc:
                unmasked = str(exc)
        pid = self.status.wait_for("child-pid", left())
        proc = self.proc
        if pid is not None and setup_check.wait_blocked(pid, self.block_fd, left()):
            problem = setup_check.verify(pid, self.expected, self.empty_file)
            if problem is None and unmasked is None and staged:
                unmasked = mask_stage.apply(pid, staged, self.split, self.empty_file, left())
            if problem is None and unmasked is None:
                os.write(self.block_w, b"x")
                self.released = True
                return
            self.setup_error = (f"the workspace changed while the sandbox was set up: "
                                f"{problem} (a running command renaming directories?); "
                                "nothing ran, launch again" if problem else
                                f"a masked path could not be hidden: {unmasked}; nothing ran")
        elif proc.poll() is not None or left() > 0 and (
                pid is None or not os.path.exists(f"/proc/{pid}")):
            return  # bwrap (or its sandbox) ended during setup: result() reports its message
        elif left() > 0:
            # Alive, but its setup could not be watched (/proc/PID/syscall unreadable, say
            # under Yama ptrace_scope >= 2): released unchecked it would run unverified, kept
            # blocked it would wait forever. Neither: it is killed, and the launch refused.
            self.setup_error = ("cannot watch the sandbox's setup through /proc (is "
                                "kernel.yama.ptrace_scope above 1?); nothing ran")
        else:
            self.setup_timed_out = True
        if pid is not None:  # blocked before the command: killed before our pipe closes
            with contextlib.suppress(OSError):
                sandbox = os.pidfd_open(pid)
                try:
                    signal.pidfd_send_signal(sandbox, signal.SIGKILL)
                finally:
                    os.close(sandbox)
        proc.kill()

    def kill(self) -> None:
        """bwrap's death takes the PID namespace with it, but bwrap arms its sandbox's
        die-with-parent only after setup: kill the sandbox's first process as well."""
        if self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            sandbox = self._sandbox_pidfd(patience=2.0)
            self.proc.kill()
            if sandbox is not None:
                try:
                    signal.pidfd_send_signal(sandbox, signal.SIGKILL)
                finally:
                    os.close(sandbox)

    def _sandbox_pidfd(self, patience: float) -> int | None:
        """A pidfd of the sandbox's first process, once bwrap has reported it."""
        pid = self.status.wait_for("child-pid", patience)
        if pid is None:
            return None
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            return None
        # Still bwrap's child (a pid could be reused once bwrap has reaped it)?
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            ppid = -1
        if ppid != self.proc.pid:
            os.close(fd)
            return None
        return fd

    def result(self, code: int, duration: float, stderr_tail: bytes) -> RunResult:
        self.status.drain()  # everything bwrap wrote, up to its end
        exit_code = self.status.field("exit-code")
        if self.expected and exit_code is None:
            setup_check.remove_strays(self.expected, self.wall_start)
        if exit_code is not None:
            return command_result(exit_code, duration)
        if code < 0:
            return RunResult(ExitCode.UNENFORCEABLE, duration, None,
                             error=f"bwrap was killed by signal {-code} during setup")
        message = stderr_tail.decode(errors="replace").strip().splitlines()
        last = message[-1] if message else ""
        m = re.match(r"bwrap: execvp (.*): (.*)$", last)
        if m:
            missing = m.group(2) == os.strerror(errno.ENOENT)
            return RunResult(ExitCode.NOT_FOUND if missing else ExitCode.NOT_EXECUTABLE,
                             duration, None, error=f"{m.group(1)}: {m.group(2)}")
        if not self.capture and self.released:
            # bwrap's message went straight to the terminal; bwrap had set the sandbox up (it
            # waited on our pipe before running the command), so it was the command's exec
            # that failed (a missing interpreter, a noexec mount).
            noexec = os.statvfs(self.spec.executable).f_flag & os.ST_NOEXEC
            return RunResult(ExitCode.NOT_EXECUTABLE if noexec else ExitCode.NOT_FOUND,
                             duration, None, error=f"{self.spec.command[0]} could not be "
                             "executed inside the sandbox (see bwrap's message)")
        cause = last or f"bwrap exited {code} before starting the command (see its message)"
        if self.setup_error is None and not self.released:
            from sandboxtui.core.userns import explain_failure  # only once bwrap has failed

            userns = explain_failure(self.enforcer.bwrap, last or None, self.spec.plan)
            if userns is not None:
                cause = f"{userns.cause} (remedy: {userns.remedy})"
        return RunResult(ExitCode.UNENFORCEABLE, duration, None,
                         error=f"the sandbox could not be set up: {cause}")

    def close(self) -> None:
        self.cleanup.close()
