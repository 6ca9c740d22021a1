"""Jumps (issue 15, item 14): enter on a Carveouts row shows that path in the mount tree, with
its details, as the find box does."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from textual.widgets import DataTable, TabbedContent
from tui_support import SIZE, demo_at, make_app

from sandboxtui.widgets.mount_tree import MountTree

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
        await pilot.pause(0.3)
        assert app.query_one(TabbedContent).active == "tree"
        tree = app.query_one(MountTree)
        assert tree.has_focus
        assert tree.cursor_node is not None and tree.cursor_node.data is not None
        assert tree.cursor_node.data.path == env
