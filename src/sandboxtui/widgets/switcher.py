"""A keyboard-first picker for the profile (from the config's `[profiles.NAME]`)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option

NO_PROFILE = "(no profile)"


class ProfilePicker(ModalScreen[str | None]):
    """Dismisses with the chosen profile name, `NO_PROFILE`, or None when cancelled."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="profile.cancel")]

    def __init__(self, profiles: tuple[str, ...], current: str | None) -> None:
        super().__init__()
        self.profiles = profiles
        self.current = current

    def compose(self) -> ComposeResult:
        options = [Option(NO_PROFILE, id=NO_PROFILE)]
        options += [Option(name, id=name) for name in self.profiles]
        with Vertical(id="picker"):
            yield Label("Switch profile (enter to apply, escape to cancel)")
            yield OptionList(*options, id="profile-options")

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        names = [NO_PROFILE, *self.profiles]
        options.highlighted = names.index(self.current) if self.current in names else 0

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
