"""The `/` filter: type a path (relative to the workspace, `~` or absolute) to jump to it."""

from __future__ import annotations

import os

from textual.binding import Binding
from textual.suggester import Suggester
from textual.widgets import Input

from sandboxtui.model import Workspace
from sandboxtui.widgets.plan_view import JumpToPath, PlanView


class PathSuggester(Suggester):
    """Completes the last path component from the real directory listing."""

    def __init__(self, cwd: str) -> None:
        super().__init__(use_cache=False, case_sensitive=True)
        self.cwd = cwd

    async def get_suggestion(self, value: str) -> str | None:
        full = os.path.join(self.cwd, os.path.expanduser(value))
        directory, prefix = os.path.split(full)
        try:
            with os.scandir(directory) as it:
                names = sorted(e.name for e in it if e.name.startswith(prefix))
        except OSError:
            return None
        if not names or not prefix and not value.endswith("/"):
            return None
        return value + names[0][len(prefix):]


class PathFilter(Input, PlanView):
    """Hidden until `/`; enter jumps, escape closes."""

    HELP_TITLE = "find box"

    BINDINGS = [Binding("escape", "close", "Close", id="find.close")]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(placeholder="path to inspect, e.g. .env or /etc/passwd (-> completes)",
                         id=id)
        self.display = False

    def watch_workspace(self, workspace: Workspace) -> None:
        self.suggester = PathSuggester(workspace.plan.cwd)

    def open(self) -> None:
        self.display = True
        self.value = ""
        self.focus()

    def action_close(self) -> None:
        self.display = False
        self.screen.focus_next()

    async def action_submit(self) -> None:
        path = self.value.strip()
        self.display = False
        if path:
            self.post_message(JumpToPath(path))
