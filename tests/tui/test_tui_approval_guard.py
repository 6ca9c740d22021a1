"""Nothing approved by accident (issue 15, item 1): keys pressed before an approval prompt has
been on screen for its guard time (GUARD_SECONDS; a longer one here, so that the test does not
depend on how fast keys are sent) decide nothing, whatever they are (the letters that approve,
enter on the focused button, the edit key); the prompt says so, dimmed, until then."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from tui_support import SIZE, demo_at, make_app

from sandboxtui.core.approvals.model import Choice, Decision, new_request
from sandboxtui.core.precheck import precheck
from sandboxtui.widgets.approval_modal import GUARD_SECONDS, ApprovalModal

assert 0.3 <= GUARD_SECONDS <= 1.0  # long enough to stop a typed letter, short enough to use

pytestmark = pytest.mark.anyio


async def test_keys_during_the_guard_time_decide_nothing(tmp_path: Path) -> None:
    ws, config = demo_at(tmp_path / "demo")
    app = make_app(ws, config, tmp_path)
    decisions: list[Decision | None] = []
    async with app.run_test(size=SIZE) as pilot:
        plan = app.workspace.plan
        argv = ("cat", ".env")
        request = new_request(argv, plan.cwd, precheck(argv, plan), plan)
        await pilot.press("6")
        guard = 4.0
        shown = time.monotonic()
        app.push_screen(ApprovalModal(request, "tui", guard=guard), decisions.append)
        await pilot.pause()
        modal = app.screen
        assert isinstance(modal, ApprovalModal) and not modal.armed
        assert modal.query_one("#approval-guard").display
        # What the user was typing when the prompt popped up: approve letters, enter, edit.
        await pilot.press("s", "o", "enter", "e", "enter", "space")
        assert time.monotonic() - shown < guard, "the machine was too slow to test"
        assert decisions == [] and app.screen is modal
        assert not modal.query_one("#approval-edit").display
        await pilot.pause(guard - (time.monotonic() - shown) + 0.2)
        assert modal.armed and not modal.query_one("#approval-guard").display
        await pilot.press("d")
        await pilot.pause()
    assert [d.choice for d in decisions if d is not None] == [Choice.DENY]
