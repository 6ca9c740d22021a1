"""Live reload: workspace and config changes re-plan every view within a second."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from tui_support import SIZE, demo_at, make_app, tree_nodes

from sandboxtui.widgets.carveouts import carveout_rows
from sandboxtui.widgets.mount_tree import MountTree

pytestmark = pytest.mark.anyio


async def _wait(pilot, condition, timeout: float = 5.0) -> float:  # type: ignore[no-untyped-def]
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError("the view did not update")
        await pilot.pause(0.02)
    return time.monotonic() - start


def _notes(app) -> str:  # type: ignore[no-untyped-def]
    return "\n".join(str(n.message) for n in app._notifications)


async def test_new_env_file_and_config_edits_reload(tmp_path: Path) -> None:
    ws, config = demo_at(tmp_path / "demo")
    app = make_app(ws, config, tmp_path, watch=True)
    real = os.path.realpath(ws)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.5)  # the watcher is up
        (ws / ".env.production").write_text("TOKEN=x\n")
        took = await _wait(pilot, lambda: any(
            r.path == f"{real}/.env.production" for _, r in carveout_rows(app.workspace.plan)))
        assert took < 1.0, f"re-plan took {took:.2f} s"
        await pilot.pause(0.1)
        labels = {n.data.path: str(n.label) for n in tree_nodes(app.query_one(MountTree)) if n.data}
        assert "[denied]" in labels[f"{real}/.env.production"]
        assert f"+ none {real}/.env.production" in _notes(app)
        await pilot.press("2")  # the carveouts table is built when shown, from the new plan
        table = app.query_one("#carveouts-table")
        assert any(str(table.get_row_at(i)[1]) == "./.env.production"
                   for i in range(table.row_count))

        config.write_text(config.read_text().replace('"workspace-write"', '"read-only"'))
        await _wait(pilot, lambda: app.workspace.plan.policy.mode.value == "read-only")
        await pilot.pause(0.1)
        assert "read-only" in app.sub_title
        assert "mode: workspace-write -> read-only" in _notes(app)

        good = config.read_text()
        config.write_text(good + "\nno_such_key = 1\n")
        await _wait(pilot, lambda: app.workspace.config_error is not None)
        assert "no_such_key" in app.workspace.config_error
        assert not app.workspace.can_launch
        assert app.workspace.diagnostics[0].code == "config-error"
        config.write_text(good)
        await _wait(pilot, lambda: app.workspace.config_error is None)
        assert "config loads again" in _notes(app)


async def test_watcher_stops_on_exit(tmp_path: Path) -> None:
    ws, config = demo_at(tmp_path / "demo")
    app = make_app(ws, config, tmp_path, watch=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.3)
        watchers = [w for w in app.workers if w.name == "file watcher"]
        assert watchers and watchers[0].is_running
    assert app.watch_stopped.wait(timeout=3)


async def test_seccomp_panel_marks_the_rows_a_reload_changed(tmp_path: Path) -> None:
    """The network switched on in the config: the panel shows the new filter's rows, marks
    those the old one lacked, and counts what went."""
    from textual.widgets import DataTable, Label

    from sandboxtui.core.seccomp import HOST_FILTER, NETWORK_FILTER, rule_table

    ws, config = demo_at(tmp_path / "demo")
    app = make_app(ws, config, tmp_path, watch=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        await pilot.pause(0.5)  # the watcher is up
        table = app.query_one("#seccomp-table", DataTable)
        assert not any(str(table.get_row_at(i)[5]) for i in range(table.row_count))
        text = config.read_text()
        assert "network_access = false" in text  # the demo's config says so
        config.write_text(text.replace("network_access = false", "network_access = true"))
        await _wait(pilot, lambda: app.workspace.plan.policy.network.value == "on")
        await pilot.pause(0.2)
        # the notification names the changed setting (issue 15, item 6)
        assert "sandbox_workspace_write.network_access: false -> true" in _notes(app)
        rows = [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]
        assert [r[0] for r in rows] == [r["syscall"] for r in rule_table(HOST_FILTER)]
        marked = {(r[0], r[1]) for r in rows if r[5] == "new"}
        old = rule_table(NETWORK_FILTER)
        assert marked == {(r["syscall"], r["condition"]) for r in rule_table(HOST_FILTER)
                          if r not in old}
        gone = sum(r not in rule_table(HOST_FILTER) for r in old)
        summary = str(app.query_one("#seccomp-summary", Label).content)
        assert f"{len(marked)} rows new (marked), {gone} gone" in summary and gone > 0


async def test_an_expanded_node_shows_what_appears_beneath_it(tmp_path: Path) -> None:
    """Issue 15 item 6: a new services/worker/.env shows under an expanded services/ (and,
    once worker/ is expanded too, as denied inside it) on the live reload, without a jump."""
    ws, config = demo_at(tmp_path / "demo")
    (ws / "services").mkdir()
    app = make_app(ws, config, tmp_path, watch=True)
    real = os.path.realpath(ws)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.5)  # the watcher is up
        tree = app.query_one(MountTree)

        def node(path: str):  # type: ignore[no-untyped-def]
            return next((n for n in tree_nodes(tree) if n.data and n.data.path == path), None)

        services = node(f"{real}/services")
        assert services is not None
        services.expand()
        await pilot.pause(0.2)
        (ws / "services" / "worker").mkdir()
        await _wait(pilot, lambda: node(f"{real}/services/worker") is not None)
        worker = node(f"{real}/services/worker")
        worker.expand()
        await pilot.pause(0.2)
        (ws / "services" / "worker" / ".env").write_text("TOKEN=x\n")
        await _wait(pilot, lambda: (n := node(f"{real}/services/worker/.env")) is not None
                    and "[denied]" in str(n.label))
        assert node(f"{real}/services").is_expanded and node(f"{real}/services/worker").is_expanded
