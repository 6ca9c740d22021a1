"""The help screen: every key binding (from the live binding tables) and the colour legend."""

from __future__ import annotations

import re
from collections.abc import Callable

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from sandboxtui.widgets.mount_tree import BADGES, Category

LEGEND = {
    Category.RW: "writable inside the sandbox (bind mount)",
    Category.RO: "readable, not writable (read-only bind)",
    Category.DENIED: "masked: empty mode-000 file or tmpfs; content never visible",
    Category.MASKED: "protected name that does not exist: creation is blocked",
    Category.TMPFS: "outside the readable roots: not present in the empty root",
    Category.PROC: "a fresh /proc of the sandbox's PID namespace",
    Category.DEV: "a minimal private /dev",
    Category.UNSANDBOXED: "danger-full-access: no sandbox at all",
}


def help_title(cls: type) -> str:
    """A panel's name as users know it: its HELP_TITLE, else its class name in words
    (MountTree -> mount tree)."""
    title = getattr(cls, "HELP_TITLE", None)
    if isinstance(title, str):
        return title
    return re.sub(r"(?<=[a-z])(?=[A-Z])", " ", cls.__name__).lower()


def binding_rows(sections: list[tuple[str, list[Binding]]],
                 key_display: Callable[[Binding], str]) -> Table:
    table = Table(box=None, padding=(0, 2), expand=True)
    table.add_column("where", style="dim", no_wrap=True)
    table.add_column("key", style="bold", no_wrap=True)
    table.add_column("action")
    for where, bindings in sections:
        for b in bindings:
            if b.description:  # the footer's word, and the tooltip's sentence where it has one
                table.add_row(where, key_display(b),
                              f"{b.description}: {b.tooltip}" if b.tooltip else b.description)
    return table


class HelpScreen(ModalScreen[None]):
    """Opened with `?` or F1; closed with escape, `q` or `?`."""

    BINDINGS = [
        Binding("escape,q,question_mark,f1", "dismiss", "Close", id="help.close"),
    ]

    def __init__(self, sections: list[tuple[str, list[Binding]]]) -> None:
        super().__init__()
        self.sections = sections

    def compose(self) -> ComposeResult:
        legend = Table(box=None, padding=(0, 2), expand=True)
        legend.add_column("badge", no_wrap=True)
        legend.add_column("meaning")
        for category, meaning in LEGEND.items():
            badge, style = BADGES[category]
            legend.add_row(Text(f"[{badge}]", style=style), meaning)
        with VerticalScroll(id="help-body") as body:
            body.border_title = "sandboxtui help"
            yield Static(Text("Keys", style="bold underline"))
            yield Static(binding_rows(self.sections, self.app.get_key_display))
            yield Static(Text("\nMount tree colours", style="bold underline"))
            yield Static(legend)
            yield Static(Text(
                "\nWhat you see is what the sandbox enforces: the tree, the details and "
                "verify come from the same plan that builds the sandbox, and the seccomp "
                "table from the filter that is loaded. Ctrl+P opens the command palette "
                "(profiles, pipeline, panels, theme).", style="italic"))
