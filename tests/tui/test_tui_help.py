"""Help speaks to users (issue 15, item 13): panels by the names users know, keys as they are
typed, no class or method names of the code."""

from __future__ import annotations

import html
from pathlib import Path

import pytest
from tui_support import demo_at, make_app

from sandboxtui.widgets.help_screen import HelpScreen

pytestmark = pytest.mark.anyio


async def test_help_names_panels_and_keys_in_the_users_words(tmp_path: Path) -> None:
    ws, config = demo_at(tmp_path / "demo")
    app = make_app(ws, config, tmp_path)
    async with app.run_test(size=(160, 120)) as pilot:
        await pilot.press("question_mark")
        await pilot.pause(0.2)
        assert isinstance(app.screen, HelpScreen)
        shown = html.unescape(app.export_screenshot()).replace("\xa0", " ")
        assert "find box" in shown and "mount tree" in shown
        for code in ("PathFilter", "MountTree", "MountPlan", "explain()", "slash"):
            assert code not in shown, code
