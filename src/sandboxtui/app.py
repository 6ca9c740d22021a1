"""The Textual app: composes the panels around one `Workspace` and keeps it current.

The workspace is a reactive of the app; every plan panel is bound to it (`data_bind`), so a
re-plan (live reload, profile or pipeline switch) is one assignment and each panel's
`watch_workspace` renders the new one. Threads never call into the UI: the file watcher, the
approvals broker and the verify worker post messages (`FilesChanged`, `ApprovalAsked`,
`VerifyFinished`). A worker that fails unexpectedly is shown as an error and logged; the app
stays up.
"""

from __future__ import annotations

import fnmatch
import gc
import os
import stat
import threading
import traceback
from collections.abc import Iterable
from concurrent.futures import Future
from dataclasses import replace
from typing import cast

from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.notifications import SeverityLevel
from textual.reactive import var
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Header, Input, TabbedContent, TabPane
from textual.worker import Worker, WorkerState

from sandboxtui.core.approvals.broker import (
    Broker,
    BrokerError,
    ConsoleBusy,
    PendingRequest,
    default_socket_dir,
)
from sandboxtui.core.approvals.model import ApprovalRequest, ApprovalSession, Decision, deny
from sandboxtui.core.audit import default_audit_path
from sandboxtui.core.diagnostics_model import Severity
from sandboxtui.core.pipeline import Pipeline
from sandboxtui.core.plan import OpKind
from sandboxtui.core.policy import PROTECTED_NAMES
from sandboxtui.core.terminal import inert
from sandboxtui.core.verify import SCRATCH_NAME, VerifyError, VerifyReport, node_paths, verify
from sandboxtui.model import (
    Options,
    Workspace,
    describe_changes,
    open_workspace,
    reload_workspace,
)
from sandboxtui.widgets.approval_modal import ApprovalModal
from sandboxtui.widgets.approvals_queue import ApprovalBanner, ApprovalsPanel
from sandboxtui.widgets.carveouts import CarveoutsTable, carveout_rows
from sandboxtui.widgets.config_state import ConfigBanner
from sandboxtui.widgets.denials import DenialsView
from sandboxtui.widgets.help_screen import HelpScreen, help_title
from sandboxtui.widgets.mount_tree import MountTree
from sandboxtui.widgets.node_details import NodeDetails
from sandboxtui.widgets.path_filter import PathFilter
from sandboxtui.widgets.plan_view import JumpToPath
from sandboxtui.widgets.run_panel import RunPanel
from sandboxtui.widgets.seccomp_rules import SeccompRules
from sandboxtui.widgets.settings import SettingsTable
from sandboxtui.widgets.switcher import NO_PROFILE, ProfilePicker
from sandboxtui.widgets.verify_results import VerifyResults, summary_line
from sandboxtui.widgets.warnings import WarningsPanel

TABS = (
    ("tree", "Tree", "1"),
    ("carveouts", "Carveouts", "2"),
    ("seccomp", "Seccomp", "3"),
    ("warnings", "Warnings", "4"),
    ("settings", "Settings", "5"),
    ("run", "Run", "6"),
    ("approvals", "Approvals", "7"),
    ("verify", "Verify", "8"),
)
# The widget that gets the focus when a tab is shown (a hidden focused widget would pull the
# tabs back to its own pane).
TAB_FOCUS = {"tree": "#mount-tree", "carveouts": "#carveouts-table",
             "seccomp": "#seccomp-table", "warnings": "#warnings-panel",
             "settings": "#settings-table", "run": "#run-input", "approvals": "#queue-table",
             "verify": "#verify-table"}
# The footer holds the keys that matter in the focused panel and fits 80 columns: the tab
# keys share one entry ("1-8 Panels": the tab bar names them); the switchers and the theme are
# in the help screen and the palette only; verify node is offered in the tree, verify plan in
# the tree and the Verify panel.
TAB_KEYS = f"1-{len(TABS)}"
VERIFY_TABS = {"verify_node": ("tree",), "verify_plan": ("tree", "verify")}
VERIFY_SAMPLE = 20  # random paths added to the plan's interesting ones by "verify plan"


class FilesChanged(Message):
    """The file watcher's batch of changed paths under the workspace or the config's directory."""

    def __init__(self, paths: list[str]) -> None:
        super().__init__()
        self.paths = paths


class ApprovalAsked(Message):
    """The approvals broker queued a request from a headless run (posted from its thread)."""

    def __init__(self, pending: PendingRequest) -> None:
        super().__init__()
        self.pending = pending


class VerifyFinished(Message):
    """The verify worker's answer: a report, or why the probes could not run."""

    def __init__(self, workspace: Workspace, scope: str, report: VerifyReport | None,
                 error: str | None = None) -> None:
        super().__init__()
        self.workspace = workspace
        self.scope = scope
        self.report = report
        self.error = error


class SandboxApp(App[int]):
    """`sandboxtui` / `sandboxtui demo`: the policy inspector and command runner."""

    CSS_PATH = "app.tcss"
    TITLE = "sandboxtui"
    # Screen classes for small terminals (80x24 is a first-class size): app.tcss gives the run
    # output the room there.
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (36, "-tall")]
    BINDINGS = [
        *(Binding(key, f"show_tab('{tab}')", "Panels" if i == 0 else label, id=f"tab.{tab}",
                  key_display=TAB_KEYS if i == 0 else None, show=i == 0)
          for i, (tab, label, key) in enumerate(TABS)),
        Binding("slash", "find_path", "Find", key_display="/", id="tree.find"),
        Binding("v", "verify_node", "Verify", id="verify.node"),
        Binding("V", "verify_plan", "Verify all", id="verify.plan"),
        Binding("p", "pick_profile", "Profile", id="switch.profile", show=False),
        Binding("l", "toggle_pipeline", "Pipeline", id="switch.pipeline", show=False),
        Binding("t", "toggle_theme", "Light/dark", id="app.theme", show=False),
        Binding("a", "review_next", "Review approval", id="app.review"),
        Binding("question_mark,f1", "help", "Help", key_display="?", id="app.help"),
        Binding("q", "quit", "Quit", id="app.quit"),
    ]

    # What every plan panel shows (they are bound to it). Set in __init__; always_update: a
    # re-plan re-renders even when it changed nothing (new files in the tree).
    workspace: var[Workspace] = var(cast(Workspace, None), init=False, always_update=True)

    def __init__(self, workspace: Workspace, *, watch: bool = True,
                 socket_dir: str | None = None, audit_path: str | None = None,
                 all_workspaces: bool = False) -> None:
        """`socket_dir`: host the approvals broker there (None: no broker), for headless runs
        in this workspace, or in every workspace (`all_workspaces`)."""
        super().__init__()
        self.all_workspaces = all_workspaces
        self.set_reactive(SandboxApp.workspace, workspace)
        self.watch_files = watch
        self.socket_dir = socket_dir
        self.audit_path = audit_path or default_audit_path()
        self.session = ApprovalSession()
        self.who = f"tui pid {os.getpid()}"
        self.broker: Broker | None = None
        self._undecided: set[Future[Decision]] = set()  # approval modals still open
        self.unmounted = threading.Event()  # set on unmount: stops the watcher, denies approvals
        self.watch_stopped = threading.Event()  # set when the watcher thread has returned
        self.verifying = False

    def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information",
               timeout: float | None = None, markup: bool = False) -> None:
        """Every notification quotes something untrusted (a command from a headless run, a
        path, a config error): always inert, never parsed as markup."""
        super().notify(inert(message, lines=True), title=inert(title), severity=severity,
                       timeout=timeout, markup=False)

    # --- layout ------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        bound = SandboxApp.workspace
        yield Header()
        yield ConfigBanner(id="config-banner").data_bind(bound)
        yield ApprovalBanner(id="approval-banner")
        with TabbedContent(initial="tree"):
            with TabPane("Tree", id="tree"), Vertical():
                yield PathFilter(id="path-filter").data_bind(bound)
                with Horizontal():
                    yield MountTree(id="mount-tree").data_bind(bound)
                    yield NodeDetails(id="details").data_bind(bound)
            with TabPane("Carveouts", id="carveouts"):
                yield CarveoutsTable(id="carveouts-table").data_bind(bound)
            with TabPane("Seccomp", id="seccomp"):
                yield SeccompRules(id="seccomp-rules").data_bind(bound)
            with TabPane("Warnings", id="warnings"):
                yield WarningsPanel(id="warnings-panel").data_bind(bound)
            with TabPane("Settings", id="settings"):
                yield SettingsTable(id="settings-table").data_bind(bound)
            with TabPane("Run", id="run"):
                yield RunPanel(self.session, self.audit_path, self.ask_approval,
                               id="run-panel").data_bind(bound)
            with TabPane("Approvals", id="approvals"):
                yield ApprovalsPanel(self.audit_path, id="approvals-panel")
            with TabPane("Verify", id="verify"):
                yield VerifyResults(id="verify-results").data_bind(bound)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self._update_titles()
        self.query_one(MountTree).focus()
        errors = [d for d in self.workspace.diagnostics if d.severity is Severity.ERROR]
        if errors:
            self.notify("\n".join(d.cause for d in errors), title="Launches refused",
                        severity="error", timeout=10)
        if self.watch_files:
            self._watch()
        if self.socket_dir is not None:  # after the first paint: it is not shown
            self.call_after_refresh(self._start_broker, self.socket_dir)

    def on_unmount(self) -> None:
        self.unmounted.set()
        for future in list(self._undecided):
            future.set_result(deny("tui", "the TUI closed before a decision"))
        if self.broker is not None:
            self.broker.close()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A worker that raised: say so and log the traceback; the app stays up."""
        error = event.worker.error
        if event.state is not WorkerState.ERROR or error is None:
            return
        if event.worker.group == "verify":
            self.verifying = False
            self.query_one(VerifyResults).loading = False
        self.log.error("".join(traceback.format_exception(error)))
        self.notify(f"{type(error).__name__}: {error}", title=f"{event.worker.name} failed",
                    severity="error", timeout=10)

    def watch_workspace(self) -> None:
        self._update_titles()

    def _update_titles(self) -> None:
        if not self.query(WarningsPanel):
            return  # closing
        ws = self.workspace
        policy = ws.plan.policy
        mode = "UNSANDBOXED" if ws.plan.unsandboxed else policy.mode.value
        # what a narrow header must not cut comes first; the path may be cut
        self.sub_title = inert(f"{mode} · network {policy.network.value} · {ws.pipeline} · "
                               f"profile {policy.profile or '-'} · {ws.plan.cwd}")
        tabs = self.query_one(TabbedContent)
        errors, warnings = (sum(d.severity is s for d in ws.diagnostics)
                            for s in (Severity.ERROR, Severity.WARNING))
        # counts without brackets: every tab label fits 80 columns
        counts = " ".join(f"{n}{kind}" for n, kind in ((errors, "E"), (warnings, "W")) if n)
        tabs.get_tab("warnings").label = f"Warnings {counts}".rstrip()
        tabs.get_tab("carveouts").label = f"Carveouts {len(carveout_rows(ws.plan))}"
        pending = len(self.query_one(ApprovalsPanel).pending)
        tabs.get_tab("approvals").label = f"Approvals {pending}" if pending else "Approvals"

    # --- approvals -----------------------------------------------------------------------------

    def ask_approval(self, request: ApprovalRequest, source: str = "run panel") -> Future[Decision]:
        """Open the approval modal; the future gets the decision, or a denial when the app
        closes first (UI thread only). After a decision, the next request waiting is shown."""
        future: Future[Decision] = Future()
        if self.unmounted.is_set():
            future.set_result(deny("tui", "the TUI closed before a decision"))
            return future
        self._undecided.add(future)
        future.add_done_callback(self._undecided.discard)
        future.add_done_callback(lambda _: self.call_later(self._show_next_request))
        others = sum(p.request.id != request.id
                     for p in self.query_one(ApprovalsPanel).waiting())
        modal = ApprovalModal(request, self.who, source, home=self.workspace.plan.cwd,
                              waiting=1 + others)
        self.push_screen(modal, future.set_result)
        return future

    def _start_broker(self, socket_dir: str) -> None:
        if self.unmounted.is_set():  # closed before its first paint: nothing to serve
            return
        workspace = None if self.all_workspaces else self.workspace.plan.cwd
        broker = Broker(socket_dir, workspace=workspace, session=self.session,
                        on_request=self._broker_asks)
        try:
            broker.start()
        except ConsoleBusy as exc:
            self.notify(f"headless runs {'anywhere' if workspace is None else 'here'} ask the "
                        f"sandboxtui already serving their approvals (pid {exc.pid}), not this "
                        "one", title="Approvals go to another sandboxtui", severity="warning",
                        timeout=8)
            return
        except BrokerError as exc:
            self.notify(f"{exc}\nthis sandboxtui does not answer headless runs' approvals",
                        title="Approvals broker not started", severity="warning", timeout=8)
            return
        self.broker = broker

    def _broker_asks(self, pending: PendingRequest) -> None:
        """The broker's connection thread has a request: hand it to the UI."""
        if not self.post_message(ApprovalAsked(pending)):  # the app is closing
            pending.decide(deny("tui", "the TUI closed before a decision"))

    def on_approval_asked(self, message: ApprovalAsked) -> None:
        """A prompt already up counts the new request; while the user types (or another
        screen is up) a banner and the bell announce it; otherwise it is shown."""
        panels = self.query(ApprovalsPanel)
        if not panels:  # the app is closing
            message.pending.decide(deny("tui", "the TUI closed before a decision"))
            return
        panels.first().add(message.pending)
        if isinstance(self.screen, ModalScreen) or isinstance(self.focused, Input):
            self.bell()
        else:
            self.review(message.pending)

    def on_approvals_panel_changed(self) -> None:
        self.refresh_bindings()
        self._update_titles()
        self._show_banner()
        if isinstance(self.screen, ApprovalModal):
            self.screen.count_waiting(1 + self._queued())

    def _queued(self) -> int:
        """Requests from headless runs waiting and not on screen."""
        shown = self.screen.request.id if isinstance(self.screen, ApprovalModal) else None
        return sum(p.request.id != shown for p in self.query_one(ApprovalsPanel).waiting())

    def _show_banner(self) -> None:
        for banner in self.query(ApprovalBanner):  # none while the app is closing
            shown = isinstance(self.screen, ApprovalModal)
            banner.show([] if shown else self.query_one(ApprovalsPanel).waiting())

    def _show_next_request(self) -> None:
        """After a decision: the next request waiting (behind its own guard time)."""
        if not self.unmounted.is_set() and not isinstance(self.screen, ModalScreen):
            self._show_banner()
            self.action_review_next()

    def action_review_next(self) -> None:
        waiting = self.query_one(ApprovalsPanel).waiting()
        if waiting and not isinstance(self.screen, ApprovalModal):
            self.review(waiting[0])

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """`a` (review) is offered while requests wait; verify where it applies."""
        if action == "review_next":
            return bool(self.query(ApprovalsPanel)) and bool(
                self.query_one(ApprovalsPanel).waiting())
        if action == "find_path" and isinstance(self.focused, Input):
            return False  # "/" is typed into the input: the footer does not offer it there
        if action in VERIFY_TABS and self.query(TabbedContent):
            return self.query_one(TabbedContent).active in VERIFY_TABS[action]
        return True

    def review(self, pending: PendingRequest) -> None:
        def decided(future: Future[Decision]) -> None:
            pending.decide(future.result())
            for panel in self.query(ApprovalsPanel):  # none when the app closed first
                panel.remove(pending.request.id)

        source = f"headless run, pid {pending.peer_pid}"
        self.ask_approval(pending.request, source).add_done_callback(decided)
        self._show_banner()

    def on_approvals_panel_review(self, message: ApprovalsPanel.Review) -> None:
        self.review(message.pending)

    def on_denials_view_applied(self, message: DenialsView.Applied) -> None:
        self.apply_workspace(message.workspace, f"Applied to {message.edit.path}")

    def on_run_panel_replanned(self, message: RunPanel.Replanned) -> None:
        self.apply_workspace(message.workspace, "Re-planned before the launch")

    def on_run_panel_finished(self, message: RunPanel.Finished) -> None:
        for panel in self.query(ApprovalsPanel):  # none while the app is closing
            panel.reload_audit()

    # --- re-planning ---------------------------------------------------------------------------

    def apply_workspace(self, workspace: Workspace, why: str) -> None:
        """Show a new workspace (the bound panels follow) and say what changed."""
        old, self.workspace = self.workspace, workspace
        changes = describe_changes(old, workspace)
        if changes:
            shown = changes[:8] + ([f"... and {len(changes) - 8} more"] if len(changes) > 8 else [])
            severity = "error" if workspace.config_error else "information"
            self.notify("\n".join(shown), title=why, severity=severity, timeout=6)

    def replan(self, why: str, options: Options | None = None) -> None:
        opts = self.workspace.options if options is None else options
        self.apply_workspace(reload_workspace(self.workspace, opts), why)

    # --- live reload -------------------------------------------------------------------------

    def _relevant(self, path: str) -> bool:
        """Does a changed path possibly change the plan (config, sensitive or protected name)?"""
        if path == str(self.workspace.options.config_file):
            return True
        name = os.path.basename(path)
        if name in PROTECTED_NAMES:
            return True
        rel = os.path.relpath(path, self.workspace.plan.cwd)
        return any(fnmatch.fnmatch(name, g) or fnmatch.fnmatch(rel, g.lstrip("/"))
                   for g in self.workspace.plan.policy.sensitive_paths)

    @work(thread=True, exclusive=True, group="watch", name="file watcher", exit_on_error=False)
    def _watch(self) -> None:
        from watchfiles import watch

        config = str(self.workspace.options.config_file)
        cwd = self.workspace.plan.cwd
        paths = [cwd]
        if os.path.isdir(os.path.dirname(config)):
            paths.append(os.path.dirname(config))

        def wanted(_change: object, path: str) -> bool:
            return path in (config, cwd) or path.startswith(cwd + "/")

        try:
            for changes in watch(*paths, watch_filter=wanted, stop_event=self.unmounted,
                                 debounce=150, step=50, rust_timeout=200,
                                 yield_on_timeout=False, raise_interrupt=False):
                if self.unmounted.is_set() or not self.post_message(
                        FilesChanged(sorted({p for _, p in changes}))):
                    break
        finally:
            self.watch_stopped.set()

    def on_files_changed(self, message: FilesChanged) -> None:
        changed = message.paths
        # The launcher's placeholders for missing protected paths come and go with each run.
        blocked = {op.dest for op in self.workspace.plan.ops
                   if op.kind in (OpKind.BLOCK_MISSING, OpKind.BLOCK_MISSING_DIR)}
        changed = [p for p in changed if (p not in blocked or not _placeholder_like(p))
                   and not os.path.basename(p).startswith(SCRATCH_NAME)]  # verify's probes
        if not changed:
            return
        if any(self._relevant(p) for p in changed):
            self.replan("Reloaded: " + ", ".join(os.path.basename(p) for p in changed[:3]))
        else:
            self.query_one(MountTree).reload()  # new or removed files, the same plan

    # --- actions -----------------------------------------------------------------------------

    def action_show_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab
        self._focus_tab(tab)

    def _focus_tab(self, tab: str) -> None:
        widget = self.query_one(TAB_FOCUS[tab])
        if tab == "seccomp" and not widget.display:
            widget = self.query_one("#seccomp-raw")
        widget.focus()

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        self.refresh_bindings()  # the footer follows the panel
        if event.pane.id in TAB_FOCUS and not self.query_one(f"#{event.pane.id}").has_focus_within:
            self._focus_tab(event.pane.id)

    def action_find_path(self) -> None:
        self.action_show_tab("tree")
        self.query_one(PathFilter).open()

    def on_jump_to_path(self, message: JumpToPath) -> None:
        self.action_show_tab("tree")
        tree = self.query_one(MountTree)
        path = os.path.normpath(os.path.join(self.workspace.plan.cwd,
                                             os.path.expanduser(message.path)))
        if not tree.reveal(path):
            self.notify(f"{path} is not on the host; showing what the plan says about it",
                        severity="warning")
        self.query_one(NodeDetails).show(path)
        tree.focus()

    def on_mount_tree_path_highlighted(self, message: MountTree.PathHighlighted) -> None:
        for details in self.query(NodeDetails):  # none once the app is closing
            details.show(message.path)

    # --- verify ------------------------------------------------------------------------------

    def action_verify_node(self) -> None:
        node = self.query_one(MountTree).cursor_node
        if node is None or node.data is None:
            self.notify("select a path in the mount tree first", severity="warning")
            return
        self.start_verify(node_paths(node.data.path), node.data.path)

    def action_verify_plan(self) -> None:
        self.start_verify(None, f"whole plan (+{VERIFY_SAMPLE} random paths)")

    def start_verify(self, paths: list[str] | None, scope: str) -> None:
        """Probe `paths` (None: the plan's interesting paths and a sample) in one launch."""
        if self.verifying:
            self.notify("a verify run is still going", severity="warning")
            return
        self.verifying = True
        self.query_one(VerifyResults).loading = True
        self.notify(f"{scope}: probing in a real sandbox ...", title="Verifying", timeout=3)
        self._verify(self.workspace, paths, scope)

    @work(thread=True, exclusive=True, group="verify", name="verify", exit_on_error=False)
    def _verify(self, workspace: Workspace, paths: list[str] | None, scope: str) -> None:
        try:
            report = verify(workspace.plan, paths, sample=VERIFY_SAMPLE, caps=workspace.caps)
        except VerifyError as exc:
            self.post_message(VerifyFinished(workspace, scope, None, exc.message))
            return
        self.post_message(VerifyFinished(workspace, scope, report))

    def on_verify_finished(self, message: VerifyFinished) -> None:
        self.verifying = False
        panel = self.query_one(VerifyResults)
        panel.loading = False
        if message.report is None:
            self.notify(f"{message.error}", title=f"Verify failed: {message.scope}",
                        severity="error", timeout=10)
            return
        report = message.report
        panel.show(report, message.scope)
        if message.workspace.plan is self.workspace.plan:
            self.query_one(MountTree).set_marks(report.path_status())
            note = "(8: Verify lists every probe)"
        else:
            note = "(the plan changed meanwhile: nodes not marked; 8: Verify lists the probes)"
        self.notify(f"{summary_line(report)}\n{note}", title=f"Verified: {message.scope}",
                    severity="information" if report.ok else "error", timeout=8)

    # --- switchers ---------------------------------------------------------------------------

    def action_pick_profile(self) -> None:
        ws = self.workspace
        if not ws.profiles:
            self.notify(f"no [profiles.NAME] in {ws.options.config_file}", severity="warning")
            return

        def chosen(name: str | None) -> None:
            if name is not None:
                self.switch_profile(None if name == NO_PROFILE else name)

        self.push_screen(ProfilePicker(ws.profiles, ws.plan.policy.profile), chosen)

    def switch_profile(self, profile: str | None) -> None:
        self.replan(f"Profile: {profile or '-'}", replace(self.workspace.options, profile=profile))

    def action_toggle_pipeline(self) -> None:
        legacy = not self.workspace.plan.policy.use_legacy_landlock
        self.set_pipeline(legacy)

    def set_pipeline(self, legacy: bool) -> None:
        """Re-plan for the pipeline asked for; when another one runs, say which and why."""
        name = "legacy Landlock" if legacy else "bubblewrap"
        self.replan(f"Pipeline: {name}", self.workspace.options.with_legacy(legacy))
        choice = self.workspace.choice
        if legacy and choice.pipeline is not Pipeline.LANDLOCK:
            self.notify(f"{self.workspace.pipeline} runs instead: {choice.reason}",
                        title="Pipeline: legacy Landlock not switched", severity="warning",
                        timeout=10)

    def action_toggle_theme(self) -> None:
        self.theme = "textual-light" if self.current_theme.dark else "textual-dark"

    def action_help(self) -> None:
        sections: list[tuple[str, list[Binding]]] = [("app", list(self.BINDINGS))]
        seen: set[type] = set()
        for widget in self.screen.query("*"):
            cls = type(widget)
            own = [b for b in cls.__dict__.get("BINDINGS", []) if isinstance(b, Binding)]
            if own and cls not in seen and cls.__module__.startswith("sandboxtui"):
                seen.add(cls)
                sections.append((help_title(cls), own))
        self.push_screen(HelpScreen(sections))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """Textual's commands (its Screenshot replaced: its notification is markup, which this
        app's notify() shows as text) and the app's, each naming its key where it has one."""
        for command in super().get_system_commands(screen):
            if command.title == "Screenshot":
                command = SystemCommand("Screenshot", "save an SVG of the screen in the current "
                                        "directory", self._save_screenshot)
            yield command
        for tab, label, key in TABS:
            yield SystemCommand(f"Show {label}", f"switch to the {label} panel · key {key}",
                                lambda tab=tab: self.action_show_tab(tab))
        yield SystemCommand("Find path", "jump to a path in the mount tree · key /",
                            self.action_find_path)
        yield SystemCommand("Verify node", "probe the selected tree node and its children "
                            "in a real sandbox · key v", self.action_verify_node)
        yield SystemCommand("Verify whole plan", "probe the plan's interesting paths and a "
                            "random sample in a real sandbox · key V", self.action_verify_plan)
        yield SystemCommand("Pipeline: bubblewrap", "re-plan with the bubblewrap pipeline",
                            lambda: self.set_pipeline(False))
        yield SystemCommand("Pipeline: legacy Landlock",
                            "re-plan with features.use_legacy_landlock = true",
                            lambda: self.set_pipeline(True))
        if self.workspace.plan.policy.agent is not None:
            strict = not self.workspace.options.strict
            yield SystemCommand(f"Strict: {'on' if strict else 'off'}",
                                "sandboxtui's stricter defaults on top of the agent's policy"
                                if strict else "the agent's own semantics only",
                                lambda: self.replan(f"Strict: {'on' if strict else 'off'}",
                                                    replace(self.workspace.options,
                                                            strict=strict)))
        yield SystemCommand("Profile: (none)", "re-plan without a profile",
                            lambda: self.switch_profile(None))
        for name in self.workspace.profiles:
            yield SystemCommand(f"Profile: {name}", f"re-plan with [profiles.{name}]",
                                lambda name=name: self.switch_profile(name))
        yield SystemCommand("Help", "keys and the colour legend · key ?", self.action_help)

    def _save_screenshot(self) -> None:
        self.notify(os.path.abspath(self.save_screenshot()), title="Screenshot saved")


def _placeholder_like(path: str) -> bool:
    """Absent, an empty regular file or an empty directory: what the launcher leaves at a
    blocked missing path."""
    try:
        st = os.lstat(path)
        return stat.S_ISREG(st.st_mode) and st.st_size == 0 \
            or stat.S_ISDIR(st.st_mode) and not os.listdir(path)
    except OSError:
        return True


def run_app(options: Options, all_workspaces: bool = False) -> int:
    """Probe the machine, plan, run the app; a config that does not load opens it in its
    error state (`model.open_workspace`)."""
    from sandboxtui.core.agents import resolve_policy
    from sandboxtui.core.config import ConfigError
    from sandboxtui.core.diagnostics import probe
    from sandboxtui.core.policy import Policy

    try:
        system_bwrap = resolve_policy(
            cwd=options.cwd, config_path=options.config_path, profile=options.profile,
            sandbox_mode=options.sandbox_mode, overrides=options.overrides,
            codex=options.codex, claude=options.claude, strict=options.strict).system_bwrap
    except ConfigError:
        system_bwrap = Policy().system_bwrap  # the defaults': the app shows the error
    workspace = open_workspace(options, probe(system_bwrap))
    # The modules and the plan (with its scan) live as long as the app: the cyclic collector
    # stops walking them, whose full passes over a large workspace's plan stalled scrolling.
    gc.freeze()
    return SandboxApp(workspace, socket_dir=default_socket_dir(),
                      all_workspaces=all_workspaces).run() or 0
