"""`l` in the demo (issue 15 item 15): the demo's policy denies a directory inside the writable
workspace (`secrets = none`), which legacy Landlock cannot express (and it never confines a
root launcher): the switch says that bubblewrap still runs, and why, instead of a silent
"bubblewrap -> bubblewrap"."""

from __future__ import annotations

from pathlib import Path

import pytest
from tui_support import demo_at, make_app

pytestmark = pytest.mark.anyio


async def test_l_in_the_demo_says_why_the_pipeline_does_not_switch(tmp_path: Path) -> None:
    ws, config = demo_at(tmp_path / "demo")
    app = make_app(ws, config, tmp_path, demo=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("l")
        await pilot.pause(0.2)
        assert app.workspace.plan.policy.use_legacy_landlock
        assert app.workspace.pipeline == "bubblewrap"
        notes = [n for n in app._notifications
                 if n.title == "Pipeline: legacy Landlock not switched"]
        assert len(notes) == 1 and notes[0].severity == "warning"
        assert notes[0].message.startswith("bubblewrap runs instead: ")
        assert app.workspace.choice.reason in notes[0].message
        await pilot.press("l")  # back to bubblewrap: nothing to explain
        await pilot.pause(0.2)
        assert len([n for n in app._notifications if "not switched" in n.title]) == 1
