"""A hostile requester against the TUI's approvals (issue 15 items 2-4): the requester is any
process of the user's that is not sandboxed (a sandboxed one is refused by the broker; see
test_adv_fake_console), speaking the broker's protocol directly. It forges a request for a
workspace the TUI does not serve, floods the TUI with requests, and fills a request with escape
sequences and markup. None of it is approved, none of it takes the screen over, and nothing it
sends reaches the terminal as anything but visible text."""

from __future__ import annotations

import json
import select
import socket
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from textual.widget import Widget
from tui_support import demo_at, make_app

from sandboxtui.app import SandboxApp
from sandboxtui.core.approvals.broker import MAX_WAITING
from sandboxtui.core.approvals.model import ApprovalRequest, new_request
from sandboxtui.core.precheck import precheck
from sandboxtui.widgets.approval_modal import ApprovalModal
from sandboxtui.widgets.approvals_queue import ApprovalBanner, ApprovalsPanel

pytestmark = pytest.mark.anyio
SMALL = (80, 24)
ESC = "\x1b"
HOSTILE = f"{ESC}]0;pwned\x07{ESC}[2J{ESC}]52;c;cm0gLXJmIH4K\x07[bold]x[/bold]\x9b1m"


async def _wait(pilot, condition: Callable[[], object], timeout: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the UI"
        await pilot.pause(0.05)


def _connect(app: SandboxApp, request: ApprovalRequest) -> socket.socket:
    """Send `request` to the TUI's socket as a raw client; the connection stays open."""
    assert app.broker is not None
    s = socket.socket(socket.AF_UNIX)
    s.connect(app.broker.path)  # blocking: a full backlog waits for the broker to accept
    s.settimeout(10)
    s.sendall(json.dumps({"type": "request", "request": request.to_json()}).encode() + b"\n")
    return s


def _answer(s: socket.socket) -> dict[str, object]:
    return json.loads(s.makefile("rb").readline())


def _request(app: SandboxApp, argv: tuple[str, ...], n: int = 0) -> ApprovalRequest:
    plan = app.workspace.plan
    return replace(new_request(argv, plan.cwd, precheck(argv, plan), plan), id=f"req{n:09d}")


def _painted(widget: Widget) -> str:
    return "\n".join("".join(seg.text for seg in widget.render_line(y))
                     for y in range(widget.size.height))


def _assert_inert(text: str) -> None:
    assert not any(c in text for c in (ESC, "\x07", "\x9b")), repr(text)


async def test_a_request_for_another_workspace_is_refused_and_never_shown(
        tmp_path: Path) -> None:
    ws, config = demo_at(tmp_path / "demo")
    app = make_app(ws, config, tmp_path, broker=True)
    async with app.run_test(size=SMALL) as pilot:
        await _wait(pilot, lambda: app.broker is not None)
        forged = replace(_request(app, ("cat", ".env")), workspace="/home/someone/else",
                         cwd="/home/someone/else")
        with _connect(app, forged) as s:
            answer = _answer(s)
        assert answer["type"] == "error" and "serves approvals for" in str(answer["error"])
        await pilot.pause(0.3)
        assert not isinstance(app.screen, ApprovalModal)
        assert not app.query_one(ApprovalsPanel).pending
        assert not app.query_one(ApprovalBanner).has_class("-shown")


async def test_a_flood_of_requests_is_bounded_and_decides_nothing(tmp_path: Path) -> None:
    ws, config = demo_at(tmp_path / "demo")
    app = make_app(ws, config, tmp_path, broker=True)
    flood = MAX_WAITING + 20
    async with app.run_test(size=SMALL) as pilot:
        await _wait(pilot, lambda: app.broker is not None)
        await pilot.press("6", "e")  # the user is typing in the run input
        connections = [_connect(app, _request(app, ("cat", ".env"), n)) for n in range(flood)]
        panel = app.query_one(ApprovalsPanel)
        await _wait(pilot, lambda: len(panel.pending) == MAX_WAITING)
        # the rest (whichever reached the broker last) are denied at once, without asking
        answered = await _answered(pilot, connections, flood - MAX_WAITING)
        assert all(a["type"] == "decision" and a["decision"]["choice"] == "deny"  # type: ignore[index]
                   and "already waiting" in a["decision"]["reason"]  # type: ignore[index]
                   for a in answered.values())
        waiting = [s for s in connections if s not in answered]
        # no prompt took the focus, no notification per request; a banner counts them
        assert not isinstance(app.screen, ApprovalModal)
        assert len(app._notifications) <= 1
        banner = app.query_one(ApprovalBanner)
        assert f"+{MAX_WAITING - 1} more" in str(banner.render())
        # the user's keys went to the input, none decided a request
        await pilot.press("c", "h", "o", "space", "s", "enter", "o", "d")
        await pilot.pause(0.8)
        assert not select.select(waiting, [], [], 0)[0]  # no answer for them yet
        # reviewing: one prompt, counting them all
        await pilot.press("escape", "a")
        await _wait(pilot, lambda: isinstance(app.screen, ApprovalModal))
        title = str(app.screen.query_one("#approval-box").border_title)
        assert f"1 of {MAX_WAITING}" in title
    # the TUI closed: every waiting request is denied, none approved
    for s in waiting:
        line = s.makefile("rb").readline()
        assert not line or json.loads(line)["decision"]["choice"] == "deny"
    for s in connections:
        s.close()


async def _answered(pilot, connections: list[socket.socket],  # type: ignore[no-untyped-def]
                    count: int) -> dict[socket.socket, dict[str, object]]:
    """The first answers of `count` connections (bounded wait)."""
    answers: dict[socket.socket, dict[str, object]] = {}
    deadline = time.monotonic() + 15
    while len(answers) < count:
        assert time.monotonic() < deadline, f"{len(answers)} of {count} answered"
        for s in select.select([c for c in connections if c not in answers], [], [], 0)[0]:
            answers[s] = _answer(s)
        await pilot.pause(0.05)
    return answers


async def test_escape_sequences_and_markup_in_a_request_are_shown_inert(tmp_path: Path) -> None:
    ws, config = demo_at(tmp_path / "demo")
    app = make_app(ws, config, tmp_path, broker=True)
    async with app.run_test(size=(160, 50)) as pilot:
        await _wait(pilot, lambda: app.broker is not None)
        request = _request(app, ("cat", f".env{HOSTILE}", HOSTILE))
        request = replace(request, cwd=f"{request.cwd}/{HOSTILE}", profile=HOSTILE,
                          policy=((f"sandbox_mode{HOSTILE}", HOSTILE, HOSTILE),
                                  *request.policy))
        await pilot.press("6", "x")  # typing: the banner shows it first
        s = _connect(app, request)
        try:
            banner = app.query_one(ApprovalBanner)
            await _wait(pilot, lambda: banner.has_class("-shown") and banner.size.height)
            await pilot.pause(0.1)
            painted = _painted(banner)
            _assert_inert(painted)
            assert "\\x1b]0;pwned\\x07" in painted
            await pilot.press("escape", "7")
            table = app.query_one("#queue-table")
            await _wait(pilot, lambda: table.size.height > 0)
            table.refresh()
            await pilot.pause(0.2)
            _assert_inert(_painted(table))
            assert "[bold]x[/bold]" in _painted(table)
            await pilot.press("a")
            await _wait(pilot, lambda: isinstance(app.screen, ApprovalModal) and app.screen.armed)
            shown = app.screen.query_one("#approval-request")
            await pilot.pause(0.2)
            painted = _painted(shown)
            _assert_inert(painted)
            # the command, the cwd, the profile and the policy row: visible text, never markup
            assert painted.count("\\x1b]0;pwned\\x07") >= 4 and "[bold]x[/bold]" in painted
            await pilot.press("d")
            assert json.loads(s.makefile("rb").readline())["decision"]["choice"] == "deny"
        finally:
            s.close()
