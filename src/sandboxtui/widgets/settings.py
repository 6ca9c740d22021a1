"""Every resolved setting with its provenance (default, file:line, profile, `-c`)."""

from __future__ import annotations

import textwrap

from rich.text import Text
from textual.widgets import DataTable

from sandboxtui.core.config import settings_table, toml_text
from sandboxtui.core.terminal import inert
from sandboxtui.widgets.plan_view import PlanView


class SettingsTable(DataTable[Text | str], PlanView):
    """`core.config.settings_table(policy)`, plus the options the session was opened with."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, id=id)

    def on_mount(self) -> None:
        self.add_columns("key", "value", "provenance")

    def watch_workspace(self) -> None:
        self.fill()

    def fill(self) -> None:
        ws = self.workspace
        self.clear()
        opts = ws.options
        # Text, not str: a DataTable parses str cells as markup; paths and values are inert
        self.add_row("(workspace)", Text(inert(ws.plan.cwd)), "--cwd or the current directory")
        agent = ws.plan.policy.agent
        if agent is None:
            self.add_row("(config file)", Text(inert(str(opts.config_file))),
                         "--config" if opts.config_path else "default location")
        else:
            self.add_row(f"({agent.agent} config)", Text(inert(", ".join(agent.files)
                                                               or "(none found)")),
                         "--strict: sandboxtui's defaults on top" if agent.strict else
                         f"{agent.agent}'s semantics (ctrl+p: Strict)")
        self.add_row("(pipeline)", ws.pipeline, Text(inert(ws.choice.reason)))
        for difference in agent.differences if agent else ():
            # wrapped into rows of their own, so the value column stays narrow enough for
            # the provenance column to show at 80 columns too
            text = textwrap.wrap(f"{agent.agent} would {difference.agent_would}", 56) + \
                textwrap.wrap(f"sandboxtui adds: {difference.sandboxtui_adds} "
                              f"({difference.state})", 56)
            for n, line in enumerate(text):
                self.add_row("" if n else "(difference)", Text(inert(line)), "")
        for key, value, provenance in settings_table(ws.plan.policy):
            self.add_row(*(Text(inert(cell)) for cell in (key, toml_text(value), provenance)))
        for n, (key, where) in enumerate(agent.ignored if agent else ()):
            self.add_row("" if n else "(not sandbox settings (ignored))", Text(inert(key)),
                         Text(inert(where)))
