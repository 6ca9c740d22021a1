"""SVG snapshots of the main screens at a fixed size (update: pytest --snapshot-update).

Deterministic on any machine: the demo lives at a fixed path and the capabilities are injected
(a machine without /usr/bin/bwrap, so the warning shows). `/tmp` is left out of the writable
roots: launches elsewhere on the machine briefly create placeholders for its missing protected
names (`/tmp/.git`...), which would change the plan from one run to the next.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest
from textual.widgets import Input
from tui_support import SIZE, make_app, real_caps, snapshot_demo

from sandboxtui.app import SandboxApp, VerifyFinished
from sandboxtui.core.approvals.model import new_request
from sandboxtui.core.precheck import precheck
from sandboxtui.core.verify import node_paths, verify
from sandboxtui.widgets.approval_modal import GUARD_SECONDS, ApprovalModal


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SandboxApp]:
    monkeypatch.delenv("NO_COLOR", raising=False)
    # The runtime directory is a plan rule (hidden in every sandbox): pin where it is.
    run = Path("/tmp/sandboxtui-snapshot-run")
    run.mkdir(mode=0o700, exist_ok=True)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(run))
    with snapshot_demo() as (ws, config):
        yield make_app(ws, config, tmp_path,
                       overrides=("sandbox_workspace_write.exclude_slash_tmp=true",))


def test_tree_with_env_selected(app: SandboxApp, snap_compare) -> None:  # type: ignore[no-untyped-def]
    # Cursor starts on the workspace; .env is the 8th entry below it.
    assert snap_compare(app, press=["down"] * 7, terminal_size=SIZE)


def test_carveouts(app: SandboxApp, snap_compare) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(app, press=["2"], terminal_size=SIZE)


def test_seccomp_rules(app: SandboxApp, snap_compare) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(app, press=["3"], terminal_size=SIZE)


def test_warnings(app: SandboxApp, snap_compare) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(app, press=["4"], terminal_size=SIZE)


def test_approval_modal(app: SandboxApp, snap_compare) -> None:  # type: ignore[no-untyped-def]
    plan = app.workspace.plan
    argv = ("cat", ".env")
    request = replace(new_request(argv, plan.cwd, precheck(argv, plan), plan),
                      id="0123456789ab", time=datetime(2026, 1, 1, 12, 0, 0).timestamp(),
                      pid=4242)

    async def open_modal(pilot) -> None:  # type: ignore[no-untyped-def]
        await pilot.press("6")
        app.push_screen(ApprovalModal(request, "tui pid 4242"))
        await pilot.pause(GUARD_SECONDS + 0.2)  # past the guard time: the prompt takes keys

    assert os.path.basename(plan.cwd) == "workspace"
    assert snap_compare(app, run_before=open_modal, terminal_size=SIZE)


def test_verify_results(app: SandboxApp, snap_compare) -> None:  # type: ignore[no-untyped-def]
    # A real verify of the .env node (this machine's bwrap: the snapshot app's capabilities are
    # fixed); the loopback listeners' ports and the Unix listener's directory are random, so
    # they are shown as PORT and DIR.
    plan = app.workspace.plan
    report = verify(plan, node_paths(f"{plan.cwd}/.env"), caps=real_caps())
    stable = {"tcp": lambda p: p.rsplit(":", 1)[0] + ":PORT", "udp": lambda p: p.rsplit(
        ":", 1)[0] + ":PORT", "unix-host": lambda p: "/DIR/" + os.path.basename(p)}
    fixed = [replace(r, probe=replace(r.probe, path=stable[r.probe.op](r.probe.path)))
             if r.probe.op in stable else r for r in report.results]
    report = replace(report, results=tuple(fixed))

    async def show(pilot) -> None:  # type: ignore[no-untyped-def]
        await pilot.press(*["down"] * 7)
        app.post_message(VerifyFinished(app.workspace, f"{plan.cwd}/.env", report))
        await pilot.pause()
        app.clear_notifications()
        await pilot.press("8")

    assert report.ok
    assert snap_compare(app, run_before=show, terminal_size=SIZE)


# --- the layout at every size (issue 15 items 11, 12): 160x50 above, 120x40 and 80x24 here ---

SMALLER = [(80, 24), (120, 40)]
PANELS = {"tree": ["down"] * 7, "carveouts": ["2"], "run": ["6"]}


@pytest.mark.parametrize("panel", PANELS)
@pytest.mark.parametrize("size", SMALLER, ids=lambda s: f"{s[0]}x{s[1]}")
def test_panel_at_size(app: SandboxApp, snap_compare, panel: str,  # type: ignore[no-untyped-def]
                       size: tuple[int, int]) -> None:
    async def show(pilot) -> None:  # type: ignore[no-untyped-def]
        await pilot.pause()  # the tree has put its cursor on the workspace
        await pilot.press(*PANELS[panel])
        for box in app.query(Input):
            box.cursor_blink = False  # a blinking cursor is caught on or off at random

    assert snap_compare(app, run_before=show, terminal_size=size)


@pytest.mark.parametrize("size", SMALLER, ids=lambda s: f"{s[0]}x{s[1]}")
def test_approval_modal_at_size(app: SandboxApp, snap_compare,  # type: ignore[no-untyped-def]
                                size: tuple[int, int]) -> None:
    plan = app.workspace.plan
    argv = ("cat", ".env")
    request = replace(new_request(argv, plan.cwd, precheck(argv, plan), plan),
                      id="0123456789ab", time=datetime(2026, 1, 1, 12, 0, 0).timestamp(),
                      pid=4242)

    async def open_modal(pilot) -> None:  # type: ignore[no-untyped-def]
        await pilot.press("6")
        app.push_screen(ApprovalModal(request, "tui pid 4242", home=plan.cwd))
        await pilot.pause(GUARD_SECONDS + 0.2)

    assert snap_compare(app, run_before=open_modal, terminal_size=size)


@pytest.mark.parametrize("panel", ["tree", "carveouts"])
def test_no_color(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, snap_compare,  # type: ignore[no-untyped-def]
                  panel: str) -> None:
    """NO_COLOR: denied, masked and read-only stay distinct (reverse, underline, italic, bold,
    and the words), not grey on grey."""
    monkeypatch.setenv("NO_COLOR", "1")
    run = Path("/tmp/sandboxtui-snapshot-run")
    run.mkdir(mode=0o700, exist_ok=True)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(run))
    with snapshot_demo() as (ws, config):
        app = make_app(ws, config, tmp_path,
                       overrides=("sandbox_workspace_write.exclude_slash_tmp=true",))
        assert snap_compare(app, press=PANELS[panel], terminal_size=(80, 24))
