"""A failed run in the run panel names the refused path's access and rule (from `explain()`),
and points at `sandboxtui trace` (issue 14, item 5)."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input, Log
from tui_support import SIZE, demo_at, make_app, real_caps

from sandboxtui.widgets.run_panel import RunPanel

pytestmark = pytest.mark.anyio


async def test_a_failed_run_explains_the_refused_path(tmp_path: Path) -> None:
    ws, config = demo_at(tmp_path / "demo")
    app = make_app(ws, config, tmp_path, caps=real_caps())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("6")
        app.query_one("#run-input", Input).value = "sh -c 'echo x > /etc/sandboxtui-hint'"
        await pilot.press("enter")
        panel = app.query_one(RunPanel)
        for _ in range(200):
            if panel.records:
                break
            await pilot.pause(0.05)
        await pilot.pause(0.3)
        assert panel.records[-1].exit_code == 2
        shown = "\n".join(app.query_one("#run-output", Log).lines)
        assert "Read-only file system" in shown
        assert ("sandboxtui: /etc/sandboxtui-hint is ro in this sandbox: read access: full "
                "(read-only bind of /) [default]") in shown
        assert "sandboxtui trace" in shown
