"""A broken config, at start or live, is one state (issue 15 item 7): the TUI opens (instead of
exiting 2 before any screen) and says, above every panel, the error with file:line and that the
views are stale; launches are refused; once the config loads again, the banner goes."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from textual.widgets import TabbedContent
from tui_support import FIXED_CAPS, SIZE, demo_at, run_in_panel

from sandboxtui.app import SandboxApp
from sandboxtui.model import Options, open_workspace
from sandboxtui.widgets.config_state import STALE, ConfigBanner

pytestmark = pytest.mark.anyio


async def _wait(pilot, condition, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the view did not update"
        await pilot.pause(0.05)


@pytest.mark.parametrize("size", [SIZE, (80, 24)], ids=["160x50", "80x24"])
async def test_a_bad_config_at_start_opens_in_the_error_state(tmp_path: Path,
                                                             size: tuple[int, int]) -> None:
    ws, config = demo_at(tmp_path / "demo")
    good = config.read_text()
    config.write_text(good.replace('sandbox_mode = "workspace-write"',
                                   'sandbox_mode = "sideways"'))
    workspace = open_workspace(Options(cwd=str(ws), config_path=config), FIXED_CAPS)
    assert workspace.config_error is not None and not workspace.can_launch
    app = SandboxApp(workspace, watch=True, audit_path=str(tmp_path / "audit.jsonl"))
    async with app.run_test(size=size) as pilot:
        await pilot.pause(0.5)  # the watcher is up
        banner = app.query_one(ConfigBanner)
        assert banner.has_class("-shown") and banner.region.height >= 2
        shown = str(banner.render())
        assert f"{config}:" in shown and "sandbox_mode" in shown and STALE in shown
        assert "1E" in str(app.query_one(TabbedContent).get_tab("warnings").label)
        record = await run_in_panel(app, pilot, "true")
        assert record.exit_code == 2 and "refused" in record.note
        config.write_text(good)  # fixed: the live reload reads it
        await _wait(pilot, lambda: app.workspace.config_error is None)
        await pilot.pause(0.1)
        assert not banner.has_class("-shown")
        assert app.workspace.plan.policy.default_permissions == "demo"  # the file's own


async def test_a_config_broken_while_open_marks_the_views_stale(tmp_path: Path) -> None:
    ws, config = demo_at(tmp_path / "demo")
    app = SandboxApp(open_workspace(Options(cwd=str(ws), config_path=config), FIXED_CAPS),
                     watch=True, audit_path=str(tmp_path / "audit.jsonl"))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.5)
        banner = app.query_one(ConfigBanner)
        assert not banner.has_class("-shown")
        config.write_text(config.read_text() + "\nsandbox_modee = 1\n")
        await _wait(pilot, lambda: banner.has_class("-shown"))
        assert "did you mean sandbox_mode" in str(banner.render())
