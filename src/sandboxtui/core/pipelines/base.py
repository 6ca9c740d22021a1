"""The one interface every pipeline implements, and what they share.

An `Enforcer` says what it is (`pipeline`, `describe()`), what of the plan it leaves
unenforced, what exactly it will execute (`argv()`, the dry run), and starts a `Sandbox`: the
spawned process with its pipeline's way to be killed and to tell how it ended. The launcher
(`core/launch.py`) only supervises: output readers, the timeout, cancel, wait.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import select
import subprocess
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from sandboxtui.core.outcome import RunResult

if TYPE_CHECKING:
    from sandboxtui.core.launch import LaunchSpec
    from sandboxtui.core.pipeline import Pipeline
    from sandboxtui.core.plan import Rule
    from sandboxtui.core.seccomp import SeccompFilter


class _Spawner:
    """One long-lived thread that owns every child: bwrap's --die-with-parent (PDEATHSIG)
    fires when the spawning *thread* exits, so short-lived worker threads must not spawn."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], queue.SimpleQueue[Any]]] = (
            queue.SimpleQueue())
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def call(self, fn: Callable[[], subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
        if threading.current_thread() is threading.main_thread():
            return fn()
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="sandboxtui-spawner",
                                                daemon=True)
                self._thread.start()
        reply: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._jobs.put((fn, reply))
        ok, value = reply.get()
        if not ok:
            raise value
        return value  # type: ignore[no-any-return]

    def _loop(self) -> None:
        while True:
            fn, reply = self._jobs.get()
            try:
                reply.put((True, fn()))
            except BaseException as exc:  # handed back to the caller's thread
                reply.put((False, exc))


SPAWNER = _Spawner()


@contextlib.contextmanager
def closing(fd: int) -> Iterator[int]:
    try:
        yield fd
    finally:
        os.close(fd)


class StatusPipe:
    """The status records a sandbox writes on a close-on-exec pipe, decoded here only: bwrap's
    `--json-status-fd` (`child-pid` once the sandbox's first process exists, `exit-code` once
    the command has run) and the exec stage's failure record (`exit-code` and `error`: nothing
    ran)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._data = b""
        self._lock = threading.Lock()

    def read(self, timeout: float) -> bool:
        """Append what the pipe has, waiting up to `timeout`; True if it had any."""
        with self._lock:
            ready, _, _ = select.select([self.fd], [], [], max(timeout, 0))
            chunk = os.read(self.fd, 65536) if ready else b""
            self._data += chunk
            return bool(chunk)

    def drain(self) -> None:
        """Everything written, up to the writers' end."""
        while self.read(0):
            pass

    def field(self, key: str) -> int | None:
        """An integer field of the first record that has it."""
        for line in self._data.decode(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if isinstance(record, dict) and isinstance(record.get(key), int):
                    return int(record[key])
        return None

    def wait_for(self, key: str, timeout: float) -> int | None:
        """The field, once it arrives within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while (value := self.field(key)) is None:
            left = deadline - time.monotonic()
            if left <= 0 or not self.read(left):
                return None
        return value

    def stage_failure(self) -> tuple[int, str] | None:
        """The exec stage's failure record (exit code, message), if it wrote one."""
        with contextlib.suppress(ValueError):
            record = json.loads(self._data.decode(errors="replace") or "null")
            if isinstance(record, dict) and isinstance(record.get("exit-code"), int):
                return int(record["exit-code"]), str(record.get("error", ""))
        return None


@dataclass(frozen=True)
class Streams:
    """How the sandbox is spawned: the command's standard streams (shared with the launcher's
    terminal, or captured; stdout sent to stderr when the launcher's stdout carries a report),
    and a tracer in front of the whole sandbox (`sandboxtui trace`)."""

    capture: bool
    stdout_to_stderr: bool = False
    tracer: tuple[str, ...] = ()  # the tracer's argv, up to and including "--"

    @property
    def stdin(self) -> int | None:
        return subprocess.DEVNULL if self.capture else None

    @property
    def output(self) -> int | None:
        return subprocess.PIPE if self.capture else None

    @property
    def stdout(self) -> int | None:
        return 2 if self.stdout_to_stderr and not self.capture else self.output

    def popen(self, argv: list[str], cwd: str, env: dict[str, str], pass_fds: tuple[int, ...],
              preexec: Callable[[], None] | None = None, **kwargs: Any) -> subprocess.Popen[bytes]:
        """Spawn `argv` (behind the tracer, which dies with the launcher) on the spawner."""
        if self.tracer:
            argv = [*self.tracer, *argv]
            preexec = dying_with_parent(preexec)
        return SPAWNER.call(lambda: subprocess.Popen(
            argv, cwd=cwd, env=env, stdin=self.stdin, stdout=self.stdout, stderr=self.output,
            pass_fds=pass_fds, preexec_fn=preexec, **kwargs))


def dying_with_parent(then: Callable[[], None] | None) -> Callable[[], None]:
    """A child setup that also asks for SIGKILL when the spawning thread ends (the tracer's
    sandbox dies with the tracer, bwrap's --die-with-parent, which dies with us)."""
    import ctypes
    import signal

    prctl = ctypes.CDLL(None, use_errno=True).prctl

    def setup() -> None:
        prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
        if then is not None:
            then()

    return setup


class Sandbox(ABC):
    """One launched command under its pipeline: the process, how to kill it, and how it
    ended. `close()` releases what the launch holds on the host, once the process is gone."""

    proc: subprocess.Popen[bytes]
    argv: list[str]  # what was executed, with the real fd numbers and paths
    setup_error: str | None = None  # the launch was stopped before the command ran: why
    setup_timed_out: bool = False  # the timeout ran out while the sandbox was set up

    @abstractmethod
    def kill(self) -> None:
        """Kill everything the command started, now."""

    @abstractmethod
    def result(self, code: int, duration: float, stderr_tail: bytes) -> RunResult:
        """How the command ended, from the process's wait status `code` (and what the
        pipeline reported): its exit code, or why it did not run."""

    def close(self) -> None:
        """Release the launch's host resources (after the process has exited)."""
        return None


class Enforcer(ABC):
    """A pipeline: how a plan is enforced on this machine."""

    pipeline: ClassVar[Pipeline]
    # The plan's mount operations are what the command sees (private /dev and /proc included).
    mounts_plan: ClassVar[bool] = False
    # A tracer's output (a pipe of the launcher's, reopened through /proc/LAUNCHER/fd) is out of
    # the command's reach: its own PID namespace and procfs, or no sandbox at all.
    traceable: ClassVar[bool] = True
    seccomp: SeccompFilter | None  # the command's filter (None: no sandbox)

    @property
    def sandboxed(self) -> bool:
        return self.seccomp is not None

    @property
    def program(self) -> str:
        """What the launcher executes first (named when it cannot be started)."""
        return self.pipeline.value

    def check(self, spec: LaunchSpec) -> None:
        """Raise LaunchError when this pipeline cannot take the launch (decided before it)."""
        return None

    @property
    def unenforced(self) -> tuple[Rule, ...]:
        """Rules of the plan this pipeline documents it cannot enforce (with a warning)."""
        return ()

    @abstractmethod
    def argv(self, spec: LaunchSpec) -> list[str]:
        """Exactly what will be executed (fd numbers and scratch paths as placeholders)."""

    @abstractmethod
    def describe(self, spec: LaunchSpec) -> list[str]:
        """The dry-run report's lines: the argv and what restricts the command."""

    @abstractmethod
    def start(self, spec: LaunchSpec, streams: Streams, patience: float | None) -> Sandbox:
        """Spawn the command; raise LaunchError (nothing ran) when the sandbox cannot be set
        up. `patience`: how long the setup may take (the launch's timeout)."""
