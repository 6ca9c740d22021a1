"""Every resolved setting with its provenance (default, file:line, profile, `-c`)."""

from __future__ import annotations

from textual.widgets import DataTable

from sandboxtui.core.config import settings_table
from sandboxtui.widgets.state import PlanChanged, Workspace


class SettingsTable(DataTable[str]):
    """`core.config.settings_table(policy)`, plus the options the session was opened with."""

    def __init__(self, workspace: Workspace, **kwargs: object) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)  # type: ignore[arg-type]
        self.workspace = workspace

    def on_mount(self) -> None:
        self.add_columns("key", "value", "provenance")
        self.fill()

    def on_plan_changed(self, message: PlanChanged) -> None:
        self.workspace = message.workspace
        self.fill()

    def fill(self) -> None:
        ws = self.workspace
        self.clear()
        opts = ws.options
        self.add_row("(workspace)", ws.plan.cwd, "--cwd or the current directory")
        self.add_row("(config file)", str(opts.config_file),
                     "--config" if opts.config_path else "default location")
        self.add_row("(pipeline)", ws.pipeline, ws.choice.reason)
        for key, value, provenance in settings_table(ws.plan.policy):
            self.add_row(key, value, provenance)
