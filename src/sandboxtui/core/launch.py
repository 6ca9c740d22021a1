"""The launcher: run one command under the plan's sandbox (SPEC §7). CLI and TUI both use it.

    spec = prepare(plan, ["make", "test"])        # may raise LaunchError (exit 4, 126, 127)
    running = start(spec, timeout=30, capture=True, on_output=callback)
    result = running.wait()                        # always call wait(): it cleans up

`prepare()` is pure decision-making (which bwrap, the command's resolution, the scrubbed
environment, warnings) and `LaunchSpec.argv()` is what `--dry-run` and the TUI show. `start()`
spawns bwrap with its options on an `--args` memfd, the compiled seccomp filter on a
`--seccomp` memfd and a `--json-status-fd` pipe. bwrap's status tells the cases apart: an
`exit-code` record means the command ran (its code, or 128+N after signal N); none means bwrap
failed before the command started: exit 4 with bwrap's message as the cause, or 126/127 when
bwrap's own exec of the command failed (when stderr is not captured, bwrap's message goes to the
terminal; whether bwrap got as far as `--block-fd` tells the two apart).

bwrap starts with `--block-fd`: once it has set up every mount it waits, and the launcher checks
through `/proc/PID/root` that the mounts landed on the very directories the plan was made from
(`setup_check`), killing the sandbox before the command runs if a rename moved them (exit 4).

No process is left behind: bwrap runs with `--die-with-parent` in a fresh PID namespace, so
when the command's first process ends, bwrap exits and the kernel kills every other process of
the sandbox; timeout and cancel kill bwrap (SIGKILL), which takes the namespace down the same
way, as does the death of the launching process. `--die-with-parent` is tied to the *thread*
that spawned bwrap, so spawns from other threads go through one long-lived spawner thread.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import json
import os
import queue
import re
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from sandboxtui.core import gitguard, setup_check, terminal, unix_gate
from sandboxtui.core.bwrap import (
    BWRAP_MAX_ARGS,
    LaunchFiles,
    SandboxSetupError,
    bwrap_options,
    data_fd,
    display_argv,
    dry_run_files,
    encode_args,
    launch_files,
)
from sandboxtui.core.diagnostics import Capabilities
from sandboxtui.core.diagnostics_model import Diagnostic, Severity
from sandboxtui.core.landlock import LandlockModel
from sandboxtui.core.pipeline import Pipeline, choose_pipeline
from sandboxtui.core.plan import MountPlan, resolve_host_path
from sandboxtui.core.policy import Access, NetworkMode
from sandboxtui.core.seccomp import HOST_FILTER, SeccompFilter, compile_bpf

if TYPE_CHECKING:
    from sandboxtui.core.proxy import ProxyPlan

EXIT_UNENFORCEABLE = 4


def _stage_argv() -> tuple[str, ...]:
    """The exec stage, run by the interpreter running us in isolated mode (-I): no PYTHON*
    variable, no cwd, no user site. The stage's cwd is the workspace, writable by earlier
    sandboxed commands: an empty or relative PYTHONPATH entry would import (say) a planted
    sitecustomize.py there, unsandboxed. The stage imports from exactly the absolute
    directories this process found `sandboxtui` and `landlock` in."""
    import importlib.util

    import sandboxtui

    roots = [os.path.dirname(os.path.dirname(os.path.abspath(sandboxtui.__file__)))]
    landlock = importlib.util.find_spec("landlock")
    if landlock is not None and landlock.origin is not None:
        roots.append(os.path.dirname(os.path.dirname(os.path.abspath(landlock.origin))))
    boot = (f"import sys; sys.path[:0] = {list(dict.fromkeys(roots))!r}; "
            "from sandboxtui.core.exec_stage import main; sys.exit(main())")
    return (sys.executable, "-I", "-c", boot)


STAGE_ARGV = _stage_argv()  # + SPEC_FD: the stage reads it from sys.argv[1]
EXIT_NOT_EXECUTABLE = 126
EXIT_NOT_FOUND = 127

# Variable names that look like secrets, and values that carry credentials: not passed into
# the sandbox unless env_passthrough names them (exact name or glob). AUTH and PW only as words
# (GIT_AUTHOR_NAME, PWD and OLDPWD are no secrets), _PWD only as a suffix, TOKEN but not
# TOKENIZER (TOKENIZERS_PARALLELISM).
SECRET_NAME = re.compile(
    r"TOKEN(?!IZER)|SECRET|PASSW(OR)?D|PASS(_|$)|PASSPHRASE|_PWD$|(^|_)PW(_|$)|API_?KEY"
    r"|(^|_)KEY$|WRITE_?KEY|JWT|BEARER|WEBHOOK|CREDENTIAL|CREDS?(_|$)|PRIVATE|(^|_)AUTH(_|$)"
    r"|(^|_)SK(_|$)"
    r"|COOKIE|_PAT$|DSN$|NETRC|^AWS_|^AZURE_|^GOOGLE_APPLICATION_CREDENTIALS$|^VAULT_",
    re.IGNORECASE,
)
SECRET_VALUE = re.compile(
    r"://[^/@\s]*:[^@\s]*@"  # user:password@host
    r"|(?<!ssh)://[^/?#@\s]+@"  # https://TOKEN@host (ssh://git@host names a user, no secret)
    # the URL is the secret: Slack, Discord, Teams/Office 365, Zapier webhooks, Telegram bots
    r"|hooks\.slack\.com/|discord(app)?\.com/api/webhooks/|webhook\.office\.com/"
    r"|outlook\.office(365)?\.com/webhook|hooks\.zapier\.com/hooks/|api\.telegram\.org/bot"
    r"|[?&]([\w-]*[_-])?(token|api_?key|apikey|key|sig|signature|secret|password|auth)="
    # well-known token formats, wherever they appear: a JWT, GitHub, GitLab, Slack, AWS keys
    r"|eyJ[\w-]{8,}\.eyJ[\w-]{8,}\.|(?-i:\b(gh[pousr]_[A-Za-z0-9]{30,}|github_pat_\w{30,}"
    r"|glpat-[\w-]{20,}|xox[abposr]-[\w-]{10,}|(AKIA|ASIA)[0-9A-Z]{16}"
    r"|[sr]k_(live|test)_[A-Za-z0-9]{10,})\b)",  # Stripe secret and restricted keys
    re.IGNORECASE,
)


class LaunchError(Exception):
    """The command cannot be launched: nothing ran. `exit_code` is the SPEC §7 code."""

    def __init__(self, exit_code: int, message: str) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.message = message


@dataclass(frozen=True)
class OutputEvent:
    stream: str  # "stdout" | "stderr"
    data: bytes


@dataclass(frozen=True)
class RunResult:
    exit_code: int  # SPEC §7: the command's, 128+N on signal N, 4, 126, 127
    duration: float  # seconds, spawn to exit
    signal: int | None  # the signal that ended the command, when known
    timed_out: bool = False
    cancelled: bool = False
    error: str | None = None  # why nothing (or not the command) ran: exit 4 / 126 / 127
    # what was done to repositories the command created or changed (gitguard), one line each
    git_neutralised: tuple[str, ...] = ()


@dataclass(frozen=True)
class LaunchSpec:
    """Everything decided before a launch; `argv()` is exactly what will be executed."""

    plan: MountPlan
    command: tuple[str, ...]
    executable: str  # command[0] as resolved on the host (PATH of `env`)
    cwd: str
    env: Mapping[str, str] = field(hash=False)
    dropped_env: tuple[str, ...]  # secret-looking names not passed in
    pipeline: Pipeline
    bwrap: str | None  # the bwrap binary (bubblewrap pipeline only)
    seccomp: SeccompFilter | None
    warnings: tuple[Diagnostic, ...]
    landlock: LandlockModel | None = None  # legacy pipeline only
    proxy: ProxyPlan | None = None  # managed proxy mode: `seccomp` is loaded inside, not by bwrap

    @property
    def outer_filter(self) -> SeccompFilter | None:
        """The filter every process of the sandbox carries from its start, bwrap's own init
        included (else a command could write into that unfiltered init through /proc/1/mem):
        the command's filter, or in proxy mode the host-safety rules, on which the inside
        program stacks the proxy filter once its bridge is up."""
        if self.seccomp is None or self.proxy is None:
            return self.seccomp
        return HOST_FILTER

    @property
    def sandboxed(self) -> bool:
        return self.pipeline is not Pipeline.UNSANDBOXED

    def unix_gate_program(self) -> bytes | None:
        """The Unix-socket gate's BPF program, when the command's filter gates calls."""
        if self.pipeline is not Pipeline.BWRAP or self.seccomp is None:
            return None
        return unix_gate.gate_program(self.seccomp)

    @property
    def staged(self) -> bool:
        """Does the launch go through the exec stage (Landlock, or resource limits)?"""
        return self.pipeline is Pipeline.LANDLOCK or (
            self.sandboxed and bool(self.plan.policy.limits.items()))

    def stage_spec(self, argv: Sequence[str]) -> dict[str, Any]:
        """What the exec stage applies before it execs `argv` (fds are added at launch)."""
        spec: dict[str, Any] = {"argv": list(argv), "limits": dict(self.plan.policy.limits.items())}
        if self.landlock is not None:
            spec["landlock"] = {"read": list(self.landlock.read_roots),
                                "write": list(self.landlock.write_roots),
                                "list": list(self.landlock.list_roots)}
            spec["supervise"] = True
        return spec

    def sandbox_command(self, wrapper: Sequence[str] | None = None) -> list[str]:
        """What bwrap runs: the command, behind the proxy mode's inside program if any."""
        if self.proxy is None:
            return list(self.command)
        if wrapper is None:
            from sandboxtui.core.proxy import DRY_RUN_FDS

            wrapper = self.proxy.wrapper(DRY_RUN_FDS)
        return [*wrapper, *self.command]

    def options(self, files: LaunchFiles | None = None) -> list[str]:
        if self.bwrap is None:
            return []
        files = dry_run_files() if files is None else files
        seccomp_fd = files.seccomp_fd if self.outer_filter is not None else None
        files = replace(files, seccomp_fd=seccomp_fd)
        # bwrap waits on this pipe once the mounts are set up: the launcher checks them first
        return [*bwrap_options(self.plan, files, self.cwd), "--block-fd", str(files.block_fd)]

    def argv(self, files: LaunchFiles | None = None) -> list[str]:
        inner = (list(self.command) if self.bwrap is None
                 else display_argv(self.bwrap, self.options(files), self.sandbox_command()))
        return [*STAGE_ARGV, "SPEC_FD", *inner] if self.staged else inner


def scrub_env(env: Mapping[str, str], passthrough: Sequence[str]) -> tuple[dict[str, str],
                                                                           tuple[str, ...]]:
    """Drop secret-looking variables (by name or by value) unless `passthrough` names them
    (exactly or by glob)."""
    kept: dict[str, str] = {}
    dropped: list[str] = []
    for name, value in env.items():
        secret = SECRET_NAME.search(name) or SECRET_VALUE.search(value)
        if secret and not any(fnmatch.fnmatchcase(name, p) for p in passthrough):
            dropped.append(name)
        else:
            kept[name] = value
    return kept, tuple(sorted(dropped))


def resolve_command(command: Sequence[str], env: Mapping[str, str], cwd: str) -> str:
    """The file execvp would run, as seen from the host; LaunchError 126/127 otherwise."""
    name = command[0]
    if not name:
        raise LaunchError(EXIT_NOT_FOUND, "empty command name")
    if "/" in name:
        candidates = [os.path.join(cwd, name)]
    else:
        path = env.get("PATH", os.defpath)
        candidates = [os.path.join(d or ".", name) for d in path.split(":")]
        candidates = [c if os.path.isabs(c) else os.path.join(cwd, c) for c in candidates]
    denied = None
    for c in candidates:
        if os.path.isfile(c):
            if os.access(c, os.X_OK):
                return c
            denied = denied or c
        elif os.path.isdir(c) and "/" in name:
            raise LaunchError(EXIT_NOT_EXECUTABLE, f"{name}: is a directory")
    if denied is not None:
        raise LaunchError(EXIT_NOT_EXECUTABLE, f"{name}: permission denied ({denied})")
    raise LaunchError(EXIT_NOT_FOUND, f"{name}: command not found")


def prepare(
    plan: MountPlan,
    command: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    caps: Capabilities | None = None,
) -> LaunchSpec:
    """Decide everything about a launch; raise LaunchError when it must not happen.

    `caps` describes the machine (the TUI passes the one its probe made); by default a cheap
    probe without a test launch: a bwrap that cannot create namespaces fails the launch itself,
    reported as exit 4 with bwrap's own message.
    """
    if not command:
        raise LaunchError(2, "no command given")
    if any("\0" in a for a in command):
        raise LaunchError(2, "the command contains a NUL byte")
    cwd = plan.cwd if cwd is None else resolve_host_path(cwd, "/")
    source = os.environ if env is None else env
    env, dropped = scrub_env(source, plan.policy.env_passthrough)
    env |= plan.cache_env()
    if plan.unsandboxed:
        resolved = resolve_command(command, env, cwd)
        return LaunchSpec(plan, tuple(command), resolved, cwd, env, dropped,
                          Pipeline.UNSANDBOXED, None, None, tuple(plan.diagnostics))
    proxy = None
    if plan.policy.network is NetworkMode.PROXY:
        from sandboxtui.core.proxy import ProxyError, proxy_for

        try:
            # from the unscrubbed environment: a proxy URL may carry the proxy's credentials,
            # which the command needs (rewritten to the inside listener, userinfo kept)
            proxy = proxy_for(plan, source)
        except ProxyError as exc:
            raise LaunchError(EXIT_UNENFORCEABLE, str(exc)) from exc
        env = proxy.env(env)
        dropped = tuple(d for d in dropped if d not in env)
    if caps is None:
        from sandboxtui.core.diagnostics import probe

        caps = probe(plan.policy.system_bwrap, launch_test=False)
    choice = choose_pipeline(plan, caps)
    if choice.pipeline is None:
        raise LaunchError(EXIT_UNENFORCEABLE, "; ".join(
            f"{d.cause} (remedy: {d.remedy})" for d in choice.diagnostics if d.severity
            is Severity.ERROR))
    resolved = resolve_command(command, env, cwd)
    rule = plan.rule_for(resolve_host_path(resolved, "/"))
    if rule.access is Access.NONE:
        raise LaunchError(EXIT_NOT_EXECUTABLE, f"{command[0]}: {resolved} is denied inside the "
                          f"sandbox ({rule.reason} [{rule.provenance}])")
    warnings = choice.diagnostics
    if choice.pipeline is Pipeline.BWRAP and not caps.system_bwrap:
        from sandboxtui.core.diagnostics import diagnose

        warnings += tuple(d for d in diagnose(caps) if d.code == "system-bwrap-missing")
    warnings += tuple(d for d in plan.diagnostics if d.severity is Severity.WARNING)
    seccomp = choice.seccomp_filter(plan.policy)
    if choice.pipeline is Pipeline.LANDLOCK:
        return LaunchSpec(plan, tuple(command), resolved, cwd, env, dropped, Pipeline.LANDLOCK,
                          None, seccomp, warnings, choice.landlock)
    spec = LaunchSpec(plan, tuple(command), resolved, cwd, env, dropped, Pipeline.BWRAP,
                      caps.bwrap, seccomp, warnings, proxy=proxy)
    count = len(spec.options()) + len(spec.sandbox_command()) + 4
    if count > BWRAP_MAX_ARGS:
        raise LaunchError(EXIT_UNENFORCEABLE, f"the plan needs {count} bwrap arguments but "
                          f"bubblewrap accepts at most {BWRAP_MAX_ARGS} (about 2,990 denied "
                          "paths); deny a whole directory or narrow sensitive_paths")
    return spec


# --- spawning ---------------------------------------------------------------------------------


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


_SPAWNER = _Spawner()


class RunningCommand:
    """A launched command. Output (capture mode) arrives as `OutputEvent`s; call `wait()`."""

    def __init__(self, spec: LaunchSpec, timeout: float | None, capture: bool,
                 on_output: Callable[[OutputEvent], None] | None) -> None:
        self.spec = spec
        self.argv: list[str] = spec.argv()
        self._capture = capture
        self._on_output = on_output
        self._events: queue.SimpleQueue[OutputEvent | None] = queue.SimpleQueue()
        self._stderr_tail = bytearray()
        self._callback_error: Exception | None = None
        self._status = b""
        self._status_lock = threading.Lock()
        self._status_r: int | None = None
        self._cleanup = contextlib.ExitStack()
        self._readers: list[threading.Thread] = []
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()
        self._result: RunResult | None = None
        self.timed_out = False
        self.cancelled = False
        if not capture:  # the command shares our terminal: `wait()` undoes what it did to it
            self._cleanup.enter_context(terminal.preserved())
        self._expected: tuple[setup_check.Expected, ...] | None = None
        self._empty_file = ""
        self._block_fd = self._block_w = -1
        self._setup_error: str | None = None
        self._released = False  # bwrap set the sandbox up and we let the command start
        self._patience = timeout
        self._git_roots = _git_roots(spec)
        self._git_before = gitguard.snapshot(self._git_roots, spec.plan.repos)
        self.started = time.monotonic()
        self.wall_start = time.time()
        self._proc = self._spawn()
        self.pid = self._proc.pid
        if timeout is not None:  # what the sandbox's setup left of it
            left = max(timeout - (time.monotonic() - self.started), 0)
            self._timer = threading.Timer(left, self._expire)
            self._timer.daemon = True
            self._timer.start()

    # -- spawning --

    def _spawn(self) -> subprocess.Popen[bytes]:
        spec = self.spec
        out = subprocess.PIPE if self._capture else None
        stdin = subprocess.DEVNULL if self._capture else None
        if not spec.sandboxed:
            proc = _SPAWNER.call(lambda: subprocess.Popen(
                spec.command, cwd=spec.cwd, env=dict(spec.env), stdin=stdin, stdout=out,
                stderr=out, start_new_session=True))
            self._start_readers(proc)
            return proc
        try:
            with contextlib.ExitStack() as until_spawned:  # bwrap has its own copies after
                seccomp_fd = None
                if spec.outer_filter is not None:
                    bpf = compile_bpf(spec.outer_filter)  # once per process (cached)
                    seccomp_fd = until_spawned.enter_context(
                        _closing(data_fd(bpf, "sandboxtui-seccomp")))
                status_r, status_w = os.pipe2(os.O_CLOEXEC)
                self._status_r = status_r
                self._cleanup.enter_context(_closing(status_r))
                until_spawned.enter_context(_closing(status_w))
                stage: dict[str, Any] | None
                if spec.pipeline is Pipeline.LANDLOCK:
                    argv = list(spec.command)
                    fds = tuple(fd for fd in (seccomp_fd, status_w) if fd is not None)
                    stage = {**spec.stage_spec(argv), "seccomp_fd": seccomp_fd,
                             "status_fd": status_w}
                else:
                    files = self._cleanup.enter_context(launch_files(
                        spec.plan, seccomp_fd=seccomp_fd, status_fd=status_w))
                    self._expected = setup_check.expected(spec.plan)
                    self._empty_file = files.empty_file
                    block_r, self._block_w = os.pipe2(os.O_CLOEXEC)
                    self._cleanup.enter_context(_closing(self._block_w))
                    until_spawned.enter_context(_closing(block_r))
                    self._block_fd = block_r
                    options = spec.options(replace(files, block_fd=block_r))
                    command, inside_fds = self._start_proxy(until_spawned)
                    self.argv = display_argv(spec.bwrap or "", options, command)
                    args_fd = until_spawned.enter_context(
                        _closing(data_fd(encode_args(options), "sandboxtui-args")))
                    fds = tuple(fd for fd in (args_fd, seccomp_fd, status_w, block_r)
                                if fd is not None)
                    fds += inside_fds
                    argv = [spec.bwrap or "", "--args", str(args_fd), "--", *command]
                    stage = spec.stage_spec(argv) if spec.staged else None
                if stage is not None:
                    stage_fd = until_spawned.enter_context(_closing(
                        data_fd(json.dumps(stage).encode(), "sandboxtui-stage")))
                    argv = [*STAGE_ARGV, str(stage_fd)]
                    fds += (stage_fd,)
                    self.argv = [*argv, *self.argv] if spec.bwrap else [*argv, *spec.command]
                gate = spec.unix_gate_program()
                installer = (until_spawned.enter_context(unix_gate.ChildInstaller(gate))
                             if gate is not None else None)
                proc = _SPAWNER.call(lambda: subprocess.Popen(
                    argv, cwd=spec.cwd, env=dict(spec.env), stdin=stdin, stdout=out,
                    stderr=out, pass_fds=fds, preexec_fn=installer))
                if installer is not None:
                    self._start_gate(proc, installer)
        except (SandboxSetupError, setup_check.WorkspaceChanged) as exc:
            self._cleanup.close()
            raise LaunchError(EXIT_UNENFORCEABLE, str(exc)) from exc
        except unix_gate.GateError as exc:
            self._cleanup.close()
            raise LaunchError(EXIT_UNENFORCEABLE, str(exc)) from exc
        except (OSError, RuntimeError, ImportError) as exc:  # incl. libseccomp missing
            self._cleanup.close()
            raise LaunchError(EXIT_UNENFORCEABLE, f"cannot start {spec.bwrap}: {exc}") from exc
        self._start_readers(proc)
        if self._expected is not None:
            self._release(proc, self._patience)
        return proc

    def _release(self, proc: subprocess.Popen[bytes], patience: float | None) -> None:
        """Let the command start only once bwrap has mounted the plan on the very files it
        was made from (setup_check); otherwise kill the sandbox before anything runs. The
        setup counts towards the launch's timeout (`patience`)."""
        deadline = None if patience is None else time.monotonic() + patience

        def left() -> float:
            return 1e6 if deadline is None else deadline - time.monotonic()

        while (pid := _status_field(self._status, "child-pid")) is None:
            if left() <= 0 or not self._read_status(left()):
                break
        if pid is not None and setup_check.wait_blocked(pid, self._block_fd, left()):
            problem = setup_check.verify(pid, self._expected or (), self._empty_file)
            if problem is None:
                os.write(self._block_w, b"x")
                self._released = True
                return
            self._setup_error = (f"the workspace changed while the sandbox was set up: "
                                 f"{problem} (a running command renaming directories?); "
                                 "nothing ran, launch again")
        elif proc.poll() is not None or left() > 0 and (
                pid is None or not os.path.exists(f"/proc/{pid}")):
            return  # bwrap (or its sandbox) ended during setup: wait() reports its message
        elif left() > 0:
            # Alive, but its setup could not be watched (/proc/PID/syscall unreadable, say
            # under Yama ptrace_scope >= 2): released unchecked it would run unverified, kept
            # blocked it would wait forever. Neither: it is killed, and the launch refused.
            self._setup_error = ("cannot watch the sandbox's setup through /proc (is "
                                 "kernel.yama.ptrace_scope above 1?); nothing ran")
        else:
            self.timed_out = True
        if pid is not None:  # blocked before the command: killed before our pipe closes
            with contextlib.suppress(OSError):
                sandbox = os.pidfd_open(pid)
                try:
                    signal.pidfd_send_signal(sandbox, signal.SIGKILL)
                finally:
                    os.close(sandbox)
        proc.kill()

    def _start_gate(self, proc: subprocess.Popen[bytes], installer: unix_gate.ChildInstaller
                    ) -> None:
        """Serve the sandbox's Unix-socket calls; bwrap is still held at --block-fd."""
        try:
            gate = unix_gate.UnixGate(installer.receive())
        except unix_gate.GateError:
            proc.kill()
            proc.wait()
            raise
        self._cleanup.callback(gate.close)

    def _start_readers(self, proc: subprocess.Popen[bytes]) -> None:
        if self._capture:
            for name, pipe in (("stdout", proc.stdout), ("stderr", proc.stderr)):
                t = threading.Thread(target=self._read, args=(name, pipe), daemon=True,
                                     name=f"sandboxtui-{name}")
                t.start()
                self._readers.append(t)

    def _start_proxy(self, until_spawned: contextlib.ExitStack) -> tuple[list[str],
                                                                       tuple[int, ...]]:
        """Proxy mode: start the host bridges (they live until `wait()`); the command behind
        the inside program, and the descriptors it needs. Otherwise the command as is."""
        spec = self.spec
        if spec.proxy is None or spec.seccomp is None:
            return list(spec.command), ()
        from sandboxtui.core.proxy import HostBridges, inside_launch

        bridges = self._cleanup.enter_context(HostBridges(spec.proxy))
        inside = until_spawned.enter_context(
            inside_launch(spec.proxy, bridges, compile_bpf(spec.seccomp)))
        return spec.sandbox_command(inside.wrapper), inside.fds.all()

    def _read(self, name: str, pipe: Any) -> None:
        fd = pipe.fileno()
        while chunk := os.read(fd, 65536):
            if name == "stderr":
                self._stderr_tail = (self._stderr_tail + chunk)[-4096:]
            event = OutputEvent(name, chunk)
            if self._on_output is None:
                self._events.put(event)
            elif self._callback_error is None:
                try:
                    self._on_output(event)
                except Exception as exc:  # keep draining, or the command blocks on a full pipe
                    self._callback_error = exc
        pipe.close()
        if self._on_output is None:
            self._events.put(None)

    # -- control --

    def events(self) -> Iterator[OutputEvent]:
        """Output in arrival order until both streams end (capture mode, no on_output)."""
        if not self._capture or self._on_output is not None:
            return
        ended = 0
        while ended < 2:
            event = self._events.get()
            if event is None:
                ended += 1
            else:
                yield event

    def _kill(self) -> None:
        if self._proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            if self.spec.pipeline is Pipeline.LANDLOCK:
                self._proc.terminate()  # the supervising exec stage kills what is left
            elif self.spec.sandboxed:
                # bwrap's death takes the PID namespace with it, but bwrap arms its sandbox's
                # die-with-parent only after setup: kill the sandbox's first process as well.
                sandbox = self._sandbox_pidfd(patience=2.0)
                self._proc.kill()
                if sandbox is not None:
                    try:
                        signal.pidfd_send_signal(sandbox, signal.SIGKILL)
                    finally:
                        os.close(sandbox)
            else:
                os.killpg(self._proc.pid, signal.SIGKILL)

    def _read_status(self, timeout: float) -> bool:
        """Append what bwrap's status pipe has, waiting up to `timeout`; True if it had any."""
        if self._status_r is None:
            return False
        with self._status_lock:
            ready, _, _ = select.select([self._status_r], [], [], max(timeout, 0))
            chunk = os.read(self._status_r, 65536) if ready else b""
            self._status += chunk
            return bool(chunk)

    def _sandbox_pidfd(self, patience: float) -> int | None:
        """A pidfd of the sandbox's first process, once bwrap has reported it."""
        deadline = time.monotonic() + patience
        while (pid := _status_field(self._status, "child-pid")) is None:
            left = deadline - time.monotonic()
            if left <= 0 or not self._read_status(left):
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
        if ppid != self._proc.pid:
            os.close(fd)
            return None
        return fd

    def _expire(self) -> None:
        self.timed_out = True
        self._kill()

    def cancel(self) -> None:
        """Kill the whole sandbox now; `wait()` then reports `cancelled`."""
        self.cancelled = True
        self._kill()

    def poll(self) -> RunResult | None:
        if self._proc.poll() is None:
            return None
        return self.wait()

    def wait(self) -> RunResult:
        with self._lock:
            if self._result is None:
                code = self._proc.wait()
                duration = time.monotonic() - self.started
                if self._timer is not None:
                    self._timer.cancel()
                for t in self._readers:
                    t.join()
                while self._read_status(0):  # everything bwrap wrote, up to its end
                    pass
                if self._expected and _status_field(self._status, "exit-code") is None:
                    setup_check.remove_strays(self._expected, self.wall_start)
                self._cleanup.close()
                git = self._neutralise_git()
                self._result = replace(self._outcome(code, duration), git_neutralised=git)
            if self._callback_error is not None:
                raise self._callback_error
            return self._result

    def _neutralise_git(self) -> tuple[str, ...]:
        """After the sandbox is gone: strip code-running settings from the repositories the
        command created or changed, and record what was done in the audit log."""
        if not self._git_roots:
            return ()
        done = gitguard.neutralise(self._git_before, self._git_roots)
        if done:
            from sandboxtui.core.audit import AuditError, AuditLog, default_audit_path

            try:
                AuditLog(default_audit_path()).append({
                    "kind": "git-neutralised", "time": time.time(), "cwd": self.spec.cwd,
                    "argv": list(self.spec.command), "actions": list(done)})
            except AuditError as exc:
                done += (f"could not record this in the audit log: {exc}",)
        return done

    def _outcome(self, code: int, duration: float) -> RunResult:
        extra = {"timed_out": self.timed_out, "cancelled": self.cancelled}
        if self._setup_error is not None:
            return RunResult(EXIT_UNENFORCEABLE, duration, None, **extra, error=self._setup_error)
        if self.timed_out or self.cancelled:
            why = "timed out" if self.timed_out else "cancelled"
            return RunResult(128 + signal.SIGKILL, duration, int(signal.SIGKILL), **extra,
                             error=f"{why}: the sandbox was killed")
        if self.spec.pipeline is Pipeline.LANDLOCK:
            failure = _status_error(self._status)
            if failure is not None:  # the stage could not restrict or exec: nothing ran
                return RunResult(failure[0], duration, None, **extra, error=failure[1])
        if self.spec.pipeline is not Pipeline.BWRAP:
            if code < 0:
                return RunResult(128 - code, duration, -code, **extra)
            sig = code - 128 if 128 < code < 128 + 65 else None
            return RunResult(code, duration, sig, **extra)
        exit_code = _status_field(self._status, "exit-code")
        if exit_code is not None:
            sig = exit_code - 128 if 128 < exit_code < 128 + 65 else None
            return RunResult(exit_code, duration, sig, **extra)
        if code < 0:
            return RunResult(EXIT_UNENFORCEABLE, duration, None, **extra,
                             error=f"bwrap was killed by signal {-code} during setup")
        message = self._stderr_tail.decode(errors="replace").strip().splitlines()
        last = message[-1] if message else ""
        m = re.match(r"bwrap: execvp (.*): (.*)$", last)
        if m:
            missing = m.group(2) == os.strerror(errno.ENOENT)
            return RunResult(EXIT_NOT_FOUND if missing else EXIT_NOT_EXECUTABLE, duration,
                             None, **extra, error=f"{m.group(1)}: {m.group(2)}")
        if not self._capture and self._released:
            # bwrap's message went straight to the terminal; bwrap had set the sandbox up (it
            # waited on our pipe before running the command), so it was the command's exec
            # that failed (a missing interpreter, a noexec mount).
            noexec = os.statvfs(self.spec.executable).f_flag & os.ST_NOEXEC
            return RunResult(EXIT_NOT_EXECUTABLE if noexec else EXIT_NOT_FOUND, duration, None,
                             **extra, error=f"{self.spec.command[0]} could not be executed "
                             "inside the sandbox (see bwrap's message)")
        cause = last or f"bwrap exited {code} before starting the command (see its message)"
        return RunResult(EXIT_UNENFORCEABLE, duration, None, **extra,
                         error=f"the sandbox could not be set up: {cause}")


def _git_roots(spec: LaunchSpec) -> list[str]:
    """Where the repositories a command creates are found and neutralised: the roots the plan
    walked (the workspace and the configured writable roots; not the shared `/tmp` and
    `$TMPDIR`, whose repositories other processes change at the same time)."""
    return list(spec.plan.walked) if spec.sandboxed else []


@contextlib.contextmanager
def _closing(fd: int) -> Iterator[int]:
    try:
        yield fd
    finally:
        os.close(fd)


def _status_field(status: bytes, key: str) -> int | None:
    """An integer field of bwrap's --json-status-fd records: `child-pid` (the sandbox's first
    process, host pid) once it exists, `exit-code` once the command has run."""
    for line in status.decode(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if isinstance(record, dict) and isinstance(record.get(key), int):
                return int(record[key])
    return None


def _status_error(status: bytes) -> tuple[int, str] | None:
    """The exec stage's failure record (exit code, message), if it wrote one."""
    with contextlib.suppress(ValueError):
        record = json.loads(status.decode(errors="replace") or "null")
        if isinstance(record, dict) and isinstance(record.get("exit-code"), int):
            return int(record["exit-code"]), str(record.get("error", ""))
    return None


def start(
    spec: LaunchSpec,
    *,
    timeout: float | None = None,
    capture: bool = False,
    on_output: Callable[[OutputEvent], None] | None = None,
) -> RunningCommand:
    """Spawn the command. `capture=False` shares this process's stdin/stdout/stderr (CLI);
    `capture=True` pipes stdout/stderr into `OutputEvent`s (stdin is /dev/null): delivered to
    `on_output` when given (called from two reader threads, so it must be thread-safe; an
    exception in it is re-raised by `wait()`), else through `RunningCommand.events()`.
    Raises LaunchError (exit 4) when the sandbox cannot be prepared."""
    return RunningCommand(spec, timeout, capture, on_output)

