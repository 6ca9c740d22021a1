"""Details of the selected path: access, the deciding rule with provenance, the mount ops."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from sandboxtui.core.plan import OpKind
from sandboxtui.core.terminal import inert
from sandboxtui.widgets.mount_tree import BADGES, classify
from sandboxtui.widgets.plan_view import PlanView

_EFFECT = {
    OpKind.DENY_FILE: "inside: an empty file with mode 000 (reads fail: Permission denied)",
    OpKind.DENY_DIR: "inside: an empty tmpfs with no permissions (Permission denied)",
    OpKind.BLOCK_MISSING: "inside: an empty mode-000 file occupies the name, so it cannot "
                          "be created",
    OpKind.BLOCK_MISSING_DIR: "inside: an empty read-only directory occupies the name: it "
                              "lists nothing, and nothing can be created in it or in its place",
}


class NodeDetails(VerticalScroll, PlanView):
    """Renders `MountPlan.explain(path)` for the highlighted tree node or a typed path."""

    BORDER_TITLE = "Details"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.path: str | None = None  # None: the workspace root

    def compose(self) -> ComposeResult:
        yield Static(id="details-body")

    def watch_workspace(self) -> None:
        self.show(self.path or self.workspace.plan.cwd)

    def show(self, path: str) -> None:
        self.path = path
        self.query_one("#details-body", Static).update(self.render_explanation(path))

    def render_explanation(self, path: str) -> Group:
        plan = self.workspace.plan
        ex = plan.explain(path)
        category = classify(plan, ex.resolved, ex.rule)
        badge, style = BADGES[category]
        head = Table.grid(padding=(0, 1))
        head.add_column(style="bold", no_wrap=True)
        head.add_column(overflow="fold")
        head.add_row("path", Text(inert(ex.path)))  # Text: a str cell would be parsed as markup
        if ex.resolved != ex.path:
            head.add_row("resolved", Text(inert(ex.resolved)))
        shown = ex.access.value if badge == ex.access.value else f"{ex.access.value}  {badge}"
        head.add_row("access", Text(shown, style=style))
        head.add_row("rule", Text(inert(ex.rule.reason)))
        head.add_row("rule path", Text(inert(ex.rule.path) + (" (missing on host)"
                                                              if ex.rule.missing else "")))
        head.add_row("kind", ex.rule.kind.value)
        head.add_row("provenance", Text(inert(str(ex.rule.provenance))))
        ops = Table(title="mount operations (in order)", title_justify="left", expand=True,
                    show_edge=False, box=None, padding=(0, 1))
        ops.add_column("#", justify="right", style="dim")
        ops.add_column("bwrap", overflow="fold")
        for op in ex.ops:
            index = plan.ops.index(op) + 1
            ops.add_row(str(index), Text(inert(op.describe())))
        parts: list[RenderableType] = [head, Text(""), ops]
        effect = next((_EFFECT[op.kind] for op in ex.ops
                       if op.kind in _EFFECT and op.dest == ex.resolved), None)
        if effect:
            parts += [Text(""), Text(effect, style=style)]
        return Group(*parts)
