"""The TUI's workers: an unexpected exception is shown and logged, never the end of the app, and
an approval still open when the app closes is denied (the run worker does not wait forever)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from textual.widgets import TabbedContent
from tui_support import SIZE, demo_at, make_app

from sandboxtui.app import SandboxApp
from sandboxtui.core.audit import DecisionRecord, read_audit
from sandboxtui.widgets.approval_modal import ApprovalModal
from sandboxtui.widgets.run_panel import RunPanel

pytestmark = pytest.mark.anyio


@pytest.fixture
def demo(tmp_path: Path) -> tuple[Path, Path]:
    return demo_at(tmp_path / "demo")


async def _wait(pilot, condition, timeout: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the UI")
        await pilot.pause(0.05)


def _errors(app: SandboxApp) -> list[str]:
    return [f"{n.title}: {n.message}" for n in app._notifications if n.severity == "error"]


def _boom(*_args: object, **_kwargs: object) -> None:
    raise RuntimeError("boom")


async def test_a_failing_verify_worker_is_shown_and_the_app_stays(
        demo, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr("sandboxtui.app.verify", _boom)
    ws, config = demo
    app = make_app(ws, config, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("V")
        await _wait(pilot, lambda: _errors(app))
        assert _errors(app) == ["verify failed: RuntimeError: boom"]
        assert app.is_running and not app.verifying
        await pilot.press("2")  # still answering keys
        assert app.query_one(TabbedContent).active == "carveouts"


async def test_a_failing_run_worker_frees_the_panel(
        demo, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr("sandboxtui.widgets.run_panel.reload_workspace", _boom)
    ws, config = demo
    app = make_app(ws, config, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("6")
        app.query_one("#run-input").value = "true"
        await pilot.press("enter")
        await _wait(pilot, lambda: _errors(app))
        assert _errors(app) == ["run command failed: RuntimeError: boom"]
        panel = app.query_one(RunPanel)
        assert app.is_running and panel.running is None
        assert "failed unexpectedly" in str(panel.query_one("#run-status").content)


async def test_an_open_approval_is_denied_when_the_app_closes(
        demo, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ws, config = demo
    app = make_app(ws, config, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("6")
        app.query_one("#run-input").value = "cat .env"
        await pilot.press("enter")
        await _wait(pilot, lambda: isinstance(app.screen, ApprovalModal))
    # the app is gone; its run worker gets a denial instead of waiting for the modal
    deadline = time.monotonic() + 10
    while True:
        decisions = [r for r in read_audit(str(tmp_path / "audit.jsonl")).records
                     if isinstance(r, DecisionRecord)]
        if decisions or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert [(d.choice, d.reason) for d in decisions] == [
        ("deny", "the TUI closed before a decision")]
