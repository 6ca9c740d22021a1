"""The picture at every node (issue 15, item 5): beneath a symlinked directory, a node's label
comes from the same `explain()` of the same resolved path as its details: the demo's
`sub-link/.env.local` (sub-link -> sub) is denied in the tree, not `rw`."""

from __future__ import annotations

from pathlib import Path

import pytest
from tui_support import SIZE, demo_at, make_app, tree_nodes

from sandboxtui.widgets.mount_tree import MountTree

pytestmark = pytest.mark.anyio


async def test_a_node_beneath_a_symlinked_directory_is_labelled_as_explained(
        tmp_path: Path) -> None:
    ws, config = demo_at(tmp_path / "demo")
    app = make_app(ws, config, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        tree = app.query_one(MountTree)
        target = str(ws / "sub-link" / ".env.local")
        assert tree.reveal(target)
        await pilot.pause(0.3)
        [node] = [n for n in tree_nodes(tree) if n.data and n.data.path == target]
        label = str(node.label)
        ex = app.workspace.plan.explain(target)
        assert ex.access.value == "none" and ex.resolved == str(
            (ws / "sub" / ".env.local").resolve())
        assert "[denied]" in label and "[rw]" not in label, label
