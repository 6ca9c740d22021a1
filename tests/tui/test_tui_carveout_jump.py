"""Jumps (issue 15, item 14): enter on a Carveouts or a Verify row shows that path in the mount
tree, with its details, as the find box does."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from textual.widgets import DataTable, TabbedContent
from tui_support import SIZE, demo_at, make_app, real_caps

from sandboxtui.app import VerifyFinished
from sandboxtui.core.verify import node_paths, verify
from sandboxtui.widgets.mount_tree import MountTree
from sandboxtui.widgets.verify_results import VerifyResults

pytestmark = pytest.mark.anyio


async def test_enter_on_a_carveout_jumps_to_it_in_the_tree(tmp_path: Path) -> None:
    ws, config = demo_at(tmp_path / "demo")
    app = make_app(ws, config, tmp_path)
    env = os.path.realpath(ws / ".env")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        table = app.query_one("#carveouts-table", DataTable)
        await pilot.pause()
        # the table shows paths beneath the workspace from ./
        row = next(i for i in range(table.row_count)
                   if str(table.get_row_at(i)[1]) == "./.env")
        table.move_cursor(row=row)
        await pilot.press("enter")
        tree = app.query_one(MountTree)
        await _until(pilot, lambda: tree.cursor_node is not None and tree.cursor_node.data
                     is not None and tree.cursor_node.data.path == env)
        assert app.query_one(TabbedContent).active == "tree"
        assert tree.has_focus


async def test_enter_on_a_verify_row_jumps_to_it_in_the_tree(tmp_path: Path) -> None:
    ws, config = demo_at(tmp_path / "demo")
    app = make_app(ws, config, tmp_path, caps=real_caps(),
                   overrides=("sandbox_workspace_write.exclude_slash_tmp=true",))
    async with app.run_test(size=SIZE) as pilot:
        plan = app.workspace.plan
        env = f"{plan.cwd}/.env"
        report = verify(plan, node_paths(env), caps=app.workspace.caps)
        await pilot.press("8")
        await _until(pilot, lambda: app.query("#verify-table"))
        app.post_message(VerifyFinished(app.workspace, env, report))
        await _until(pilot, lambda: app.query_one(VerifyResults).rows)
        row = next(i for i, r in enumerate(app.query_one(VerifyResults).rows)
                   if r.probe.path == env)
        table = app.query_one("#verify-table", DataTable)
        table.focus()
        table.move_cursor(row=row)
        await pilot.press("enter")
        tree = app.query_one(MountTree)
        await _until(pilot, lambda: tree.cursor_node is not None and tree.cursor_node.data
                     is not None and tree.cursor_node.data.path == env)
        assert app.query_one(TabbedContent).active == "tree"


async def _until(pilot, condition, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the UI did not follow"
        await pilot.pause(0.05)
