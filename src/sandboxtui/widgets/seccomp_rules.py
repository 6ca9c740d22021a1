"""The seccomp rules: the table from the very filter object that is compiled and loaded.

`core.seccomp.filter_for(policy)` is what the launcher compiles; this panel renders its
`rule_table()` (allowed exceptions listed with their reasons) and, on `r`, libseccomp's
pseudo-filter text of the same program. When a reload changes the filter (the network
switched on, say), the rows that are new since the last one shown are marked, and the summary
counts what was added and removed.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Label, TextArea

from sandboxtui.core.seccomp import Action, pseudo_filter, rule_table
from sandboxtui.widgets.plan_view import PlanView


class SeccompRules(Vertical, PlanView):
    """Rule table, or the raw pseudo-filter (`r` toggles)."""

    BINDINGS = [Binding("r", "toggle_raw", "Raw filter", id="seccomp.raw")]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.raw = False
        self._shown: list[dict[str, str | None]] | None = None  # the rows last shown

    def compose(self) -> ComposeResult:
        yield Label(id="seccomp-summary")
        table: DataTable[Text | str] = DataTable(id="seccomp-table", cursor_type="row",
                                                 zebra_stripes=True)
        yield table
        yield TextArea(id="seccomp-raw", read_only=True, show_line_numbers=True)

    def on_mount(self) -> None:
        self.query_one("#seccomp-table", DataTable).add_columns(
            "syscall", "condition", "action", "errno", "reason", "since reload")

    def watch_workspace(self) -> None:
        self.fill()

    def fill(self) -> None:
        table = self.query_one("#seccomp-table", DataTable)
        raw = self.query_one("#seccomp-raw", TextArea)
        table.clear()
        flt = self.workspace.choice.seccomp_filter(self.workspace.plan.policy)
        summary = self.query_one("#seccomp-summary", Label)
        if self.workspace.plan.unsandboxed:
            summary.update(Text("danger-full-access: no sandbox, no filter", style="bold yellow"))
            raw.text = ""
            table.display = raw.display = False
            return
        rows = rule_table(flt)
        before = self._shown
        self._shown = rows
        added = [] if before is None else [r for r in rows if r not in before]
        removed = 0 if before is None else sum(r not in rows for r in before)
        changed = (f"  ·  since the last reload: {len(added)} rows new (marked), {removed} gone"
                   if added or removed else "")
        summary.update(Text.assemble(
            ("filter ", "bold"), flt.name, "  ·  default allow; listed syscalls fail with their "
            "errno; ", ("allow", "green"), " rows are deliberate exceptions; ",
            ("gate", "yellow"), " rows the launcher decides call by call",
            (changed, "bold yellow"), "  ·  ", ("r", "bold"), " raw pseudo-filter"))
        for row in rows:
            allowed = row["action"] == Action.ALLOW.value
            style = {Action.ALLOW.value: "green", Action.GATE.value: "yellow"}.get(
                row["action"], "red")
            table.add_row(row["syscall"], row["condition"], Text(row["action"], style=style),
                          row["errno"] or "-", Text(row["reason"], style="green" if allowed
                                                    and row["syscall"] != "*" else ""),
                          Text("new", style="bold yellow") if row in added else "")
        raw.text = pseudo_filter(flt) if self.raw else ""
        table.display = not self.raw
        raw.display = self.raw

    def action_toggle_raw(self) -> None:
        self.raw = not self.raw
        self.fill()
        (self.query_one("#seccomp-raw") if self.raw else self.query_one("#seccomp-table")).focus()
