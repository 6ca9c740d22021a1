"""The run panel and the approvals: real commands under the real sandbox, driven by Pilot."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from textual.widgets import DataTable, Log
from tui_support import SIZE, demo_at, make_app, real_caps

from sandboxtui.app import SandboxApp
from sandboxtui.core.approvals.broker import ask_console
from sandboxtui.core.approvals.model import Choice, new_request
from sandboxtui.core.audit import read_audit
from sandboxtui.core.precheck import precheck
from sandboxtui.widgets.approval_modal import ApprovalModal
from sandboxtui.widgets.approvals_queue import ApprovalsPanel
from sandboxtui.widgets.run_panel import MAX_LINES, RunPanel

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def caps():  # type: ignore[no-untyped-def]
    return real_caps()


@pytest.fixture
def demo(tmp_path: Path) -> tuple[Path, Path]:
    return demo_at(tmp_path / "demo")


# Launches from other test runs on this machine come and go under /tmp (a writable root by
# default); these tests are about the panel, so /tmp stays out of their plans.
NO_TMP = ("sandbox_workspace_write.exclude_slash_tmp=true",)


def _output(app: SandboxApp) -> str:
    return "\n".join(app.query_one("#run-output", Log).lines)


async def _wait(pilot, condition, timeout: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the UI")
        await pilot.pause(0.05)


async def _modal(pilot, app: SandboxApp) -> None:  # type: ignore[no-untyped-def]
    """Wait until the approval modal is up and takes keys: past its guard time, Deny focused."""
    await _wait(pilot, lambda: isinstance(app.screen, ApprovalModal) and app.screen.armed
                and bool(app.screen.query("#deny"))
                and app.focused is app.screen.query_one("#deny"))


async def _run(pilot, app: SandboxApp, command: str) -> None:  # type: ignore[no-untyped-def]
    await pilot.press("6")
    app.query_one("#run-input").value = command
    await pilot.press("enter")


def _records(app: SandboxApp) -> list:  # type: ignore[type-arg]
    return app.query_one(RunPanel).records


async def test_approve_once_then_the_kernel_denies(demo, tmp_path, caps) -> None:  # type: ignore[no-untyped-def]
    ws, config = demo
    app = make_app(ws, config, tmp_path, caps=caps, overrides=NO_TMP)
    async with app.run_test(size=SIZE) as pilot:
        await _run(pilot, app, "cat .env")
        await _modal(pilot, app)
        assert ".env" in str(app.screen.request.matched)
        await pilot.press("o")
        await _wait(pilot, lambda: _records(app))
        record = _records(app)[-1]
        assert record.exit_code == 1 and "approve-once" in record.note
        assert "Permission denied" in _output(app)
        assert "demo-secret" not in _output(app)
        # The decision is in the audit log, and the approvals view shows it.
        kinds = [r.kind for r in read_audit(str(tmp_path / "audit.jsonl")).records]
        assert kinds == ["request", "decision"]
        audit = app.query_one("#audit-table", DataTable)
        assert audit.row_count == 2
        # Approve-once is not remembered: the next run asks again.
        await _run(pilot, app, "cat .env")
        await _modal(pilot, app)
        await pilot.press("d")
        await _wait(pilot, lambda: len(_records(app)) == 2)
        assert _records(app)[-1].exit_code == 3


async def test_deny_edit_and_session(demo, tmp_path, caps) -> None:  # type: ignore[no-untyped-def]
    ws, config = demo
    app = make_app(ws, config, tmp_path, caps=caps, overrides=NO_TMP)
    async with app.run_test(size=SIZE) as pilot:
        # Edit: the new command is prechecked again and runs.
        await _run(pilot, app, "cat .env")
        await _modal(pilot, app)
        await pilot.press("e")
        edit = app.screen.query_one("#approval-edit")
        edit.value = "cat README.md"
        await pilot.press("enter")
        await _wait(pilot, lambda: _records(app))
        assert _records(app)[-1].exit_code == 0
        assert "# demo project" in _output(app)
        # Session: asked once, then remembered for the exact command.
        await _run(pilot, app, "cat sub/.env.local")
        await _modal(pilot, app)
        await pilot.press("s")
        await _wait(pilot, lambda: len(_records(app)) == 2)
        await _run(pilot, app, "cat sub/.env.local")
        await _wait(pilot, lambda: len(_records(app)) == 3)
        assert "session" in _records(app)[-1].note
        assert _records(app)[-1].exit_code == 1
        assert "demo-nested-secret" not in _output(app)
        # A command that mentions nothing sensitive runs without a prompt.
        await _run(pilot, app, "sh -c 'echo hello > made.txt; cat made.txt'")
        await _wait(pilot, lambda: len(_records(app)) == 4)
        assert _records(app)[-1].exit_code == 0 and "hello" in _output(app)
        assert (ws / "made.txt").read_text() == "hello\n"


async def test_cancel_kills_the_sandbox(demo, tmp_path, caps) -> None:  # type: ignore[no-untyped-def]
    ws, config = demo
    app = make_app(ws, config, tmp_path, caps=caps, overrides=NO_TMP)
    async with app.run_test(size=SIZE) as pilot:
        await _run(pilot, app, "sh -c 'echo started; sleep 60'")
        panel = app.query_one(RunPanel)
        await _wait(pilot, lambda: "started" in _output(app))
        started = time.monotonic()
        await pilot.press("escape")
        await _wait(pilot, lambda: _records(app))
        assert time.monotonic() - started < 5
        record = _records(app)[-1]
        assert record.exit_code == 137 and "cancelled" in record.note
        assert panel.running is None


async def test_large_output_is_bounded(demo, tmp_path, caps) -> None:  # type: ignore[no-untyped-def]
    ws, config = demo
    app = make_app(ws, config, tmp_path, caps=caps, overrides=NO_TMP)
    async with app.run_test(size=SIZE) as pilot:
        await _run(pilot, app, "seq 200000")
        await _wait(pilot, lambda: _records(app), timeout=30)
        log = app.query_one("#run-output", Log)
        assert log.line_count <= MAX_LINES
        assert log.lines[-2] == "200000"  # then the exit line
        panel = app.query_one(RunPanel)
        numbers = [int(line) for line in log.lines if line.isdigit()]
        assert numbers == list(range(numbers[0], 200001))  # the newest lines, none lost between
        assert panel.dropped_lines >= 200000 - MAX_LINES
        assert "earlier output lines not kept" in str(panel.query_one("#run-status").content)


async def test_unknown_command_is_127(demo, tmp_path, caps) -> None:  # type: ignore[no-untyped-def]
    ws, config = demo
    app = make_app(ws, config, tmp_path, caps=caps, overrides=NO_TMP)
    async with app.run_test(size=SIZE) as pilot:
        await _run(pilot, app, "no-such-command-xyz")
        await _wait(pilot, lambda: _records(app))
        assert _records(app)[-1].exit_code == 127


async def test_broker_request_from_a_headless_run(demo, tmp_path, caps) -> None:  # type: ignore[no-untyped-def]
    ws, config = demo
    app = make_app(ws, config, tmp_path, caps=caps, broker=True, overrides=NO_TMP)
    async with app.run_test(size=SIZE) as pilot:
        await _wait(pilot, lambda: app.broker is not None)
        plan = app.workspace.plan
        argv = ("cat", ".env")
        request = new_request(argv, plan.cwd, precheck(argv, plan), plan)
        answers: list = []  # type: ignore[type-arg]
        client = threading.Thread(target=lambda: answers.append(
            ask_console(request, str(tmp_path / "sock"), 20.0)), daemon=True)
        client.start()
        await _modal(pilot, app)
        assert "headless run" in app.screen.source
        assert len(app.query_one(ApprovalsPanel).pending) == 1
        await pilot.press("s")
        await _wait(pilot, lambda: answers)
        assert answers[0].choice is Choice.SESSION
        assert answers[0].who == app.who
        await _wait(pilot, lambda: not app.query_one(ApprovalsPanel).pending)
        # Remembered for the session: the broker answers the same request itself.
        again = new_request(argv, plan.cwd, precheck(argv, plan), plan)
        threading.Thread(target=lambda: answers.append(
            ask_console(again, str(tmp_path / "sock"), 5.0)), daemon=True).start()
        await _wait(pilot, lambda: len(answers) == 2)
        assert answers[1].choice is Choice.SESSION and answers[1].who == "session"
        assert not isinstance(app.screen, ApprovalModal)
    assert not os.path.exists(tmp_path / "sock" / "console.sock")


async def test_each_launch_is_planned_afresh(demo, tmp_path, caps) -> None:  # type: ignore[no-untyped-def]
    ws, config = demo
    app = make_app(ws, config, tmp_path, caps=caps, overrides=NO_TMP)  # no file watcher
    async with app.run_test(size=SIZE) as pilot:
        (ws / "sub" / ".env.fresh").write_text("FRESH_SECRET=1\n")
        await _run(pilot, app, "cat sub/.env.fresh")
        await _modal(pilot, app)
        await pilot.press("o")
        await _wait(pilot, lambda: _records(app))
        assert _records(app)[-1].exit_code == 1
        assert "Permission denied" in _output(app) and "FRESH_SECRET" not in _output(app)
        real = os.path.realpath(ws)
        assert f"{real}/sub/.env.fresh" in {r.path for r in app.workspace.plan.rules}
