"""Carveouts: writable roots, protected read-only subpaths, denied and unenforced paths."""

from __future__ import annotations

import os

from rich.text import Text
from textual.widgets import DataTable

from sandboxtui.core.plan import MountPlan, Rule, RuleKind
from sandboxtui.core.policy import Access
from sandboxtui.core.terminal import inert
from sandboxtui.model import Workspace
from sandboxtui.widgets.mount_tree import short_reason
from sandboxtui.widgets.plan_view import JumpToPath, PlanView

# Distinct without colour too (NO_COLOR): bold, italic, reverse, underline, and the words.
_GROUPS = (
    ("writable", "bold green"),
    ("protected ro", "italic cyan"),
    ("read-only", "italic cyan"),
    ("denied", "bold reverse #ff8a8a"),
    ("unenforced", "bold underline reverse #ff8a8a"),
)
_STYLE = dict(_GROUPS)
RULE_WIDTH = 32


def carveout_group(rule: Rule) -> str | None:
    """Which carveout table group a plan rule belongs to (None: not a carveout)."""
    if rule.kind in (RuleKind.BASE, RuleKind.DEVICE, RuleKind.PROC, RuleKind.KERNEL,
                     RuleKind.UNSANDBOXED):
        return None
    if rule.kind is RuleKind.PROTECTED:
        return "protected ro"
    if rule.access is Access.NONE:
        return "denied"
    return "writable" if rule.access is Access.RW else "read-only"


def shown_path(path: str, cwd: str) -> str:
    """A path as the table shows it, so that the rule and provenance columns fit: beneath the
    workspace (the header names it) from `./`, beneath the home directory from `~/`."""
    home = os.path.expanduser("~")
    for base, shown in ((cwd, "."), (home, "~")):
        if path == base or path.startswith(base.rstrip("/") + "/"):
            return shown + path[len(base):]
    return path


def carveout_rows(plan: MountPlan) -> list[tuple[str, Rule]]:
    rows = [(g, r) for r in plan.rules if (g := carveout_group(r)) is not None]
    order = {g: i for i, (g, _) in enumerate(_GROUPS)}
    return sorted(rows, key=lambda row: order[row[0]])


class CarveoutsTable(DataTable[Text | str], PlanView):
    """One row per carveout rule of the plan, grouped, with its reason in short and its
    provenance (enter shows the path in the tree, with the whole reason)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, id=id)
        self.filled_for: Workspace | None = None  # rows are built when shown (10k rules cost)

    def on_mount(self) -> None:
        self.add_columns("carveout", "path", "access")
        self.add_column("rule", width=RULE_WIDTH)  # cut: the provenance stays on screen
        self.add_column("provenance")

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter on a row: that path in the mount tree."""
        event.stop()
        if event.row_key.value is not None:
            self.post_message(JumpToPath(event.row_key.value))

    def on_show(self) -> None:
        if self.filled_for is not self.workspace:
            self.fill()

    def watch_workspace(self) -> None:
        if self.is_on_screen:
            self.fill()

    def fill(self) -> None:
        self.filled_for = self.workspace
        self.clear()
        plan = self.workspace.plan
        rows: list[tuple[tuple[Text, ...], str]] = []
        for group, rule in carveout_rows(plan):
            style = _STYLE[group]
            path = inert(shown_path(rule.path, plan.cwd)) + (" (missing)" if rule.missing else "")
            rows.append(((Text(group, style=style), Text(path),
                          Text(rule.access.value, style=style), Text(inert(short_reason(rule))),
                          Text(inert(str(rule.provenance)))), rule.path))
        model = self.workspace.choice.landlock
        for rule in model.unenforced if model is not None else ():
            style = _STYLE["unenforced"]
            rows.append(((Text("unenforced", style=style),
                          Text(inert(shown_path(rule.path, plan.cwd))),
                          Text(rule.access.value, style=style),
                          Text(inert(f"legacy Landlock cannot subtract: {short_reason(rule)}")),
                          Text(inert(str(rule.provenance)))), rule.path))
        for cells, path in rows:
            # a rule's path is its key (a path may appear twice: once unenforced)
            self.add_row(*cells, key=path if path not in self.rows else None)
