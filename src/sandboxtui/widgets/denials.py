"""The Denials view: what a traced run was refused, live, beside the run panel's output.

The run panel (trace on: ctrl+r) sends it the analysis of the trace so far (`Report`): the
same `TraceReport` and the same order as `sandboxtui trace` prints, the sandbox's refusals by
count, then those of the host's own file modes. The highlighted denial is explained below
the table: operation, path or address, errno, access, deciding rule with provenance, the
suggested change and what it widens. Enter shows the path in the mount tree; `a` applies the
suggestion to the config file after a confirmation that shows the exact change
(core/config_edit.py); where the core suggests nothing, nothing is offered. After a re-plan
(a config change, an applied suggestion) each denial the new plan allows says so; `r` runs the
command again.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import DataTable, Label, Static

from sandboxtui.core.config_edit import (
    ConfigEdit,
    ConfigEditError,
    Resolution,
    prepare_edit,
    write_edit,
)
from sandboxtui.core.terminal import inert
from sandboxtui.core.trace import Denial, TraceReport, allowed_now
from sandboxtui.model import Workspace, reload_workspace
from sandboxtui.widgets.apply_suggestion import ApplySuggestion
from sandboxtui.widgets.plan_view import JumpToPath, PlanView

NOW_ALLOWED = "now allowed (re-planned)"


class DenialsView(Vertical, PlanView):
    """The refused operations of the current (or last) traced run, explained."""

    DEFAULT_CSS = """
    DenialsView {
        width: 1fr;
        height: 1fr;
        border: round $error 50%;
        display: none;
    }
    DenialsView #denials-title { height: 1; }
    DenialsView #denials-table { height: 1fr; min-height: 3; }
    DenialsView #denials-detail { height: auto; max-height: 12; }
    """
    BINDINGS = [
        Binding("a", "apply", "Apply suggestion", id="denials.apply"),
        Binding("r", "rerun", "Run again", id="denials.rerun"),
    ]

    class Report(Message):
        """The analysis of the trace so far (`running`) or of the whole run (posted from the
        run panel's threads)."""

        bubble = False

        def __init__(self, report: TraceReport, command: str, running: bool) -> None:
            super().__init__()
            self.report = report
            self.command = command
            self.running = running

    class Applied(Message):
        """A suggestion was written to the config file: the app shows the new plan."""

        def __init__(self, workspace: Workspace, edit: ConfigEdit) -> None:
            super().__init__()
            self.workspace = workspace
            self.edit = edit

    class Rerun(Message):
        """`r`: run the traced command again (after a change to the config, say)."""

        def __init__(self, command: str) -> None:
            super().__init__()
            self.command = command

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.report: TraceReport | None = None
        self.command = ""
        self.running = False
        self.rows: list[Denial] = []  # in table order: the sandbox's, then the host's

    def compose(self) -> ComposeResult:
        yield Label(id="denials-title")
        yield DataTable(id="denials-table", cursor_type="row", zebra_stripes=True)
        yield Static(id="denials-detail")

    def on_mount(self) -> None:
        # the short columns first: a long path must not push them out of a narrow view
        self.query_one(DataTable).add_columns("count", "op", "errno", "access", "now",
                                              "path or address")
        self._fill()

    def on_denials_view_report(self, message: Report) -> None:
        self.report, self.command, self.running = message.report, message.command, message.running
        self._fill()

    def watch_workspace(self) -> None:
        self._fill()

    def selected(self) -> Denial | None:
        table = self.query_one(DataTable)
        return self.rows[table.cursor_row] if 0 <= table.cursor_row < len(self.rows) else None

    def now_allowed(self, denial: Denial) -> bool:
        return allowed_now(denial, self.workspace.plan)

    def _fill(self) -> None:
        report = self.report
        self.rows = [*report.denials, *report.host] if report else []
        self.set_class(not self.rows, "-empty")
        table = self.query_one(DataTable)
        row = table.cursor_row
        table.clear()
        for d in self.rows:
            style = "dim" if d.host else "bold red"
            table.add_row(f"x{d.count}", d.op, d.errno,
                          Text("host" if d.host else d.access, style=style),
                          Text(NOW_ALLOWED, style="bold green") if self.now_allowed(d) else "",
                          Text(inert(d.path)))
        if self.rows:
            table.move_cursor(row=min(max(row, 0), len(self.rows) - 1))
        self.query_one("#denials-title", Label).update(self._title())
        self._detail()

    def _title(self) -> Text:
        report = self.report
        if report is None:
            return Text("Denials: the next run is traced (strace); what the sandbox refuses "
                        "appears here", style="dim")
        state = "running, so far" if self.running else "finished"
        parts = [f"{len(report.denials)} refused by the sandbox"]
        if report.host:
            parts.append(f"{len(report.host)} by the host's own file modes")
        if report.not_analysed:
            parts.append(f"{report.not_analysed} more not analysed")
        return Text.assemble(("Denials", "bold"), f" of {inert(self.command)} ({state}): ",
                             ", ".join(parts))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self._detail()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter: the path in the mount tree (a socket address or a syscall has none)."""
        event.stop()
        denial = self.selected()
        if denial is not None and denial.path.startswith("/") and denial.syscall != "connect":
            self.post_message(JumpToPath(denial.path))

    def _detail(self) -> None:
        d = self.selected()
        detail = self.query_one("#denials-detail", Static)
        if d is None:
            detail.update("")
            return
        text = Text.assemble((f"{d.op} {inert(d.path)}", "bold"),
                             f"  {d.errno} (x{d.count}, {d.syscall})\n",
                             f"access {d.access}: {inert(d.rule)} [{inert(d.provenance)}]\n")
        s = d.suggestion
        if self.now_allowed(d):
            text.append(f"{NOW_ALLOWED}: the current config allows it\n", style="bold green")
        elif d.host:
            text.append("host permissions: the plan allows it; the host's file modes refuse "
                        "it\n", style="dim")
        elif s is None or s.flag is None:
            text.append(f"no change suggested: {inert(s.widens) if s else 'none'}\n",
                        style="yellow")
        else:
            text.append(f"suggestion: {inert(s.flag)}\n  {inert(s.toml or '')}\n",
                        style="bold")
            text.append(f"widens: {inert(s.widens)}\n")
            text.append("a: apply it to the config file (the change is shown first); "
                        "r: run again\n", style="dim")
        detail.update(text)

    def action_rerun(self) -> None:
        if self.command and not self.running:
            self.post_message(self.Rerun(self.command))

    # --- applying a suggestion -----------------------------------------------------------------

    def action_apply(self) -> None:
        """`a`: the selected denial's suggestion, shown as the exact change to the config file,
        written after confirmation. Nothing is offered where the core suggests nothing."""
        d = self.selected()
        if d is None:
            self.app.notify("no denial selected", severity="warning")
            return
        s = d.suggestion
        if d.host or s is None or s.flag is None:
            why = ("the host's own file modes refused it, not the plan" if d.host else
                   s.widens if s else "no change suggested")
            self.app.notify(f"nothing to apply: {why}", severity="warning")
            return
        if self.now_allowed(d):
            self.app.notify(f"{d.path}: the current config allows it already")
            return
        options = self.workspace.options
        if options.codex is not None or options.claude is not None:
            agent = "Codex's config" if options.codex is not None else "Claude Code's settings"
            self.app.notify(f"the policy comes from {agent} ({options.config_file}): "
                            f"sandboxtui does not edit an agent's file; run with {s.flag}",
                            title="Cannot apply the suggestion", severity="warning",
                            timeout=10)
            return
        try:
            edit = prepare_edit(options.config_file, s, Resolution(
                options.profile, options.sandbox_mode, options.overrides))
        except ConfigEditError as exc:
            self.app.notify(str(exc), title="Cannot apply the suggestion", severity="error",
                            timeout=10)
            return
        self.app.push_screen(ApplySuggestion(edit), self._confirmed)

    def _confirmed(self, edit: ConfigEdit | None) -> None:
        if edit is None:
            return
        try:
            write_edit(edit)
        except (ConfigEditError, OSError) as exc:
            self.app.notify(str(exc), title="Not written", severity="error", timeout=10)
            return
        ws = self.workspace
        self.post_message(self.Applied(reload_workspace(ws, ws.options), edit))
