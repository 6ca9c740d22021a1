"""Pilot tests of the panels on the demo workspace: each shows what the core computed."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest
from rich.console import Console
from textual.widgets import DataTable, Label, Static, TabbedContent, TextArea
from tui_support import SIZE, demo_at, make_app, tree_nodes, workspace_for

from sandboxtui.app import SandboxApp
from sandboxtui.core.diagnostics import Capabilities
from sandboxtui.core.pipeline import Pipeline, startup_diagnostics
from sandboxtui.core.seccomp import HOST_FILTER, NETWORK_FILTER, pseudo_filter, rule_table
from sandboxtui.widgets.carveouts import shown_path
from sandboxtui.widgets.help_screen import HelpScreen
from sandboxtui.widgets.mount_tree import Category, MountTree
from sandboxtui.widgets.node_details import NodeDetails
from sandboxtui.widgets.switcher import ProfilePicker
from sandboxtui.widgets.warnings import WarningsPanel

pytestmark = pytest.mark.anyio


@pytest.fixture
def demo(tmp_path: Path) -> tuple[Path, Path]:
    return demo_at(tmp_path / "demo")


def line_of(config: Path, needle: str) -> str:
    """`config:N` for the first line containing `needle` (what provenance must say)."""
    n = next(i for i, line in enumerate(config.read_text().splitlines(), 1) if needle in line)
    return f"{config}:{n}"


def _labels(tree: MountTree) -> dict[str, str]:
    return {n.data.path: str(n.label) for n in tree_nodes(tree) if n.data is not None}


def _rows(table: DataTable) -> list[list[str]]:
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


def _details(app) -> str:  # type: ignore[no-untyped-def]
    body = app.query_one(NodeDetails).query_one("#details-body", Static)
    console = Console(width=200, record=True, color_system=None)
    console.print(body.content)
    return console.export_text()


async def test_tree_marks_each_node_by_access(demo: tuple[Path, Path], tmp_path: Path) -> None:
    ws, config = demo
    app = make_app(ws, config, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        tree = app.query_one(MountTree)
        labels = _labels(tree)
        real = os.path.realpath(ws)
        assert "[denied]" in labels[f"{real}/.env"]
        assert "sensitive path .env" in labels[f"{real}/.env"]
        assert "[masked-missing]" in labels[f"{real}/.agents"]
        assert "[ro]" in labels[f"{real}/.codex"] and "protected" in labels[f"{real}/.codex"]
        assert "[denied]" in labels[f"{real}/secrets"]
        assert "[rw]" in labels[real] and "workspace root" in labels[real]
        assert "[proc]" in labels["/proc"] and "[dev]" in labels["/dev"]
        assert "-> README.md" in labels[f"{real}/readme-link"]
        # Lazy: a directory is listed only when expanded.
        assert f"{real}/src/app.py" not in labels
        assert f"{real}/sub/.env.local" not in labels
        sub = next(n for n in tree_nodes(tree) if n.data and n.data.path == f"{real}/sub")
        sub.expand()
        await pilot.pause()
        labels = _labels(tree)
        assert "[denied]" in labels[f"{real}/sub/.env.local"]
        plan = app.workspace.plan
        for node in tree_nodes(tree):
            if node.data is None:
                continue
            path = node.data.path
            category, rule = tree.category(node.data)
            assert rule == (plan.explain(path).rule if os.path.islink(path)
                            else plan.rule_for(path))
            if category is Category.DENIED:
                assert plan.explain(path).access.value == "none"


async def test_details_show_rule_provenance_and_ops(demo: tuple[Path, Path],
                                                    tmp_path: Path) -> None:
    ws, config = demo
    app = make_app(ws, config, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        tree = app.query_one(MountTree)
        real = os.path.realpath(ws)
        env = next(n for n in tree_nodes(tree) if n.data and n.data.path == f"{real}/.env")
        tree.move_cursor(env)
        await pilot.pause()
        text = _details(app)
        assert "sensitive path .env" in text and "none" in text and "denied" in text
        assert f"--ro-bind <empty file, mode 000> {real}/.env" in text
        assert "Permission denied" in text
        # A config rule shows its file and line.
        secrets = next(n for n in tree_nodes(tree) if n.data and n.data.path == f"{real}/secrets")
        tree.move_cursor(secrets)
        await pilot.pause()
        text = _details(app)
        assert line_of(config, "secrets") in text
        assert f"--perms 000 --tmpfs {real}/secrets" in text


async def test_find_jumps_to_a_path(demo: tuple[Path, Path], tmp_path: Path) -> None:
    ws, config = demo
    app = make_app(ws, config, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("slash", *"sub/.env.local", "enter")
        await pilot.pause()
        tree = app.query_one(MountTree)
        real = os.path.realpath(ws)
        assert tree.cursor_node is not None and tree.cursor_node.data is not None
        assert tree.cursor_node.data.path == f"{real}/sub/.env.local"
        assert app.focused is tree
        assert "sensitive path .env.*" in _details(app)
        # A path that does not exist is still explained.
        await pilot.press("slash", *"/nonexistent/thing", "enter")
        await pilot.pause()
        assert "read access: full" in _details(app)


async def test_carveouts_and_legacy_pipeline(demo: tuple[Path, Path], tmp_path: Path) -> None:
    ws, config = demo
    app = make_app(ws, config, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        table = app.query_one("#carveouts-table", DataTable)
        rows = _rows(table)
        by_path = {r[1]: r for r in rows}  # beneath the workspace from ./
        assert by_path["./.env"][0] == "denied"
        assert by_path["./.git"][0] == "protected ro"
        assert by_path["./secrets"][4] == line_of(config, "secrets")
        extra = os.path.realpath(ws.parent / "extra-root")
        assert by_path[extra][0] == "writable"
        assert by_path[extra][4] == line_of(config, "writable_roots")
        assert not any(r[0] == "unenforced" for r in rows)
        await pilot.press("l")  # ask for legacy Landlock: this app runs as root
        await pilot.pause()
        workspace = app.workspace
        assert workspace.plan.policy.use_legacy_landlock
        assert workspace.pipeline == "bubblewrap"
        # root never gets Landlock (it could not stop a root command chmodding host files)...
        assert os.geteuid() != 0 or "legacy-root" in [d.code for d in workspace.diagnostics]
        # ...nor would a normal user here: Landlock cannot express the `secrets = none` entry
        user, diags = startup_diagnostics(workspace.plan, workspace.caps, euid=65534)
        assert user.pipeline is Pipeline.BWRAP and "cannot express" in user.reason
        assert "legacy-inexpressible" in [d.code for d in diags]
        assert any("pipeline: bubblewrap -> bubblewrap" in str(n.message)
                   for n in app._notifications)


async def test_legacy_pipeline_lists_unenforced_paths(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / ".env").write_text("SECRET=1\n")
    config = tmp_path / "config.toml"
    config.write_text('sandbox_mode = "workspace-write"\n')
    # The panels show the choice made for the launcher; this process is root, which never
    # gets legacy Landlock, so the picture is built with a normal user's choice.
    legacy = workspace_for(ws, config, overrides=("features.use_legacy_landlock=true",))
    choice, diags = startup_diagnostics(legacy.plan, legacy.caps, euid=65534)
    app = SandboxApp(replace(legacy, choice=choice, diagnostics=diags),
                     audit_path=str(tmp_path / "audit.jsonl"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await pilot.pause()
        assert app.workspace.pipeline == "legacy-landlock"
        rows = _rows(app.query_one("#carveouts-table", DataTable))
        unenforced = {r[1] for r in rows if r[0] == "unenforced"}
        model = app.workspace.choice.landlock
        assert model is not None
        assert unenforced == {shown_path(r.path, app.workspace.plan.cwd)
                              for r in model.unenforced}
        assert "./.env" in unenforced
        assert "legacy-landlock" in app.sub_title
        await pilot.press("l")
        await pilot.pause()
        rows = _rows(app.query_one("#carveouts-table", DataTable))
        assert not any(r[0] == "unenforced" for r in rows)


async def test_seccomp_table_is_the_loaded_filter(demo: tuple[Path, Path],
                                                  tmp_path: Path) -> None:
    ws, config = demo
    app = make_app(ws, config, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        table = app.query_one("#seccomp-table", DataTable)
        rows = _rows(table)
        expected = rule_table(NETWORK_FILTER)
        assert [r[0] for r in rows] == [r["syscall"] for r in expected]
        allowed = [r for r in rows if r[2] == "allow" and r[0] != "*"]
        assert {r[0] for r in allowed} == {r["syscall"] for r in expected
                                           if r["action"] == "allow" and r["syscall"] != "*"}
        assert {"bind", "sendto", "shutdown"} <= {r[0] for r in allowed}
        assert all("exception" in r[4] for r in allowed)
        assert [r[0] for r in rows if r[2] == "gate"] == ["connect", "listen"]
        await pilot.press("r")
        raw = app.query_one("#seccomp-raw", TextArea)
        assert raw.display and not table.display
        assert raw.text == pseudo_filter(NETWORK_FILTER)
        await pilot.press("r")
        assert table.display and not raw.display


async def test_seccomp_with_network_on(demo: tuple[Path, Path], tmp_path: Path) -> None:
    ws, config = demo
    app = make_app(ws, config, tmp_path,
                   overrides=("sandbox_workspace_write.network_access=true",))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        summary = app.query_one("#seccomp-summary", Label)
        assert "host-safety" in str(summary.content)
        table = app.query_one("#seccomp-table", DataTable)
        assert table.display
        assert [r[0] for r in _rows(table)] == [r["syscall"] for r in rule_table(HOST_FILTER)]
        assert "keyctl" in [r[0] for r in _rows(table)]


async def test_warnings_name_the_missing_system_bwrap(demo: tuple[Path, Path],
                                                      tmp_path: Path) -> None:
    ws, config = demo
    app = make_app(ws, config, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        panel = app.query_one(WarningsPanel)
        causes = [d.cause for d in panel.workspace.diagnostics]
        assert any("/usr/bin/bwrap is missing" in c and "vendored" in c for c in causes)
        warnings = sum(d.severity.value == "warning" for d in panel.workspace.diagnostics)
        label = str(app.query_one(TabbedContent).get_tab("warnings").label)
        assert label == f"Warnings {warnings}W"


async def test_unusable_bwrap_refuses_launches(demo: tuple[Path, Path], tmp_path: Path) -> None:
    ws, config = demo
    broken = Capabilities("/usr/bin/bwrap", True, None, "setting up uid map: Permission denied",
                          7, True)
    app = make_app(ws, config, tmp_path, caps=broken)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        assert not app.workspace.can_launch
        codes = [d.code for d in app.workspace.diagnostics]
        assert codes[0] == "userns-apparmor"  # its message is Ubuntu's (core/userns.py)
        await pilot.press("6", *"true", "enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        record = app.query_one("#run-panel").records[-1]
        assert record.exit_code == 4 and "refused" in record.note


async def test_settings_carry_provenance(demo: tuple[Path, Path], tmp_path: Path) -> None:
    ws, config = demo
    app = make_app(ws, config, tmp_path, overrides=("sensitive_path_precheck_mode=\"block\"",))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("5")
        rows = {r[0]: r for r in _rows(app.query_one("#settings-table", DataTable))}
        assert rows["sandbox_mode"][1:] == ["workspace-write", line_of(config, "sandbox_mode")]
        assert rows["sensitive_path_precheck_mode"][2].startswith("-c ")
        assert rows["sandbox_workspace_write.exclude_slash_tmp"][2] == "default"
        assert rows["(pipeline)"][1] == "bubblewrap"


async def test_profile_switch_replans(demo: tuple[Path, Path], tmp_path: Path) -> None:
    ws, config = demo
    app = make_app(ws, config, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("p")
        assert isinstance(app.screen, ProfilePicker)
        await pilot.press("down", "enter")
        await pilot.pause()
        assert app.workspace.plan.policy.profile == "locked"
        assert app.workspace.plan.policy.mode.value == "read-only"
        assert "read-only" in app.sub_title and "profile locked" in app.sub_title
        tree = app.query_one(MountTree)
        assert "[ro]" in _labels(tree)[os.path.realpath(ws)]
        assert any("mode: workspace-write -> read-only" in str(n.message)
                   for n in app._notifications)


async def test_help_palette_theme_and_footer(demo: tuple[Path, Path], tmp_path: Path) -> None:
    ws, config = demo
    app = make_app(ws, config, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        ids = {b.id for b in app.BINDINGS}
        assert None not in ids and len(ids) == len(app.BINDINGS)
        names = {c.title for c in app.get_system_commands(app.screen)}
        assert {"Profile: locked", "Pipeline: legacy Landlock", "Show Run", "Help"} <= names
        dark = app.current_theme.dark
        await pilot.press("t")
        assert app.current_theme.dark is not dark
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_no_color_is_respected(demo: tuple[Path, Path], tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    ws, config = demo
    app = make_app(ws, config, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.no_color
        assert "[denied]" in _labels(app.query_one(MountTree))[f"{os.path.realpath(ws)}/.env"]


async def test_danger_full_access_is_shown_unsandboxed(demo: tuple[Path, Path],
                                                       tmp_path: Path) -> None:
    ws, config = demo
    app = make_app(ws, config, tmp_path, sandbox_mode="danger-full-access")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert "UNSANDBOXED" in app.sub_title
        labels = _labels(app.query_one(MountTree))
        assert all("UNSANDBOXED" in label for label in labels.values())
        assert "unsandboxed" in [d.code for d in app.workspace.diagnostics]
        await pilot.press("3")
        assert "no sandbox" in str(app.query_one("#seccomp-summary", Label).content)
