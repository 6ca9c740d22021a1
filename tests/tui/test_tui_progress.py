"""The run view (issue 15, item 9): carriage-return progress output overwrites its line, as on
a terminal, instead of showing every step; the last lines and the exit line are shown."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input, Log
from tui_support import SIZE, demo_at, make_app, real_caps, run_in_panel

pytestmark = pytest.mark.anyio


async def test_progress_lines_overwrite_and_the_end_is_shown(tmp_path: Path) -> None:
    ws, config = demo_at(tmp_path / "demo")
    app = make_app(ws, config, tmp_path, caps=real_caps())
    async with app.run_test(size=(80, 24)) as pilot:
        record = await run_in_panel(
            app, pilot, "sh -c 'printf \"10%%\\r50%%\\rdone\\n\"; seq 1 40'")
        log = app.query_one("#run-output", Log)
        output = log.lines[1:]  # after the echoed command line
        assert "done" in output and not any("10%" in line for line in output)
        painted = ["".join(s.text for s in log.render_line(y)).rstrip()
                   for y in range(log.size.height)]
        exit_line = f"[exit 0, {record.duration:.2f} s]"
        assert [p for p in painted if p][-2:] == ["40", exit_line]


async def test_ctrl_b_shows_the_argv_as_one_line_to_paste(tmp_path: Path) -> None:
    """(item 10) The dry run is one shell-quoted line: split back, it is the launch's argv."""
    import shlex

    from sandboxtui.core.launch import prepare

    ws, config = demo_at(tmp_path / "demo")
    app = make_app(ws, config, tmp_path, caps=real_caps())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("6")
        app.query_one("#run-input", Input).value = "cat 'README.md'"
        await pilot.press("ctrl+b")
        await pilot.pause(0.2)
        line = app.query_one("#run-output", Log).lines[-1]
        spec = prepare(app.workspace.plan, ["cat", "README.md"], caps=app.workspace.caps)
        assert shlex.split(line) == spec.argv()
