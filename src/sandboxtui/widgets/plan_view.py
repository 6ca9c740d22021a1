"""What every plan panel shares: the workspace it renders, bound to the app's.

The app composes each panel with `.data_bind(SandboxApp.workspace)`: a re-plan sets the
app's `workspace`, Textual sets the panel's too, and the panel's `watch_workspace` renders
it. The binding delivers the first value just after the panel is mounted; before that
(`compose`, `on_mount`) the panel reads the app's.
"""

from __future__ import annotations

from textual.message import Message
from textual.reactive import Initialize, var

from sandboxtui.model import Workspace


class JumpToPath(Message):
    """Show `path` in the mount tree (relative to the workspace, `~` or absolute): from the
    find box, or enter on a carveout."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path


class PlanView:
    """Mixin for a panel that renders the workspace; list it after the widget class (Textual
    takes a widget's CSS type from its first base)."""

    workspace: var[Workspace] = var(Initialize(lambda view: view.app.workspace), init=False)
