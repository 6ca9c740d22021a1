"""Startup diagnostics: severity, one-line cause and remedy, most severe first."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from sandboxtui.core.diagnostics_model import Severity
from sandboxtui.core.terminal import inert
from sandboxtui.widgets.plan_view import PlanView

SEVERITY_STYLE = {
    Severity.ERROR: ("ERROR", "bold white on red"),
    Severity.WARNING: ("WARNING", "bold black on yellow"),
    Severity.INFO: ("info", "bold blue"),
}


class WarningsPanel(VerticalScroll, PlanView, can_focus=True):
    """The diagnostics of `core.diagnostics.diagnose(caps, plan)` for this machine and plan."""

    def compose(self) -> ComposeResult:
        yield Static(id="warnings-body")

    def watch_workspace(self) -> None:
        ws = self.workspace
        caps = ws.caps
        summary = Text.assemble(
            ("bwrap ", "bold"), inert(f"{caps.bwrap or 'none'} "),
            ("(system)" if caps.system_bwrap else "(vendored)", "dim"),
            ("   landlock ", "bold"),
            f"ABI {caps.landlock_abi}" if caps.landlock_abi else "absent",
            ("   seccomp ", "bold"), "available" if caps.seccomp else "unavailable",
            ("   pipeline ", "bold"), inert(f"{ws.pipeline} ({ws.choice.reason})"),
            ("   launches ", "bold"),
            ("allowed", "green") if ws.can_launch else ("REFUSED", "bold red"),
        )
        table = Table(expand=True, show_lines=True, box=None, padding=(0, 1))
        table.add_column("severity", no_wrap=True)
        table.add_column("cause", ratio=3)
        table.add_column("remedy", ratio=2)
        for d in ws.diagnostics:
            label, style = SEVERITY_STYLE[d.severity]
            table.add_row(Text(label, style=style), Text(inert(d.cause)),
                          Text(inert(d.remedy), style="italic"))
        body = Table.grid()
        body.add_row(summary)
        body.add_row(Text(""))
        body.add_row(table)
        self.query_one("#warnings-body", Static).update(body)
