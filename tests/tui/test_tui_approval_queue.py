"""Approvals from headless runs (issue 15 items 2-4): each request shows its workspace, cwd and
policy in full; a TUI answers only its own workspace unless opted into all; a second TUI says
which one its runs ask; several requests are counted ("1 of N") and shown one after the other;
a request that arrives while the user types rings the bell and waits behind a banner; an
approver's edit is told to the headless caller, audited, and echoed by the run panel."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from rich.console import Console
from textual.widgets import Input, Log, Static
from tui_support import demo_at, make_app, real_caps, workspace_for

from sandboxtui.app import SandboxApp
from sandboxtui.core.approvals.broker import Broker, ask_console
from sandboxtui.core.approvals.model import Choice, Decision, new_request
from sandboxtui.core.audit import DecisionRecord, read_audit
from sandboxtui.core.precheck import precheck
from sandboxtui.widgets.approval_modal import SESSION_SCOPE, ApprovalModal
from sandboxtui.widgets.approvals_queue import ApprovalBanner, ApprovalsPanel

pytestmark = pytest.mark.anyio
SMALL = (80, 24)
NO_TMP = ("sandbox_workspace_write.exclude_slash_tmp=true",)


async def _wait(pilot, condition: Callable[[], object], timeout: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the UI"
        await pilot.pause(0.05)


def _armed(app: SandboxApp) -> bool:
    return isinstance(app.screen, ApprovalModal) and app.screen.armed \
        and bool(app.screen.query("#deny")) and app.focused is app.screen.query_one("#deny")


def _ask(app: SandboxApp, sock: Path, argv: tuple[str, ...], answers: list[Decision | None],
         workspace: Path | None = None) -> None:
    """A headless run's request, from a thread (its plan: the app's, or another workspace's)."""
    plan = app.workspace.plan if workspace is None else workspace_for(
        workspace, workspace.parent / "config.toml").plan
    request = new_request(argv, plan.cwd, precheck(argv, plan), plan)
    threading.Thread(target=lambda: answers.append(ask_console(request, str(sock), 30.0)),
                     daemon=True).start()


def _request_text(app: SandboxApp) -> str:
    """The request as the modal shows it, whatever part is scrolled into view."""
    console = Console(width=2000, file=io.StringIO(), record=True)
    console.print(app.screen.query_one("#approval-request", Static).content)
    return console.export_text()


def _notes(app: SandboxApp) -> str:
    return "\n".join(f"{n.title}: {n.message}" for n in app._notifications)


async def test_requests_show_workspace_cwd_policy_and_are_counted_and_queued(
        tmp_path: Path) -> None:
    ws, config = demo_at(tmp_path / "demo")
    app = make_app(ws, config, tmp_path, broker=True)
    answers: list[Decision | None] = []
    async with app.run_test(size=SMALL) as pilot:
        await _wait(pilot, lambda: app.broker is not None)
        _ask(app, tmp_path / "sock", ("cat", ".env"), answers)
        await _wait(pilot, lambda: _armed(app))
        _ask(app, tmp_path / "sock", ("cat", "sub/.env.local"), answers)
        await _wait(pilot, lambda: "1 of 2" in str(app.screen.query_one("#approval-box")
                                                     .border_title))
        modal = app.screen
        assert isinstance(modal, ApprovalModal) and modal.request.argv == ("cat", ".env")
        shown = _request_text(app)
        assert f"workspace {ws}" in shown and f"cwd       {ws}" in shown
        assert "NOT this TUI's workspace" not in shown
        # the policy in full: every setting, as the config file writes it, with provenance
        for key, value, provenance in modal.request.policy:
            assert f"{key} = {value}  ({provenance})" in shown
        assert "sandbox_mode = workspace-write" in shown
        assert str(modal.query_one("#approval-session-scope").render()) == SESSION_SCOPE
        await pilot.press("d")
        # the next request follows, behind its own guard time, now the only one
        await _wait(pilot, lambda: _armed(app) and app.screen is not modal)
        assert app.screen.request.argv == ("cat", "sub/.env.local")
        assert "1 of 1" in str(app.screen.query_one("#approval-box").border_title)
        await pilot.press("o")
        await _wait(pilot, lambda: len(answers) == 2)
        await _wait(pilot, lambda: not app.query_one(ApprovalsPanel).pending)
        assert not isinstance(app.screen, ApprovalModal)
    assert [a.choice for a in answers if a is not None] == [Choice.DENY, Choice.ONCE]


async def test_a_request_while_typing_rings_and_waits_behind_a_banner(tmp_path: Path) -> None:
    ws, config = demo_at(tmp_path / "demo")
    app = make_app(ws, config, tmp_path, broker=True)
    answers: list[Decision | None] = []
    bells: list[float] = []
    async with app.run_test(size=SMALL) as pilot:
        app.bell = lambda: bells.append(time.monotonic())  # type: ignore[method-assign]
        await _wait(pilot, lambda: app.broker is not None)
        await pilot.press("6", "e", "c")
        _ask(app, tmp_path / "sock", ("cat", ".env"), answers)
        await _wait(pilot, lambda: bells)
        banner = app.query_one(ApprovalBanner)
        await _wait(pilot, lambda: banner.has_class("-shown"))
        assert "cat .env" in str(banner.render()) and "a: review" in str(banner.render())
        # the user goes on typing, well past the guard time: every key is the input's
        await pilot.press("h", "o", "space", "s", "o", "enter")
        await pilot.pause(1.0)
        assert not isinstance(app.screen, ApprovalModal) and answers == []
        assert app.query_one(ApprovalsPanel).waiting()
        await pilot.press("escape", "a")  # leave the input, review
        await _wait(pilot, lambda: _armed(app))
        assert not banner.has_class("-shown")
        await pilot.press("d")
        await _wait(pilot, lambda: answers)
    assert answers[0] is not None and answers[0].choice is Choice.DENY
    assert len(bells) == 1


async def test_only_its_own_workspace_unless_opted_into_all(tmp_path: Path) -> None:
    ws, config = demo_at(tmp_path / "demo")
    other, _ = demo_at(tmp_path / "other")
    app = make_app(ws, config, tmp_path, broker=True)
    async with app.run_test(size=SMALL) as pilot:
        await _wait(pilot, lambda: app.broker is not None)
        plan = workspace_for(other, other.parent / "config.toml").plan
        request = new_request(("cat", ".env"), plan.cwd, precheck(("cat", ".env"), plan), plan)
        # no console serves the other workspace: its run asks its terminal, not this TUI
        assert ask_console(request, str(tmp_path / "sock"), 5.0) is None
        assert not app.query_one(ApprovalsPanel).pending
    every = SandboxApp(workspace_for(ws, config), watch=False,
                       socket_dir=str(tmp_path / "sock"), audit_path=str(tmp_path / "a.jsonl"),
                       all_workspaces=True)
    answers: list[Decision | None] = []
    async with every.run_test(size=SMALL) as pilot:
        await _wait(pilot, lambda: every.broker is not None)
        _ask(every, tmp_path / "sock", ("cat", ".env"), answers, workspace=other)
        await _wait(pilot, lambda: _armed(every))
        shown = _request_text(every)
        assert f"workspace {other}  (NOT this TUI's workspace)" in shown
        await pilot.press("d")
        await _wait(pilot, lambda: answers)


async def test_a_second_tui_says_which_one_its_runs_ask(tmp_path: Path) -> None:
    ws, config = demo_at(tmp_path / "demo")
    (tmp_path / "sock").mkdir(mode=0o700)
    with Broker(str(tmp_path / "sock"), workspace=str(ws)):
        app = make_app(ws, config, tmp_path, broker=True)
        async with app.run_test(size=SMALL) as pilot:
            await _wait(pilot, lambda: "another sandboxtui" in _notes(app))
            assert app.broker is None
            assert f"pid {os.getpid()}" in _notes(app)
            assert "terminal" not in _notes(app)


async def test_the_headless_caller_is_told_the_edit_and_the_audit_has_it(
        tmp_path: Path) -> None:
    """A real `sandboxtui run` asks this TUI: it says it waits (pid, timeout), and once the
    approver edits the command it says what runs instead; the audit log records the edit."""
    ws, config = demo_at(tmp_path / "demo")
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    app = SandboxApp(workspace_for(ws, config, real_caps(), overrides=NO_TMP), watch=False,
                     socket_dir=str(runtime / "sandboxtui"),
                     audit_path=str(tmp_path / "state" / "sandboxtui" / "audit.jsonl"))
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime), "XDG_STATE_HOME": str(tmp_path / "state")}
    async with app.run_test(size=SMALL) as pilot:
        await _wait(pilot, lambda: app.broker is not None)
        headless = subprocess.Popen(
            [sys.executable, "-m", "sandboxtui", "run", "--config", str(config), "--cwd",
             str(ws), "-c", NO_TMP[0], "--approval-timeout", "40", "--", "cat", ".env"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env=env)
        try:
            await _wait(pilot, lambda: _armed(app), timeout=30)
            await pilot.press("e")
            edit = app.screen.query_one("#approval-edit", Input)
            edit.value = "cat README.md"
            await pilot.press("enter")
            out, err = await _communicate(pilot, headless)
        finally:
            headless.kill()
            headless.wait()
    assert headless.returncode == 0, err
    assert f"waiting for approval in sandboxtui (pid {os.getpid()}, up to 40 s)" in err
    assert "approver changed the command to: cat README.md" in err
    assert out == "# demo project\n"  # README.md's text: the edited command ran
    edits = [r for r in read_audit(str(tmp_path / "state" / "sandboxtui" / "audit.jsonl"))
             .records if isinstance(r, DecisionRecord) and r.choice == "edit"]
    assert [r.edited for r in edits] == [("cat", "README.md")]


async def _communicate(pilot, proc: subprocess.Popen[str]) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 60
    while proc.poll() is None:
        assert time.monotonic() < deadline, "the headless run did not end"
        await pilot.pause(0.1)
    out, err = proc.communicate(timeout=10)
    return out, err


async def test_the_run_panel_transcript_echoes_the_edited_command(tmp_path: Path) -> None:
    ws, config = demo_at(tmp_path / "demo")
    app = make_app(ws, config, tmp_path, caps=real_caps(), overrides=NO_TMP)
    async with app.run_test(size=SMALL) as pilot:
        await pilot.press("6")
        app.query_one("#run-input", Input).value = "cat .env"
        await pilot.press("enter")
        await _wait(pilot, lambda: _armed(app))
        await pilot.press("e")
        app.screen.query_one("#approval-edit", Input).value = "echo edited-ran"
        await pilot.press("enter")
        await _wait(pilot, lambda: "edited-ran" in app.query_one("#run-output", Log).lines)
        lines = list(app.query_one("#run-output", Log).lines)
    edited = lines.index("$ echo edited-ran")
    assert lines[edited - 1] == "sandboxtui: approver changed the command to: echo edited-ran"
    assert lines.index("edited-ran") > edited
