"""The launcher: run one command under the plan's sandbox. CLI and TUI both use it.

    spec = prepare(plan, ["make", "test"])        # may raise LaunchError (exit 4, 126, 127)
    running = start(spec, timeout=30, capture=True, on_output=callback)
    result = running.wait()                        # always call wait(): it cleans up

`prepare()` is pure decision-making (which pipeline, the command's resolution, the scrubbed
environment, warnings) and `LaunchSpec.argv()` is what `--dry-run` and the TUI show. The
pipeline (`spec.enforcer`, core/pipelines/) spawns the sandbox and knows how it ends;
`RunningCommand` only supervises: output readers, the timeout, cancel and wait, the terminal,
and the repositories the command left (gitguard).

No process is left behind: every pipeline ties the sandbox to the launcher, and timeout and
cancel kill it through its pipeline (bwrap's PID namespace, the exec stage's supervision, or
the unsandboxed command's session). `--die-with-parent` is tied to the *thread* that spawned
bwrap, so spawns from other threads go through one long-lived spawner thread.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import queue
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from sandboxtui.core import gitguard, terminal
from sandboxtui.core.bwrap import SandboxSetupError
from sandboxtui.core.diagnostics import Capabilities
from sandboxtui.core.diagnostics_model import Diagnostic, Severity
from sandboxtui.core.outcome import ExitCode, LaunchError, OutputEvent, RunResult
from sandboxtui.core.pipeline import Pipeline, choose_pipeline
from sandboxtui.core.pipelines.base import Enforcer, Sandbox, Streams
from sandboxtui.core.plan import MountPlan, resolve_host_path
from sandboxtui.core.policy import Access, GitProtection, NetworkMode

if TYPE_CHECKING:
    from sandboxtui.core.seccomp import SeccompFilter

# Variable names that look like secrets, and values that carry credentials: not passed into
# the sandbox unless env_passthrough names them (exact name or glob). AUTH and PW only as words
# (GIT_AUTHOR_NAME, PWD and OLDPWD are no secrets), _PWD only as a suffix, TOKEN but not
# TOKENIZER (TOKENIZERS_PARALLELISM). Of AWS's variables only the access key id (its secret
# key and session token match SECRET and TOKEN): AWS_CA_BUNDLE, AWS_REGION, AWS_PROFILE are
# paths and names.
SECRET_NAME = re.compile(
    r"TOKEN(?!IZER)|SECRET|PASSW(OR)?D|PASS(_|$)|PASSPHRASE|_PWD$|(^|_)PW(_|$)|API_?KEY"
    r"|(^|_)KEY$|WRITE_?KEY|JWT|BEARER|WEBHOOK|CREDENTIAL|CREDS?(_|$)|PRIVATE|(^|_)AUTH(_|$)"
    r"|(^|_)SK(_|$)"
    r"|COOKIE|_PAT$|DSN$|NETRC|^AWS_ACCESS_KEY|^AZURE_|^GOOGLE_APPLICATION_CREDENTIALS$"
    r"|^VAULT_",
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


@dataclass(frozen=True)
class LaunchSpec:
    """Everything decided before a launch; `argv()` is exactly what will be executed."""

    plan: MountPlan
    command: tuple[str, ...]
    executable: str  # command[0] as resolved on the host (PATH of `env`)
    cwd: str
    env: Mapping[str, str] = field(hash=False)
    dropped_env: tuple[str, ...]  # secret-looking names not passed in
    enforcer: Enforcer = field(hash=False)  # the pipeline that launches it
    warnings: tuple[Diagnostic, ...]

    @property
    def pipeline(self) -> Pipeline:
        return self.enforcer.pipeline

    @property
    def seccomp(self) -> SeccompFilter | None:
        """The command's seccomp filter (None: no sandbox)."""
        return self.enforcer.seccomp

    @property
    def sandboxed(self) -> bool:
        return self.enforcer.sandboxed

    def argv(self) -> list[str]:
        return self.enforcer.argv(self)

    def describe(self) -> list[str]:
        """The dry-run report: the exact argv (one argument per line), what restricts the
        command, the environment not passed, the warnings."""
        lines = self.enforcer.describe(self)
        if self.dropped_env:
            lines += ["", "environment not passed (looks secret): " + ", ".join(self.dropped_env)]
        return lines + [d.line() for d in self.warnings]


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
        raise LaunchError(ExitCode.NOT_FOUND, "empty command name")
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
            raise LaunchError(ExitCode.NOT_EXECUTABLE, f"{name}: is a directory")
    if denied is not None:
        raise LaunchError(ExitCode.NOT_EXECUTABLE, f"{name}: permission denied ({denied})")
    raise LaunchError(ExitCode.NOT_FOUND, f"{name}: command not found")


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
        raise LaunchError(ExitCode.USAGE, "no command given")
    if any("\0" in a for a in command):
        raise LaunchError(ExitCode.USAGE, "the command contains a NUL byte")
    cwd = plan.cwd if cwd is None else resolve_host_path(cwd, "/")
    source = os.environ if env is None else env
    env, dropped = scrub_env(source, plan.policy.env_passthrough)
    env |= plan.cache_env()
    if plan.policy.protect_git is GitProtection.FULL and not plan.unsandboxed:
        # .git is read-only: `git status` and friends skip their optional index refresh
        # (an index.lock they would fail to create) instead of being refused it
        env.setdefault("GIT_OPTIONAL_LOCKS", "0")
    if plan.unsandboxed:
        from sandboxtui.core.pipelines.none import Unsandboxed

        if not plan.enforceable:  # an agent's project file turned the sandbox off
            raise LaunchError(ExitCode.UNENFORCEABLE, "; ".join(
                f"{d.cause} (remedy: {d.remedy})" for d in plan.diagnostics
                if d.severity is Severity.ERROR))

        resolved = resolve_command(command, env, cwd)
        return LaunchSpec(plan, tuple(command), resolved, cwd, env, dropped, Unsandboxed(),
                          tuple(plan.diagnostics))
    proxy = None
    if plan.policy.network is NetworkMode.PROXY:
        from sandboxtui.core.proxy import ProxyError, proxy_for

        try:
            # from the unscrubbed environment: a proxy URL may carry the proxy's credentials,
            # which the command needs (rewritten to the inside listener, userinfo kept)
            proxy = proxy_for(plan, source)
        except ProxyError as exc:
            raise LaunchError(ExitCode.UNENFORCEABLE, str(exc)) from exc
        env = proxy.env(env)
        dropped = tuple(d for d in dropped if d not in env)
    if caps is None:
        from sandboxtui.core.diagnostics import probe

        caps = probe(plan.policy.system_bwrap, launch_test=False)
    choice = choose_pipeline(plan, caps)
    if choice.pipeline is None:
        raise LaunchError(ExitCode.UNENFORCEABLE, "; ".join(
            f"{d.cause} (remedy: {d.remedy})" for d in choice.diagnostics if d.severity
            is Severity.ERROR))
    resolved = resolve_command(command, env, cwd)
    rule = plan.rule_for(resolve_host_path(resolved, "/"))
    if rule.access is Access.NONE:
        raise LaunchError(ExitCode.NOT_EXECUTABLE, f"{command[0]}: {resolved} is denied inside the "
                          f"sandbox ({rule.reason} [{rule.provenance}])")
    warnings = choice.diagnostics + tuple(
        d for d in plan.diagnostics if d.severity is Severity.WARNING)
    spec = LaunchSpec(plan, tuple(command), resolved, cwd, env, dropped,
                      choice.enforcer(plan.policy, caps.bwrap, proxy), warnings)
    spec.enforcer.check(spec)
    return spec


# --- supervising -----------------------------------------------------------------------------


class RunningCommand:
    """A launched command, supervised: output readers, the timeout, cancel and wait. Output
    (capture mode) arrives as `OutputEvent`s; call `wait()`."""

    def __init__(self, spec: LaunchSpec, timeout: float | None, streams: Streams,
                 on_output: Callable[[OutputEvent], None] | None) -> None:
        self.spec = spec
        self._streams = streams
        self._capture = capture = streams.capture
        self._on_output = on_output
        self._events: queue.SimpleQueue[OutputEvent | None] = queue.SimpleQueue()
        self._stderr_tail = bytearray()
        self._callback_error: Exception | None = None
        self._cleanup = contextlib.ExitStack()
        self._readers: list[threading.Thread] = []
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()
        self._result: RunResult | None = None
        self.timed_out = False
        self.cancelled = False
        if not capture:  # the command shares our terminal: `wait()` undoes what it did to it
            self._cleanup.enter_context(terminal.preserved())
        self._git_roots = _git_roots(spec)
        self._git_before = gitguard.snapshot(self._git_roots, spec.plan.repos)
        self.started = time.monotonic()
        self._sandbox = self._start(timeout)
        self.argv = self._sandbox.argv  # as launched: real fd numbers and paths
        self.pid = self._sandbox.proc.pid
        if timeout is not None:  # what the sandbox's setup left of it
            left = max(timeout - (time.monotonic() - self.started), 0)
            self._timer = threading.Timer(left, self._expire)
            self._timer.daemon = True
            self._timer.start()

    def _start(self, timeout: float | None) -> Sandbox:
        """The pipeline spawns the sandbox; whatever stops it first is exit 4 (nothing ran)."""
        from sandboxtui.core import setup_check, unix_gate

        try:
            sandbox = self.spec.enforcer.start(self.spec, self._streams, timeout)
        except (SandboxSetupError, setup_check.WorkspaceChanged, unix_gate.GateError) as exc:
            self._cleanup.close()
            raise LaunchError(ExitCode.UNENFORCEABLE, str(exc)) from exc
        except (OSError, RuntimeError, ImportError) as exc:  # incl. libseccomp missing
            self._cleanup.close()
            raise LaunchError(ExitCode.UNENFORCEABLE, f"cannot start {self.spec.enforcer.program}: "
                              f"{exc}") from exc
        if sandbox.setup_timed_out:
            self.timed_out = True
        if self._capture:
            for name, pipe in (("stdout", sandbox.proc.stdout), ("stderr", sandbox.proc.stderr)):
                t = threading.Thread(target=self._read, args=(name, pipe), daemon=True,
                                     name=f"sandboxtui-{name}")
                t.start()
                self._readers.append(t)
        return sandbox

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

    def _expire(self) -> None:
        self.timed_out = True
        self._sandbox.kill()

    def cancel(self) -> None:
        """Kill the whole sandbox now; `wait()` then reports `cancelled`."""
        self.cancelled = True
        self._sandbox.kill()

    def poll(self) -> RunResult | None:
        if self._sandbox.proc.poll() is None:
            return None
        return self.wait()

    def wait(self) -> RunResult:
        with self._lock:
            if self._result is None:
                sandbox = self._sandbox
                code = sandbox.proc.wait()
                duration = time.monotonic() - self.started
                if self._timer is not None:
                    self._timer.cancel()
                for t in self._readers:
                    t.join()
                try:
                    ended = sandbox.result(code, duration, bytes(self._stderr_tail))
                finally:
                    sandbox.close()
                    self._cleanup.close()
                git = self._neutralise_git()
                self._result = replace(self._outcome(ended, duration), git_neutralised=git,
                                       timed_out=self.timed_out, cancelled=self.cancelled)
            if self._callback_error is not None:
                raise self._callback_error
            return self._result

    def _outcome(self, ended: RunResult, duration: float) -> RunResult:
        """The pipeline's account, unless the launch itself stopped the command first."""
        if self._sandbox.setup_error is not None:
            return RunResult(ExitCode.UNENFORCEABLE, duration, None,
                             error=self._sandbox.setup_error)
        if self.timed_out or self.cancelled:
            why = "timed out" if self.timed_out else "cancelled"
            return RunResult(ExitCode.signalled(signal.SIGKILL), duration, int(signal.SIGKILL),
                             error=f"{why}: the sandbox was killed")
        return ended

    def _neutralise_git(self) -> tuple[str, ...]:
        """After the sandbox is gone: strip code-running settings from the repositories the
        command created or changed, and record what was done in the audit log."""
        if not self._git_roots:
            return ()
        done = gitguard.neutralise(self._git_before, self._git_roots)
        if done:
            from sandboxtui.core.audit import (
                AuditError,
                AuditLog,
                default_audit_path,
                git_neutralised_record,
            )

            try:
                AuditLog(default_audit_path()).append(git_neutralised_record(
                    time.time(), self.spec.cwd, self.spec.command, done))
            except AuditError as exc:
                done += (f"could not record this in the audit log: {exc}",)
        return done


def _git_roots(spec: LaunchSpec) -> list[str]:
    """Where the repositories a command creates are found and neutralised: the roots the plan
    walked (the workspace and the configured writable roots; not the shared `/tmp` and
    `$TMPDIR`, whose repositories other processes change at the same time)."""
    return list(spec.plan.walked) if spec.sandboxed else []


def start(
    spec: LaunchSpec,
    *,
    timeout: float | None = None,
    capture: bool = False,
    on_output: Callable[[OutputEvent], None] | None = None,
    stdout_to_stderr: bool = False,
    tracer: Sequence[str] = (),
) -> RunningCommand:
    """Spawn the command. `capture=False` shares this process's stdin/stdout/stderr (CLI; its
    stdout goes to stderr with `stdout_to_stderr`); `capture=True` pipes stdout/stderr into
    `OutputEvent`s (stdin is /dev/null): delivered to `on_output` when given (called from two
    reader threads, so it must be thread-safe; an exception in it is re-raised by `wait()`),
    else through `RunningCommand.events()`. `tracer`: an argv run in front of the whole
    sandbox (`sandboxtui trace`). Raises LaunchError (exit 4) when the sandbox cannot be
    prepared."""
    return RunningCommand(spec, timeout, Streams(capture, stdout_to_stderr, tuple(tracer)),
                          on_output)
