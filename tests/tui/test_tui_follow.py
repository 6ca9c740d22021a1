"""The run output follows the end until the user scrolls up (issue 15 item 9): then lines that
stream in do not pull the view away, the border says "not following — End to follow", and End
follows again. At 80x24."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from textual.widgets import Input
from tui_support import demo_at, make_app, real_caps

from sandboxtui.widgets.output_log import NOT_FOLLOWING, OutputLog
from sandboxtui.widgets.run_panel import RunPanel

pytestmark = pytest.mark.anyio


async def test_scrolling_up_stops_following_and_end_follows_again(tmp_path: Path) -> None:
    ws, config = demo_at(tmp_path / "demo")
    app = make_app(ws, config, tmp_path, caps=real_caps(),
                   overrides=("sandbox_workspace_write.exclude_slash_tmp=true",))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("6")
        app.query_one("#run-input", Input).value = \
            "sh -c 'seq 1 100; sleep 1.5; seq 101 200; sleep 3'"
        await pilot.press("enter")
        log = app.query_one(OutputLog)
        deadline = time.monotonic() + 20
        while "100" not in log.lines:
            assert time.monotonic() < deadline, "no output"
            await pilot.pause(0.05)
        await pilot.pause(0.1)
        assert log.is_vertical_scroll_end and log.border_subtitle == ""
        log.focus()
        log.scroll_home(animate=False, immediate=True)  # the user scrolls up to read
        await pilot.pause(0.1)
        assert log.border_subtitle == NOT_FOLLOWING and not log.auto_scroll
        while "200" not in log.lines:  # more output streams in meanwhile
            assert time.monotonic() < deadline, "no more output"
            await pilot.pause(0.05)
        await pilot.pause(0.2)
        assert log.scroll_offset.y == 0, "the view was pulled away from what the user read"
        assert log.border_subtitle == NOT_FOLLOWING
        await pilot.press("end")
        await pilot.pause(0.1)
        assert log.is_vertical_scroll_end and log.border_subtitle == "" and log.auto_scroll
        panel = app.query_one(RunPanel)
        while not panel.records:
            assert time.monotonic() < deadline, "the run did not end"
            await pilot.pause(0.05)
        await pilot.pause(0.3)
        assert log.lines[-1].startswith("[exit 0") and log.is_vertical_scroll_end
