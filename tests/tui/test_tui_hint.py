"""A failed run in the run panel names the refused path's access and rule (from `explain()`),
and points at the trace toggle (issue 14, item 5)."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Log
from tui_support import SIZE, demo_at, make_app, real_caps, run_in_panel

from sandboxtui.widgets.run_panel import RunPanel

pytestmark = pytest.mark.anyio


async def test_a_failed_run_explains_the_refused_path(tmp_path: Path) -> None:
    ws, config = demo_at(tmp_path / "demo")
    app = make_app(ws, config, tmp_path, caps=real_caps())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("6", "ctrl+r")  # trace off: a traced run's Denials view says it all
        assert not app.query_one(RunPanel).tracing
        record = await run_in_panel(app, pilot, "sh -c 'echo x > /etc/sandboxtui-hint'")
        assert record.exit_code == 2
        shown = "\n".join(app.query_one("#run-output", Log).lines)
        assert "Read-only file system" in shown
        assert ("sandboxtui: /etc/sandboxtui-hint is ro in this sandbox: read access: full "
                "(read-only bind of /) [default]") in shown
        assert "ctrl+r turns tracing on: run it again for every refused operation" in shown
