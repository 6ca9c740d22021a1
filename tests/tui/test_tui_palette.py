"""The command palette (issue 15 item 13): each command names its key, and Screenshot saves an
SVG and says where, in plain text (Textual's own notification is markup, shown as text here)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tui_support import demo_at, make_app

pytestmark = pytest.mark.anyio


async def test_palette_commands_name_their_keys_and_screenshot_saves(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws, config = demo_at(tmp_path / "demo")
    shots = tmp_path / "shots"
    shots.mkdir()
    monkeypatch.chdir(shots)
    app = make_app(ws, config, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        commands = {c.title: c for c in app.get_system_commands(app.screen)}
        for title, key in (("Show Tree", "1"), ("Show Verify", "8"), ("Find path", "/"),
                           ("Verify node", "v"), ("Verify whole plan", "V"), ("Help", "?")):
            assert commands[title].help.endswith(f"· key {key}"), title
        commands["Screenshot"].callback()
        await pilot.pause(0.2)
        saved = list(shots.glob("*.svg"))
        assert len(saved) == 1 and "<svg" in saved[0].read_text()
        notes = [n for n in app._notifications if n.title == "Screenshot saved"]
        assert [n.message for n in notes] == [str(saved[0])]
