"""The run panel: a command goes through the precheck and the core launcher, output streams live.

The command runs in a thread worker: `core.approvals.gate` (the approval modal is its in-process
decider), then `core.launch.prepare` / `start`. Output arrives from the launcher's reader threads
into a `_Batcher` that keeps only the newest `MAX_LINES` lines; when lines arrive it wakes the
UI with one `Arrived` message at a time, and the UI takes at most `LIVE_LINES` of the newest,
so it does bounded work per batch whatever the output size, and the `Log` widget itself keeps
`MAX_LINES` lines. Nothing is polled: the worker waits for the command's end. Cancel kills the
whole sandbox.
"""

from __future__ import annotations

import contextlib
import functools
import shlex
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import DataTable, Input, Label, Log
from textual.worker import Worker, WorkerState

from sandboxtui.core.agents import resolve_policy
from sandboxtui.core.approvals import (
    ApprovalRequest,
    ApprovalSession,
    Decision,
    GateResult,
    deny,
    gate,
)
from sandboxtui.core.audit import AuditLog
from sandboxtui.core.launch import (
    LaunchError,
    LaunchSpec,
    OutputEvent,
    RunningCommand,
    RunResult,
    prepare,
    start,
)
from sandboxtui.core.outcome import ExitCode
from sandboxtui.core.plan import MountPlan, build_plan
from sandboxtui.core.run import Denied, Ran, Refused, RunOutcome, approver_edit, run
from sandboxtui.core.terminal import inert
from sandboxtui.core.trace import (
    TraceError,
    TraceLog,
    analyse,
    denial_hint,
    require_traceable,
    tracer,
)
from sandboxtui.model import Options, Workspace, reload_workspace
from sandboxtui.widgets.demo_scenarios import DemoScenarios, Outcome
from sandboxtui.widgets.denials import DenialsView
from sandboxtui.widgets.output_log import OutputLog
from sandboxtui.widgets.plan_view import PlanView

MAX_LINES = 2000  # lines kept by the output view
TRACE_ADVICE = ("ctrl+r turns tracing on: run it again for every refused operation and the "
                "change that would allow it")
MARK_ADVICE = "the Denials view lists every refusal with the change that would allow it"
# What tracing costs the run panel's launches (in process, a 10,000-file repository: git status
# 71 ms -> 0.54 s, find 46 ms -> 0.47 s, /bin/true 23 -> 84 ms). bench/trace.py's 2.6x / 1.6x
# time whole `sandboxtui` processes, whose interpreter start dilutes the ratio.
TRACE_COST = "syscall-heavy commands take up to 10x as long"
LIVE_LINES = 200  # the most lines one batch carries while output streams
MAX_LINE_BYTES = 8192  # a longer line is cut: one huge line must not defeat the bound


@dataclass(frozen=True)
class RunRecord:
    """One entry of the run history."""

    command: str
    exit_code: int
    duration: float
    note: str = ""
    last_stderr: str = ""  # the last line the command (or the refusal) wrote to stderr


@dataclass
class _Batcher:
    """Splits output chunks into lines and keeps the newest `MAX_LINES` (bounded memory).

    Lines stay raw bytes until shown: splitting and the bounded `deque` run in C, so a
    command printing as fast as it can costs the worker little. While output streams, a
    batch carries at most `LIVE_LINES` of the newest lines (nobody reads faster); the final
    batch replaces the view with the whole window, so it ends showing the exact last lines.
    `listen(wake)`: `wake()` is called from a reader thread when lines arrive and the UI has
    taken the previous ones, so at most one wake-up is on its way.
    """

    tail: deque[bytes] = field(default_factory=lambda: deque(maxlen=MAX_LINES))
    fresh: int = 0  # lines added since the last batch
    lines_total: int = 0
    total_bytes: int = 0
    partial: dict[str, bytes] = field(default_factory=dict)
    last_stderr: bytes = b""
    streamed: bool = False  # a live batch was taken, so the final window must replace it
    wake: Callable[[], None] | None = None
    woken: bool = False  # a wake-up is on its way
    lock: threading.Lock = field(default_factory=threading.Lock)

    def listen(self, wake: Callable[[], None]) -> None:
        with self.lock:
            self.wake = wake
        self._wake()

    def _wake(self) -> None:
        with self.lock:
            wake = self.wake if self.fresh and not self.woken else None
            self.woken = self.woken or wake is not None
        if wake is not None:
            wake()

    def feed(self, event: OutputEvent) -> None:
        """Called by the launcher's reader threads: never blocks them for long, never grows."""
        with self.lock:
            self.total_bytes += len(event.data)
            data = self.partial.pop(event.stream, b"") + event.data
            *complete, rest = data.split(b"\n")
            if len(rest) > MAX_LINE_BYTES:
                complete.append(rest)
                rest = b""
            if rest:
                self.partial[event.stream] = rest
            if event.stream == "stderr":
                self._note_stderr(complete)
            self.tail.extend(complete)
            self.fresh += len(complete)
            self.lines_total += len(complete)
        self._wake()

    def finish(self) -> None:
        with self.lock:
            for stream in list(self.partial):
                line = self.partial.pop(stream)
                if stream == "stderr":
                    self._note_stderr([line])
                self.tail.append(line)
                self.fresh += 1
                self.lines_total += 1

    def _note_stderr(self, lines: list[bytes]) -> None:
        last = next((line for line in reversed(lines) if line.strip()), None)
        if last is not None:
            self.last_stderr = last

    def live(self) -> tuple[list[str], int]:
        """The newest lines since the last batch (at most LIVE_LINES) and how many were skipped."""
        with self.lock:
            count = min(self.fresh, LIVE_LINES, len(self.tail))
            skipped, self.fresh, self.woken = self.fresh - count, 0, False
            self.streamed = self.streamed or count > 0
            newest = [self.tail[i] for i in range(len(self.tail) - count, len(self.tail))]
        return [_decode(line) for line in newest], skipped

    def recent(self, count: int = 200) -> str:
        """The newest `count` kept lines, as shown (for the denial hint)."""
        with self.lock:
            newest = list(self.tail)[-count:]
        return "\n".join(_decode(line) for line in newest)

    def window(self) -> tuple[list[str], int, bool]:
        """All kept lines, how many earlier lines were not kept, and whether live batches were
        taken (the window replaces them)."""
        with self.lock:
            self.fresh = 0
            kept = list(self.tail)
            dropped = self.lines_total - len(kept)
            streamed = self.streamed
        return [_decode(line) for line in kept], dropped, streamed


def _replan(options: Options, override: str) -> MountPlan:
    """The plan with one more `-c` override: how the analysis checks a suggestion."""
    policy = resolve_policy(cwd=options.cwd, config_path=options.config_path,
                            profile=options.profile, sandbox_mode=options.sandbox_mode,
                            overrides=(*options.overrides, override), codex=options.codex,
                            claude=options.claude, strict=options.strict)
    return build_plan(policy, options.cwd, mount_proc=options.mount_proc)


def _decode(line: bytes) -> str:
    """One output line as shown: inert (an escape sequence from the command is shown, never
    sent to the host terminal; markup is never parsed: the views take plain text). A CRLF
    line ending is a line ending, not a visible `\\r`; a carriage return inside the line
    (progress output) overwrites it, as on a terminal: what follows the last one is shown."""
    raw = line[:MAX_LINE_BYTES].removesuffix(b"\r").rsplit(b"\r", 1)[-1]
    text = inert(raw.decode("utf-8", errors="replace"), lines=True)
    return text + (" [line cut]" if len(line) > MAX_LINE_BYTES else "")


class CommandInput(Input):
    """The command line, with up/down through the history."""

    BINDINGS = [
        Binding("up", "history(-1)", "History", key_display="↑", id="run.history_prev"),
        Binding("down", "history(1)", "History", key_display="↓", id="run.history_next",
                show=False),  # the footer fits 80 columns: ↑ History says it
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(placeholder="command to run in the sandbox, e.g. cat .env  (enter runs)",
                         id=id)
        self.history: list[str] = []
        self._pos = 0

    def remember(self, command: str) -> None:
        if not self.history or self.history[-1] != command:
            self.history.append(command)
        self._pos = len(self.history)

    def action_history(self, step: int) -> None:
        if not self.history:
            return
        self._pos = max(0, min(len(self.history), self._pos + step))
        self.value = self.history[self._pos] if self._pos < len(self.history) else ""
        self.cursor_position = len(self.value)


class RunPanel(Vertical, PlanView):
    """Command input, live output, exit status and duration, history."""

    BINDINGS = [
        # short labels, ctrl+l in the help screen only: the footer fits 80 columns
        Binding("escape", "cancel", "Kill/leave", id="run.cancel"),
        Binding("ctrl+t", "run_interactive", "Terminal", id="run.interactive"),
        Binding("ctrl+b", "dry_run", "argv", id="run.dry_run"),
        Binding("ctrl+l", "clear", "Clear output", id="run.clear", show=False),
        Binding("ctrl+r", "toggle_trace", "Trace", id="run.trace",
                tooltip=f"trace runs on/off (on where strace is installed): the Denials view "
                        f"lists what the sandbox refuses; {TRACE_COST} (a 10,000-file "
                        "repository: git status 71 ms -> 0.54 s, find 46 ms -> 0.47 s)"),
    ]
    # The Denials view beside the output; under it, in place of the history, when narrow, and
    # there its title line only until a run was refused something (the output gets the room).
    DEFAULT_CSS = """
    RunPanel #run-body { height: 1fr; }
    RunPanel #run-body > Log { width: 1fr; }
    RunPanel.-narrow #run-body { layout: vertical; }
    RunPanel.-narrow #run-body > DenialsView { height: 2fr; }
    RunPanel.-narrow #run-body > DenialsView.-empty { height: auto; }
    RunPanel.-narrow #run-body > DenialsView.-empty > DataTable,
    RunPanel.-narrow #run-body > DenialsView.-empty > #denials-detail { display: none; }
    RunPanel.-narrow.-tracing #run-history { display: none; }
    """

    class Output(Message):
        """Output lines and how many were left out before them. The last message of a run
        is its `window` (the kept last lines); `replace` says it replaces a streamed view.
        `command`: the lines are the command's own (marked where they name a refused path),
        not sandboxtui's."""

        bubble = False

        def __init__(self, lines: list[str], skipped: int, total_bytes: int, *,
                     window: bool = False, replace: bool = False, command: bool = True
                     ) -> None:
            super().__init__()
            self.lines = lines
            self.skipped = skipped
            self.total_bytes = total_bytes
            self.window = window
            self.replace = replace
            self.command = command

    class Arrived(Message):
        """Output lines are waiting in `batch` (posted from a reader thread)."""

        bubble = False

        def __init__(self, batch: _Batcher) -> None:
            super().__init__()
            self.batch = batch

    class Started(Message):
        bubble = False

        def __init__(self, argv: tuple[str, ...], spec: LaunchSpec) -> None:
            super().__init__()
            self.argv = argv
            self.spec = spec

    class Replanned(Message):
        """The plan made for a launch differs from the one shown: the app shows it."""

        def __init__(self, workspace: Workspace) -> None:
            super().__init__()
            self.workspace = workspace

    class Finished(Message):
        """Bubbles to the app (the audit log may have grown)."""

        def __init__(self, record: RunRecord) -> None:
            super().__init__()
            self.record = record

    def __init__(self, session: ApprovalSession, audit_path: str,
                 ask: Callable[[ApprovalRequest], Future[Decision]], *,
                 id: str | None = None) -> None:
        super().__init__(id=id)
        self.session = session
        self.audit_path = audit_path
        self.ask = ask  # opens the approval modal (UI thread); the future gets the decision
        self.running: RunningCommand | None = None
        self.records: list[RunRecord] = []
        self._started = 0.0
        self._bytes = 0
        self.dropped_lines = 0  # output lines of the current run that were not kept
        self._command = ""
        self._scenario: str | None = None  # the demo scenario the current run belongs to
        self._edit = ""  # the approver's edit of the current run, said in the transcript
        self.tracing = False  # on from mount where the tracer is available
        self._plan: MountPlan | None = None  # the current run's plan: its output is marked
        self._mark_advice = TRACE_ADVICE  # where a marked line's hover points: traced or not
        self.denials = DenialsView(id="denials")  # the worker's traced runs post to it

    def compose(self) -> ComposeResult:
        yield CommandInput(id="run-input")
        yield Label(id="run-status")
        with Horizontal(id="run-body"):
            yield OutputLog(max_lines=MAX_LINES, id="run-output")
            yield self.denials.data_bind(RunPanel.workspace)
        if self.workspace.options.demo:
            yield DemoScenarios(id="demo-scenarios").data_bind(RunPanel.workspace)
        history: DataTable[str | Text] = DataTable(id="run-history", cursor_type="row")
        yield history

    def on_mount(self) -> None:
        self.query_one("#run-history", DataTable).add_columns(
            "#", "command", "exit", "duration", "note")
        try:
            tracer()
        except TraceError as exc:
            trace = f"trace off: strace is not installed ({exc.remedy})"
        else:
            self._set_tracing(True)
            trace = f"trace on (ctrl+r: off), {TRACE_COST}"
        # the trace state first: at 80 columns the rest is cut
        self._status(Text(f"ready; {trace}; ctrl+t runs a command on the terminal, ctrl+b "
                          "shows the bwrap argv", style="dim"))

    def on_resize(self) -> None:
        self.set_class(self.size.width < 120, "-narrow")

    def on_unmount(self) -> None:
        if self.running is not None:
            self.running.cancel()

    def _status(self, text: Text | str) -> None:
        self.query_one("#run-status", Label).update(text)

    # --- submitting ----------------------------------------------------------------------------

    def _parse(self, value: str) -> tuple[str, ...] | None:
        try:
            argv = tuple(shlex.split(value))
        except ValueError as exc:
            self._status(Text(f"cannot parse the command: {exc}", style="bold red"))
            return None
        return argv or None

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.submit(event.value)

    def submit(self, value: str, *, interactive: bool = False,
               scenario: str | None = None) -> None:
        if self.running is not None:
            self._status(Text("a command is still running (escape kills it)", style="yellow"))
            return
        argv = self._parse(value)
        if argv is None:
            return
        self._scenario = scenario
        self._edit = ""
        box = self.query_one(CommandInput)
        box.remember(value)
        box.value = ""
        self._started = time.monotonic()
        self._bytes = 0
        self.dropped_lines = 0
        self._plan = None
        self._mark_advice = MARK_ADVICE if self.tracing else TRACE_ADVICE
        self.query_one(Log).write_line(inert(f"$ {shlex.join(argv)}"))
        self._status(Text(inert(f"checking {shlex.join(argv)} ..."), style="yellow"))
        self._execute(argv, interactive)

    def action_run_interactive(self) -> None:
        self.submit(self.query_one(CommandInput).value, interactive=True)

    def action_cancel(self) -> None:
        """Escape: kill the running sandbox; with nothing running, leave the input."""
        if self.running is not None:
            self.running.cancel()
            self._status(Text("killing the sandbox ...", style="bold red"))
        else:
            self.app.set_focus(None)  # the app's keys (1-7, q, ...) work again

    def action_clear(self) -> None:
        self.query_one(Log).clear()

    def action_toggle_trace(self) -> None:
        """ctrl+r: trace the next runs (strace in front of the sandbox) and show what the
        sandbox refuses in the Denials view; without strace, say so and stay off."""
        if not self.tracing:
            try:
                tracer()
            except TraceError as exc:
                self._status(Text(inert(str(exc)), style="bold red"))
                return
        self._set_tracing(not self.tracing)
        self._status(Text("trace on: the next runs go through strace; the Denials view lists "
                          f"what the sandbox refuses (ctrl+r turns it off); {TRACE_COST}"
                          if self.tracing else
                          "trace off: runs are not traced (ctrl+r turns it on)", style="dim"))

    def _set_tracing(self, on: bool) -> None:
        self.tracing = on
        self.set_class(on, "-tracing")
        self.denials.display = on

    def action_dry_run(self) -> None:
        argv = self._parse(self.query_one(CommandInput).value or "true")
        if argv is None:
            return
        log = self.query_one(Log)
        try:
            spec = prepare(self.workspace.plan, argv, caps=self.workspace.caps)
        except LaunchError as exc:
            log.write_line(inert(f"dry run: exit {exc.exit_code}: {exc.message}"))
            return
        log.write_line(inert(f"dry run of {shlex.join(argv)}: the exact argv, as one shell line "
                             "(the --args fd and the launch directory are allocated per launch):"))
        log.write_line(inert(shlex.join(spec.argv())))

    # --- the worker ----------------------------------------------------------------------------

    def _decide(self, request: ApprovalRequest) -> Decision:
        """Called by `gate` in the worker thread: wait for the modal (the app answers with a
        denial when it closes first)."""
        try:
            future = self.app.call_from_thread(self.ask, request)
        except RuntimeError:  # the app closed meanwhile
            return deny("tui", "the TUI closed before a decision")
        return future.result()

    @work(thread=True, exclusive=True, group="run", name="run command", exit_on_error=False)
    def _execute(self, argv: tuple[str, ...], interactive: bool) -> None:
        # Plan afresh: the launch must reflect the filesystem now (a new .env is masked).
        shown = self.workspace
        ws = reload_workspace(shown, shown.options)
        if ws.plan.rules != shown.plan.rules or ws.config_error != shown.config_error:
            self.post_message(self.Replanned(ws))
        if not ws.can_launch:
            why = ws.config_error or ws.choice.reason
            code = ExitCode.USAGE if ws.config_error else ExitCode.UNENFORCEABLE
            self._finish(RunRecord(shlex.join(argv), code, 0.0, f"refused: {why}", why))
            return
        batch = _Batcher()

        def approve(command: Sequence[str], plan: MountPlan) -> GateResult:
            return gate(command, plan, session=self.session, decide=self._decide, tty=None,
                        audit=AuditLog(self.audit_path))

        def launch(spec: LaunchSpec) -> RunResult:
            if edit := approver_edit(argv, spec):  # the transcript shows what runs
                self._edit = inert(f"sandboxtui: {edit}")
                self._post_lines([f"sandboxtui: {edit}", f"$ {shlex.join(spec.command)}"])
            traced = self._traced(spec, ws) if self.tracing else contextlib.nullcontext(())
            with traced as tracer_argv:
                if interactive:
                    return self.app.call_from_thread(self._run_on_terminal, spec, tracer_argv)
                running = start(spec, capture=True, on_output=batch.feed, tracer=tracer_argv)
                self.running = running
                self.post_message(self.Started(spec.command, spec))
                try:
                    return self._pump(running, batch)
                finally:
                    self.running = None

        outcome = run(ws.plan, argv, approve=approve, launch=launch, caps=ws.caps)
        self._finish(self._record(outcome, interactive, batch))

    def _record(self, outcome: RunOutcome, interactive: bool, batch: _Batcher) -> RunRecord:
        """The history entry of a launch, and what its transcript adds."""
        command = shlex.join(outcome.command)
        match outcome:
            case Denied(message=message):
                self._post_lines(message.splitlines())
                last = (message.splitlines() or ["denied"])[-1]
                return RunRecord(command, outcome.exit_code, 0.0, "denied before launch", last)
            case Refused(message=message):
                self._post_lines([f"sandboxtui: {message}"])
                return RunRecord(command, outcome.exit_code, 0.0, message, message)
            case Ran(spec=spec, result=result, approval=approval):
                if result.error:
                    self._post_lines([f"sandboxtui: {result.error}"])
                hint = (denial_hint(spec.plan, batch.recent(), TRACE_ADVICE)
                        if result.exit_code != 0 and not interactive and not self.tracing
                        else None)  # traced: the Denials view has them all
                if hint is not None:
                    self._post_lines([f"sandboxtui: {hint}"])
                if result.git_neutralised:
                    self._post_lines([f"sandboxtui: git repository left by the command: "
                                      f"{line}" for line in result.git_neutralised])
                notes = (approval, "ran on the terminal" if interactive else "",
                         result.error or "")
                return RunRecord(command, result.exit_code, result.duration,
                                 "; ".join(n for n in notes if n),
                                 result.error or _decode(batch.last_stderr))

    @contextlib.contextmanager
    def _traced(self, spec: LaunchSpec, ws: Workspace) -> Iterator[Sequence[str]]:
        """The tracer's argv for this launch. While it runs, the Denials view gets the
        analysis of the trace so far; when it ends, of the whole trace (as `sandboxtui trace`
        prints it)."""
        require_traceable(spec)
        try:
            log = TraceLog()
        except TraceError as exc:  # strace went away since trace was turned on
            raise LaunchError(ExitCode.UNENFORCEABLE, str(exc)) from exc
        view = self.denials
        command = shlex.join(spec.command)
        replan = functools.cache(functools.partial(_replan, ws.options))

        def show(text: str, running: bool) -> None:
            report = analyse(text, spec.plan, 0, replan,
                             network_on=spec.plan.policy.network.value == "on")
            view.post_message(DenialsView.Report(report, command, running))

        show("", True)
        live = threading.Thread(target=lambda: [show(text, True) for text in log.growing()],
                                name="sandboxtui-denials", daemon=True)
        live.start()
        try:
            yield log.argv()
        finally:
            text = log.close()
            live.join()
            show(text, False)

    def _pump(self, running: RunningCommand, batch: _Batcher) -> RunResult:
        """Wait for the command's end, then send the kept window; meanwhile arriving lines
        wake the UI (`Arrived`), which takes the newest."""
        batch.listen(lambda: self.post_message(self.Arrived(batch)))
        outcome = running.wait()  # also waits for the readers' last output
        batch.finish()
        lines, dropped, streamed = batch.window()
        if streamed or lines:
            self.post_message(self.Output(lines, dropped, batch.total_bytes, window=True,
                                          replace=streamed))
        return outcome

    def _post_lines(self, lines: list[str]) -> None:
        self.post_message(self.Output([inert(line) for line in lines], 0, 0, command=False))

    def _finish(self, record: RunRecord) -> None:
        self.post_message(self.Finished(record))

    def _run_on_terminal(self, spec: LaunchSpec, tracer: Sequence[str]) -> RunResult:
        """Interactive commands: hand the terminal over (suspend the app) until they end."""
        try:
            with self.app.suspend():
                return start(spec, capture=False, tracer=tracer).wait()
        except LaunchError:
            raise
        except Exception as exc:  # SuspendNotSupported in headless/test mode
            raise LaunchError(ExitCode.UNENFORCEABLE,
                              f"cannot hand over the terminal: {exc}") from exc

    # --- UI side -------------------------------------------------------------------------------

    def on_run_panel_started(self, message: Started) -> None:
        self._command = inert(shlex.join(message.argv))
        self._plan = message.spec.plan
        self._status(Text(f"running {self._command} (escape kills the sandbox)",
                          style="bold yellow"))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The run worker raised: the panel takes the next command; the app shows the error."""
        if event.state is WorkerState.ERROR:
            self.running = None
            self._status(Text("the run failed unexpectedly (see the notification)",
                              style="bold red"))
            self.app.post_message(Worker.StateChanged(event.worker, event.state))

    def on_run_panel_arrived(self, message: Arrived) -> None:
        lines, skipped = message.batch.live()
        if lines or skipped:
            self.post_message(self.Output(lines, skipped, message.batch.total_bytes))

    def on_run_panel_output(self, message: Output) -> None:
        log = self.query_one(OutputLog)
        if message.replace:
            # The run streamed: show the exact last lines it printed, in one piece.
            log.clear()
            if self._edit:
                log.write_line(self._edit)
            log.write_line(f"$ {self._command}")
        if message.window:
            self.dropped_lines = message.skipped
        if message.skipped:
            log.write_line(f"... {message.skipped} lines not shown (the view keeps the last "
                           f"{MAX_LINES}; while output streams it shows the newest)")
        log.write_lines(message.lines)
        if message.command and self._plan is not None:
            self._mark(log, message.lines, self._plan, self._mark_advice)
        if message.total_bytes:
            self._bytes = message.total_bytes
            elapsed = time.monotonic() - self._started
            self._status(Text(f"running ... {elapsed:.1f} s, {self._bytes / 1e6:.1f} MB of "
                              "output (escape kills the sandbox)", style="yellow"))

    @staticmethod
    def _mark(log: OutputLog, lines: list[str], plan: MountPlan, advice: str) -> None:
        """Mark the lines that read like a refusal of a path the plan restricts: the lines the
        untraced run's hint explains, each explained the same way."""
        for line in lines:
            said = denial_hint(plan, line, advice)
            if said is not None:
                log.mark(line, said)

    def on_run_panel_finished(self, message: Finished) -> None:
        record = message.record
        self.records.append(record)
        command, note = inert(record.command), inert(record.note)
        ok = record.exit_code == 0
        style = "bold green" if ok else "bold red"
        self._status(Text.assemble(
            (f"exit {record.exit_code}", style), f"  ·  {record.duration:.2f} s  ·  ",
            command, (f"  ·  {note}" if note else "", "dim"),
            (f"  ·  {self.dropped_lines} earlier output lines not kept" if self.dropped_lines
             else "", "dim")))
        self.query_one(Log).write_line(f"[exit {record.exit_code}, {record.duration:.2f} s]")
        self.query_one("#run-history", DataTable).add_row(
            str(len(self.records)), Text(command), Text(str(record.exit_code), style=style),
            f"{record.duration:.2f} s", Text(note))
        if self._scenario is not None:
            for scenarios in self.query(DemoScenarios):
                scenarios.record(self._scenario, Outcome(record.exit_code, record.last_stderr))
            self._scenario = None

    def on_denials_view_rerun(self, message: DenialsView.Rerun) -> None:
        message.stop()
        self.submit(message.command)

    def on_demo_scenarios_run(self, message: DemoScenarios.Run) -> None:
        message.stop()
        self.submit(message.scenario.command, scenario=message.scenario.key)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        box = self.query_one(CommandInput)
        box.value = self.records[event.cursor_row].command
        box.focus()
