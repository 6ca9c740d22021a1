"""The config's error state, above every panel: while the config does not load, every view
shows a plan that is not this config's (the last one that loaded, or at start sandboxtui's
defaults) and launches are refused; the banner says so, with the error (file:line, and the key
it most likely meant), until the config loads again."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from sandboxtui.core.terminal import inert
from sandboxtui.widgets.plan_view import PlanView

STALE = ("stale: every view shows the last plan that loaded (at start: sandboxtui's "
         "defaults), not this config; launches are refused until it loads")


class ConfigBanner(Static, PlanView):
    """Shown while the workspace carries a config error."""

    def watch_workspace(self) -> None:
        error = self.workspace.config_error
        self.set_class(error is not None, "-shown")
        if error is not None:
            self.update(Text.assemble(("CONFIG ERROR", "bold reverse"), " ",
                                      inert(error, lines=True), "\n", (STALE, "italic")))
