"""The confirmation before a trace suggestion is written to the config file: the exact change
(a unified diff of the file), where it goes (top level or profile), and what it widens.
`y` writes it, `n` or escape leaves the file alone; the default focus is Cancel, so a stray
enter writes nothing."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

from sandboxtui.core.config_edit import ConfigEdit
from sandboxtui.core.terminal import inert


def diff_text(edit: ConfigEdit) -> Text:
    """The diff, coloured by line (every line inert: it quotes paths from the trace)."""
    out = Text()
    for line in edit.diff().splitlines():
        style = ("bold" if line.startswith(("---", "+++")) else "green" if line[:1] == "+"
                 else "red" if line[:1] == "-" else "dim" if line.startswith("@@") else "")
        out.append(inert(line) + "\n", style=style)
    return out


class ApplySuggestion(ModalScreen[ConfigEdit | None]):
    """Write this change to the config file? Dismissed with the edit (write it) or None."""

    DEFAULT_CSS = """
    ApplySuggestion { align: center middle; }
    ApplySuggestion #apply-box {
        width: 90%;
        max-width: 110;
        height: auto;
        max-height: 90%;
        border: thick $warning;
        background: $panel;
        padding: 0 1;
    }
    ApplySuggestion #apply-diff { height: auto; max-height: 16; margin: 1 0; }
    ApplySuggestion #apply-buttons { height: auto; align: center middle; }
    ApplySuggestion #apply-buttons Button { margin: 0 1; }
    """
    BINDINGS = [
        Binding("y", "write", "Write it", id="apply.write"),
        Binding("n,escape", "cancel", "Cancel", id="apply.cancel"),
    ]

    def __init__(self, edit: ConfigEdit) -> None:
        super().__init__()
        self.edit = edit

    def compose(self) -> ComposeResult:
        edit = self.edit
        new = " (a new file)" if edit.before is None else ""
        with Vertical(id="apply-box"):
            yield Label(Text.assemble(("Apply to the config file? ", "bold"),
                                      inert(f"{edit.path}{new}, {edit.key} at {edit.where}")))
            with VerticalScroll(id="apply-diff"):
                yield Static(diff_text(edit))
            yield Static(Text.assemble(("widens: ", "bold"), inert(edit.widens)))
            yield Static(Text("comments and layout are kept; live reload re-plans after the "
                              "write", style="dim"))
            with Horizontal(id="apply-buttons"):
                yield Button("Write it [y]", id="apply-write", variant="warning")
                yield Button("Cancel [n]", id="apply-cancel", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#apply-cancel", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(self.edit if event.button.id == "apply-write" else None)

    def action_write(self) -> None:
        self.dismiss(self.edit)

    def action_cancel(self) -> None:
        self.dismiss(None)
