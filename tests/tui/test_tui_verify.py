"""The TUI's verify action and the demo scenarios: real probes and real commands under the real
sandbox, driven by Pilot."""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path

import pytest
from textual.widgets import DataTable
from tui_support import SIZE, demo_at, make_app, real_caps

from sandboxtui.app import SandboxApp, VerifyFinished
from sandboxtui.core import verify as v
from sandboxtui.core.diagnostics import Capabilities
from sandboxtui.core.pipeline import Pipeline
from sandboxtui.core.plan import OpKind
from sandboxtui.widgets.approval_modal import ApprovalModal
from sandboxtui.widgets.demo_scenarios import DemoScenarios
from sandboxtui.widgets.mount_tree import MountTree
from sandboxtui.widgets.verify_results import VerifyResults

pytestmark = pytest.mark.anyio
# See test_tui_run.py: other runs' placeholders under /tmp must not change the plan mid-test.
NO_TMP = ("sandbox_workspace_write.exclude_slash_tmp=true",)


@pytest.fixture(scope="module")
def caps() -> Capabilities:
    return real_caps()


@pytest.fixture
def demo(tmp_path: Path) -> tuple[Path, Path]:
    return demo_at(tmp_path / "demo")


async def _wait(pilot, condition, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the UI")
        await pilot.pause(0.05)


def _cells(app: SandboxApp, table_id: str) -> list[list[str]]:
    table = app.query_one(table_id, DataTable)
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


async def test_verify_env_node_marks_it_verified(demo, tmp_path, caps) -> None:  # type: ignore[no-untyped-def]
    ws, config = demo
    app = make_app(ws, config, tmp_path, caps=caps, overrides=NO_TMP)
    async with app.run_test(size=SIZE) as pilot:
        tree = app.query_one(MountTree)
        env = f"{app.workspace.plan.cwd}/.env"
        assert tree.reveal(env)
        await pilot.pause()
        assert tree.cursor_node is not None and tree.cursor_node.data.path == env
        await pilot.press("v")
        panel = app.query_one(VerifyResults)
        await _wait(pilot, lambda: panel.report is not None)
        report = panel.report
        assert report.ok and report.path_status() == {env: "verified"}
        assert tree.marks == {env: "verified"}
        assert "✓ verified" in str(tree.cursor_node.label)
        rows = [r for r in _cells(app, "#verify-table") if r[0] == ".env"]
        assert {r[1] for r in rows} == {"read", "write", "rename"}
        assert all(r[2] == "denied" and r[3].startswith("denied (") and r[4] == "ok"
                   for r in rows)
        summary = str(app.query_one("#verify-summary").content)
        assert summary.startswith(f"{len(report.results)} probes, 0 mismatches, 0 expected")
        # A re-plan clears the marks: the probes answered for the previous plan.
        app.replan("test")
        await _wait(pilot, lambda: not tree.marks)
        await pilot.pause()
        assert "verified" not in str(tree.cursor_node.label)
        assert "stale" in str(app.query_one("#verify-summary").content)


async def test_verify_whole_plan_has_no_mismatch(demo, tmp_path, caps) -> None:  # type: ignore[no-untyped-def]
    ws, config = demo
    app = make_app(ws, config, tmp_path, caps=caps, overrides=NO_TMP)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("V")
        panel = app.query_one(VerifyResults)
        await _wait(pilot, lambda: panel.report is not None)
        assert not panel.loading and not app.verifying
        report = panel.report
        assert len(report.results) > 50
        assert report.ok, [r.to_json() for r in report.mismatches]
        assert app.query_one("#verify-table", DataTable).row_count == len(report.results)
        marks = app.query_one(MountTree).marks
        assert f"{app.workspace.plan.cwd}/.env" in marks
        assert set(marks.values()) == {"verified"}


async def test_verify_without_bwrap_is_an_error_notification(demo, tmp_path, caps) -> None:  # type: ignore[no-untyped-def]
    ws, config = demo
    broken = replace(caps, system_bwrap=False, vendored_bwrap=None)
    app = make_app(ws, config, tmp_path, caps=broken, overrides=NO_TMP)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("V")
        await _wait(pilot, lambda: not app.verifying)
        await pilot.pause()
        failed = [n for n in app._notifications if n.title.startswith("Verify failed")]
        assert failed and failed[0].severity == "error"
        assert "cannot be launched" in failed[0].message and "bwrap" in failed[0].message
        assert app.query_one(VerifyResults).report is None
        assert not app.query_one(MountTree).marks


async def test_demo_scenarios_predicted_beside_real(demo, tmp_path, caps) -> None:  # type: ignore[no-untyped-def]
    ws, config = demo
    app = make_app(ws, config, tmp_path, caps=caps, overrides=NO_TMP, demo=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("6")
        scenarios = app.query_one(DemoScenarios)
        rows = {r[0]: r for r in _cells(app, "#scenario-table")}
        predicted = {title: row[1] for title, row in rows.items()}
        assert predicted == {
            "write outside the workspace": "denied", "write .git/config": "denied",
            "read .env": "denied", "curl the host's listener": "denied",
            "git commit in the workspace": "denied", "socketpair": "allowed"}
        assert all(row[2] == "not run yet" for row in rows.values())
        # .git/config: enter on its row runs it through the run panel.
        table = app.query_one("#scenario-table", DataTable)
        table.focus()
        table.move_cursor(row=1)
        await pilot.press("enter")
        await _wait(pilot, lambda: "git-config" in scenarios.outcomes)
        outcome = scenarios.outcomes["git-config"]
        assert outcome.exit_code != 0 and "Read-only file system" in outcome.last_stderr
        row = _cells(app, "#scenario-table")[1]
        assert row[1] == "denied" and "Read-only file system" in row[2] and "agrees" in row[3]
        assert "x" not in (ws / ".git" / "config").read_text().splitlines()
        # read .env raises the approval modal: the user approves once, the kernel still denies.
        table.move_cursor(row=2)
        await pilot.press("enter")
        await _wait(pilot, lambda: isinstance(app.screen, ApprovalModal) and app.screen.armed
                    and bool(app.screen.query("#deny"))
                    and app.focused is app.screen.query_one("#deny"))
        await pilot.press("o")
        await _wait(pilot, lambda: "env" in scenarios.outcomes)
        assert "Permission denied" in scenarios.outcomes["env"].last_stderr
        # socketpair is allowed, and so it is.
        table.move_cursor(row=5)
        await pilot.press("enter")
        await _wait(pilot, lambda: "socketpair" in scenarios.outcomes)
        assert scenarios.outcomes["socketpair"].exit_code == 0
        assert "agrees" in _cells(app, "#scenario-table")[5][3]


async def test_no_scenarios_outside_the_demo(demo, tmp_path, caps) -> None:  # type: ignore[no-untyped-def]
    ws, config = demo
    app = make_app(ws, config, tmp_path, caps=caps, overrides=NO_TMP)
    async with app.run_test(size=SIZE) as pilot:
        ids = {b.binding.id for b in app.active_bindings.values()}
        assert {"verify.node", "verify.plan", "tab.verify"} <= ids
        await pilot.press("6")
        assert not app.query(DemoScenarios)


async def test_a_real_mismatch_is_marked_and_listed_first(demo, tmp_path, caps) -> None:  # type: ignore[no-untyped-def]
    """The argv loses the mount that hides .env (the plan keeps it): the kernel's answers
    disagree, and the tree and the table say so."""
    ws, config = demo
    app = make_app(ws, config, tmp_path, caps=caps, overrides=NO_TMP)
    async with app.run_test(size=SIZE) as pilot:
        plan = app.workspace.plan
        env, readme = f"{plan.cwd}/.env", f"{plan.cwd}/README.md"
        victim = next(op for op in plan.ops if op.kind is OpKind.DENY_FILE and op.dest == env)
        broken = replace(plan, ops=tuple(op for op in plan.ops if op is not victim))
        probes = v.probes_for_path(plan, readme)[0] + v.probes_for_path(plan, env)[0]
        who = v.sandbox_identity(sandboxed=True)
        spec = v.prepare_probes(broken, probes, v.probe_interpreter(plan, who), caps=caps)
        results = v.compare(probes, [v.predict(plan, p, who) for p in probes],
                            v.run_probes(spec, len(probes)))
        report = v.VerifyReport(Pipeline.BWRAP, tuple(results), (), 1, 0.0, (), ())
        app.post_message(VerifyFinished(app.workspace, env, report))
        tree = app.query_one(MountTree)
        await _wait(pilot, lambda: tree.marks)
        assert tree.marks == {env: "mismatch", readme: "verified"}
        assert tree.reveal(env)
        await pilot.pause()
        assert "✗ MISMATCH" in str(tree.cursor_node.label)
        rows = _cells(app, "#verify-table")
        first = rows[0]
        assert first[0] == ".env" and first[1] == "read" and first[2] == "denied"
        assert first[3] == "allowed" and first[4] == "MISMATCH"
        assert rows[-1][4] == "ok"
        assert "0 mismatches" not in str(app.query_one("#verify-summary").content)
        assert any(n.severity == "error" and n.title.startswith("Verified")
                   for n in app._notifications)


async def test_legacy_for_root_verifies_bubblewraps_picture(demo, tmp_path, caps) -> None:  # type: ignore[no-untyped-def]
    """The app runs as root here, and legacy Landlock cannot stop a root command from
    chmodding host files: asking for it keeps bubblewrap, the warnings say why, and verify
    finds `.env` hidden, not an expected (unenforced) mismatch. (A normal user's legacy verify,
    with its expected mismatches, is test_verify.py's, launched as nobody.)"""
    assert os.geteuid() == 0, "the TUI tests run as root"
    ws, config = demo
    # Without its `secrets = none` entry legacy Landlock could express the demo: only the
    # launcher being root keeps it on bubblewrap.
    config.write_text("".join(line for line in config.read_text().splitlines(keepends=True)
                              if "default_permissions" not in line and "secrets" not in line
                              and "[permissions.demo" not in line))
    app = make_app(ws, config, tmp_path, caps=caps, overrides=NO_TMP)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("l")  # ask for the legacy Landlock pipeline
        await _wait(pilot, lambda: app.workspace.plan.policy.use_legacy_landlock)
        assert app.workspace.pipeline == "bubblewrap" and app.workspace.choice.landlock is None
        assert "legacy-root" in [d.code for d in app.workspace.diagnostics]
        env = f"{app.workspace.plan.cwd}/.env"
        app.query_one(MountTree).reveal(env)
        await pilot.pause()
        await pilot.press("v")
        panel = app.query_one(VerifyResults)
        await _wait(pilot, lambda: panel.report is not None)
        assert panel.report.ok and not panel.report.expected_mismatches
        assert panel.report.pipeline is Pipeline.BWRAP
        assert app.query_one(MountTree).marks == {env: "verified"}
