"""The verify panel: what the kernel answered to each probe, beside what the plan predicted.

It only shows a `VerifyReport` made by `core.verify` (the app runs the probes in a thread
worker). Mismatches come first: each one is a bug in the picture. A re-plan keeps the list
but says it is stale, since the probes answered for the previous plan.
"""

from __future__ import annotations

import os

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Label

from sandboxtui.core.terminal import inert
from sandboxtui.core.verify import ProbeResult, VerifyReport
from sandboxtui.model import Workspace
from sandboxtui.widgets.plan_view import JumpToPath, PlanView

# Row order and style per `ProbeResult.status`: what needs attention first.
_STATUS_ORDER = {"MISMATCH": 0, "LEFTOVER": 0, "host changed": 1, "expected (unenforced)": 2,
                 "ok": 3}
_STATUS_STYLE = {"MISMATCH": "bold white on red", "LEFTOVER": "bold white on red",
                 "host changed": "yellow", "expected (unenforced)": "bold yellow",
                 "ok": "green"}


def summary_line(report: VerifyReport) -> str:
    """"N probes, M mismatches, K expected (unenforced)": the verdict in one line."""
    line = (f"{len(report.results)} probes, {len(report.mismatches)} mismatches, "
            f"{len(report.expected_mismatches)} expected (unenforced)")
    if report.skipped:
        line += f", {len(report.skipped)} paths skipped"
    return line


def ordered(report: VerifyReport) -> list[ProbeResult]:
    """Mismatches first, then the rest in probe order."""
    return sorted(report.results, key=lambda r: _STATUS_ORDER.get(r.status, 0))


class VerifyResults(Vertical, PlanView):
    """Summary line, one row per probe (path, op, predicted, observed, status), and the
    prediction's reason for the highlighted row."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.report: VerifyReport | None = None
        self.rows: list[ProbeResult] = []
        self._scope = ""

    def compose(self) -> ComposeResult:
        yield Label("no verify run yet: v verifies the selected tree node, V the whole plan",
                    id="verify-summary")
        table: DataTable[Text | str] = DataTable(id="verify-table", cursor_type="row",
                                                 zebra_stripes=True)
        yield table
        yield Label(id="verify-why")

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns("path", "op", "predicted", "observed", "status")

    def watch_workspace(self, old: Workspace, new: Workspace) -> None:
        if new.plan is not old.plan and self.report is not None:
            self._summary(stale=True)

    def show(self, report: VerifyReport, scope: str) -> None:
        """List a finished verify run."""
        self.report, self._scope = report, scope
        self.rows = ordered(report)
        self._summary(stale=False)
        table = self.query_one(DataTable)
        table.clear()
        table.add_rows(self._row(r) for r in self.rows)
        self._why(0)

    def _summary(self, *, stale: bool) -> None:
        assert self.report is not None
        style = "bold red" if self.report.mismatches else "bold green"
        text = Text.assemble((summary_line(self.report), style),
                             (f"  ·  {self._scope} · {self.report.pipeline.value} pipeline · "
                              f"{self.report.launches} launch"
                              f"{'es' if self.report.launches > 1 else ''}", "dim"))
        if stale:
            text.append("  ·  stale: the plan changed since", style="bold yellow")
        self.query_one("#verify-summary", Label).update(text)

    def _shown_path(self, path: str) -> str:
        cwd = self.workspace.plan.cwd
        return os.path.relpath(path, cwd) if path.startswith(cwd + "/") else path

    def _row(self, r: ProbeResult) -> tuple[Text | str, ...]:
        predicted = "allowed" if r.predicted.allowed else "denied"
        observed = "allowed" if r.observed else f"denied ({r.errno})"
        style = _STATUS_STYLE.get(r.status, "bold red")
        return (Text(inert(self._shown_path(r.probe.path))), r.probe.op, predicted,
                Text(observed, style="" if r.ok else style), Text(r.status, style=style))

    def _why(self, row: int) -> None:
        label = self.query_one("#verify-why", Label)
        if not 0 <= row < len(self.rows):
            label.update("")
            return
        r = self.rows[row]
        extra = f"  ·  left on the host: {r.leftover}" if r.leftover else ""
        label.update(Text.assemble(("predicted because: ", "dim"), inert(r.predicted.why + extra)))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self._why(event.cursor_row)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter on a probe of a path: that path in the mount tree (an address has none)."""
        event.stop()
        if 0 <= event.cursor_row < len(self.rows):
            path = self.rows[event.cursor_row].probe.path
            if path.startswith("/"):
                self.post_message(JumpToPath(path))
