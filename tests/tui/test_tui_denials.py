"""The Denials view (issue 14): with trace on (by default where strace is installed; ctrl+r
turns it off and on), a run in the run panel
goes through the real tracer over the real sandbox, and the view lists what the sandbox
refused live, grouped and counted as `sandboxtui trace` prints it, each explained. Enter
shows the path in the mount tree; `a` shows the exact change to the config file, writes it
(comments kept) and the re-planned view marks the denial allowed; `r` runs the command again,
and the operation is no longer refused; where the core suggests nothing, nothing is
offered."""

from __future__ import annotations

import html
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from textual.widgets import DataTable, Input, Log, Static, TabbedContent
from tui_support import FIXED_CAPS, SIZE, demo_at, make_app, real_caps, run_in_panel

from sandboxtui.app import SandboxApp
from sandboxtui.core import trace
from sandboxtui.core.agents import resolve_policy
from sandboxtui.core.plan import build_plan
from sandboxtui.core.trace import analyse
from sandboxtui.model import Options, load_workspace
from sandboxtui.widgets.apply_suggestion import ApplySuggestion
from sandboxtui.widgets.denials import NOW_ALLOWED, DenialsView
from sandboxtui.widgets.node_details import NodeDetails
from sandboxtui.widgets.run_panel import RunPanel

pytestmark = pytest.mark.anyio
NO_PRECHECK = ('sensitive_path_precheck_mode="off"',)  # the command names .env on purpose


def _row(view: DenialsView, op: str, suffix: str) -> int:
    return next(i for i, d in enumerate(view.rows) if d.op == op and d.path.endswith(suffix))


async def _wait(pilot, condition, what: str, tries: int = 200) -> None:  # type: ignore[no-untyped-def]
    for _ in range(tries):
        if condition():
            return
        await pilot.pause(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def test_denials_live_explained_jump_and_apply(tmp_path: Path) -> None:
    ws, config = demo_at(tmp_path / "demo")
    real = os.path.realpath(ws)
    app = make_app(ws, config, tmp_path, caps=real_caps(), overrides=NO_PRECHECK)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("6")
        panel = app.query_one(RunPanel)
        view = app.query_one(DenialsView)
        assert panel.tracing and view.display  # on by default: strace is installed
        status = str(app.query_one("#run-status").render())
        assert status.startswith("ready; trace on (ctrl+r: off), syscall-heavy commands take "
                                 "up to 10x as long;"), status

        # live: the first refusal is listed while the command still runs
        app.query_one("#run-input", Input).value = (
            "sh -c 'mkdir secrets/new; sleep 3; echo x > /etc/sbx-tui; "
            "echo y > /etc/sbx-tui; cat .env'")
        await pilot.press("enter")
        await _wait(pilot, lambda: view.running and view.rows, "a live denial")
        assert panel.running is not None
        assert [(d.op, d.path) for d in view.rows] == [("create", f"{real}/secrets/new")]
        await _wait(pilot, lambda: panel.records and not view.running, "the final report")

        got = {(d.op, d.path, d.errno, d.access, d.count) for d in view.rows}
        assert got == {("write", "/etc/sbx-tui", "EROFS", "ro", 2),
                       ("create", f"{real}/secrets/new", "EACCES", "none", 1),
                       ("read", f"{real}/.env", "EACCES", "none", 1)}, view.rows
        assert view.rows[0].path == "/etc/sbx-tui"  # by count, as the CLI prints them
        output = "\n".join(app.query_one("#run-output", Log).lines)
        assert "Read-only file system" in output and "tracing on" not in output  # no hint
        title = str(app.query_one("#denials-title").render())
        assert "3 refused by the sandbox" in title and "finished" in title

        table = view.query_one(DataTable)
        table.focus()
        detail = view.query_one("#denials-detail", Static)
        table.move_cursor(row=_row(view, "read", "/.env"))
        await pilot.pause()
        text = str(detail.render())
        assert "sensitive" in text and "no change suggested" in text
        await pilot.press("a")  # nothing is offered where the core suggests nothing
        await pilot.pause()
        assert not isinstance(app.screen, ApplySuggestion)
        assert "nothing to apply" in "\n".join(str(n.message) for n in app._notifications)

        table.move_cursor(row=_row(view, "create", "/secrets/new"))
        await pilot.pause()
        text = str(detail.render())
        assert f'permissions.demo.filesystem."{ws}/secrets"="write"' in text
        assert "widens: " in text and "becomes writable instead of denied" in text
        await pilot.press("a")
        await pilot.pause()
        modal = app.screen
        assert isinstance(modal, ApplySuggestion)
        shown = "\n".join(str(s.render()) for s in modal.query(Static))
        assert f'-"{ws}/secrets" = "none"' in shown and f'+"{ws}/secrets" = "write"' in shown
        assert "becomes writable instead of denied" in shown
        await pilot.press("y")
        await _wait(pilot, lambda: not isinstance(app.screen, ApplySuggestion), "the write")
        written = config.read_text()
        assert f'"{ws}/secrets" = "write"' in written
        assert written.startswith("# sandboxtui demo configuration\n")  # comments kept
        await _wait(pilot, lambda: NOW_ALLOWED in str(table.get_row_at(
            _row(view, "create", "/secrets/new"))[4]), "the re-planned view")
        assert "Applied to" in "\n".join(str(n.title) for n in app._notifications)
        etc = _row(view, "write", "/etc/sbx-tui")
        assert NOW_ALLOWED not in str(table.get_row_at(etc)[4])

        # r: the same command again, under the new config: the mkdir is no longer refused
        records = len(panel.records)
        await pilot.press("r")
        await _wait(pilot, lambda: len(panel.records) > records and not view.running
                    and view.report is not None and len(view.rows) == 2, "the second run",
                    tries=400)
        assert {(d.op, d.path) for d in view.rows} == {("write", "/etc/sbx-tui"),
                                                       ("read", f"{real}/.env")}
        assert (ws / "secrets" / "new").is_dir()

        # enter: the path in the mount tree, with its details
        table.move_cursor(row=_row(view, "read", "/.env"))
        await pilot.press("enter")
        await pilot.pause()
        assert app.query_one(TabbedContent).active == "tree"
        assert app.query_one(NodeDetails).path == f"{real}/.env"


async def test_untraced_runs_list_nothing(tmp_path: Path) -> None:
    ws, config = demo_at(tmp_path / "demo")
    app = make_app(ws, config, tmp_path, caps=real_caps())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("6")
        await pilot.press("ctrl+r")
        assert not app.query_one(RunPanel).tracing
        assert "trace off: runs are not traced" in str(app.query_one("#run-status").render())
        record = await run_in_panel(app, pilot, "sh -c 'echo x > /etc/sbx-untraced'")
        assert record.exit_code == 2
        view = app.query_one(DenialsView)
        assert view.report is None and not view.display


async def test_denials_fit_beside_the_output_at_80x24(tmp_path: Path) -> None:
    ws, config = demo_at(tmp_path / "demo")
    app = make_app(ws, config, tmp_path, caps=real_caps())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("6")
        record = await run_in_panel(app, pilot, "sh -c 'echo x > /etc/sbx-small'")
        assert record.exit_code == 2
        view = app.query_one(DenialsView)
        await _wait(pilot, lambda: view.rows and not view.running, "the report")
        output = app.query_one("#run-output")
        screen = app.screen.region
        # stacked under the output, in the history's place; both on screen, none clipped
        assert not app.query_one("#run-history").display
        assert output.region.height >= 3 and view.region.height >= 8
        assert screen.contains_region(view.region) and screen.contains_region(output.region)
        assert view.region.y >= output.region.bottom
        table = view.query_one(DataTable)
        assert table.row_count == 1 and "/etc/sbx-small" in str(table.get_row_at(0)[5])
        assert "/etc/sbx-small" in str(view.query_one("#denials-detail").render())


async def test_an_agents_file_is_never_edited(tmp_path: Path) -> None:
    """With --codex the policy is Codex's config: `a` names the -c flag and writes nothing."""
    ws, _ = demo_at(tmp_path / "demo")
    codex = tmp_path / "codex.toml"
    codex.write_text('sandbox_mode = "workspace-write"  # Codex\'s own\n')
    out = Path(tempfile.mkdtemp(dir="/var/tmp", prefix="sandboxtui-agent-"))
    app = SandboxApp(load_workspace(Options(cwd=str(ws), codex=str(codex)), FIXED_CAPS),
                     watch=False, audit_path=str(tmp_path / "audit.jsonl"))
    try:
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("6")
            view = app.query_one(DenialsView)
            plan = app.workspace.plan
            text = (f'7 openat(AT_FDCWD, "{out}/f", O_WRONLY|O_CREAT, 0666) = -1 EROFS '
                    "(Read-only file system)\n")
            report = analyse(text, plan, 0, lambda o: build_plan(resolve_policy(
                cwd=plan.cwd, codex=str(codex), overrides=(o,)), plan.cwd), network_on=False)
            (denial,) = report.denials
            assert denial.suggestion is not None and denial.suggestion.flag is not None
            view.post_message(DenialsView.Report(report, "touch f", running=False))
            await pilot.pause()
            view.query_one(DataTable).focus()
            await pilot.press("a")
            await pilot.pause()
            assert not isinstance(app.screen, ApplySuggestion)
            said = "\n".join(str(n.message) for n in app._notifications)
            assert "does not edit an agent's file" in said and denial.suggestion.flag in said
    finally:
        shutil.rmtree(out)
    assert codex.read_text() == 'sandbox_mode = "workspace-write"  # Codex\'s own\n'


async def test_without_the_tracer_a_traced_run_is_refused(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    """strace gone after trace was turned on: the run is refused (exit 4, the remedy), never
    run untraced."""
    ws, config = demo_at(tmp_path / "demo")
    app = make_app(ws, config, tmp_path, caps=real_caps())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("6")
        assert app.query_one(RunPanel).tracing
        monkeypatch.setattr(trace.shutil, "which", lambda *a, **k: None)
        record = await run_in_panel(app, pilot, "touch ran-untraced")
        assert record.exit_code == 4 and "apt-get install strace" in record.note
        assert not (ws / "ran-untraced").exists()


@pytest.mark.parametrize("size", [SIZE, (80, 24)], ids=["160x50", "80x24"])
async def test_without_strace_trace_is_off_and_says_why(tmp_path: Path, size: tuple[int, int],
                                                        monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    """No strace at start: trace is off, the ready line says why and the remedy (on screen at
    80 columns too), ctrl+r refuses, and runs go untraced with the hint."""
    ws, config = demo_at(tmp_path / "demo")
    app = make_app(ws, config, tmp_path, caps=real_caps())
    which = shutil.which
    monkeypatch.setattr(trace.shutil, "which",
                        lambda name, *a, **k: None if name == "strace" else which(name, *a, **k))
    async with app.run_test(size=size) as pilot:
        await pilot.press("6")
        panel, view = app.query_one(RunPanel), app.query_one(DenialsView)
        assert not panel.tracing and not view.display
        why = "ready; trace off: strace is not installed (apt-get install strace);"
        assert str(app.query_one("#run-status").render()).startswith(why)
        assert why in html.unescape(app.export_screenshot()).replace("\xa0", " ")
        await pilot.press("ctrl+r")
        assert not panel.tracing and not view.display
        assert "apt-get install strace" in str(app.query_one("#run-status").render())
        record = await run_in_panel(app, pilot, "sh -c 'echo x > /etc/sbx-no-strace'")
        assert record.exit_code == 2 and view.report is None
        assert "ctrl+r turns tracing on" in "\n".join(app.query_one("#run-output", Log).lines)


async def test_a_traced_run_behaves_as_an_untraced_one(tmp_path: Path) -> None:
    """Same exit code (a signal's too), same output lines of both streams (each in its order;
    the two pipes interleave as their readers take them); only the untraced run gets the hint
    line (the traced one has the Denials view)."""
    ws, config = demo_at(tmp_path / "demo")
    app = make_app(ws, config, tmp_path, caps=real_caps())
    command = ("sh -c 'echo out; echo err >&2; echo x > /etc/sbx-same; printf partial; "
               "kill -TERM $$'")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("6")
        panel, log = app.query_one(RunPanel), app.query_one("#run-output", Log)
        transcripts = []
        for traced in (True, False):
            assert panel.tracing is traced
            log.clear()
            record = await run_in_panel(app, pilot, command)
            assert record.exit_code == 128 + 15, record
            transcripts.append(sorted(line for line in log.lines
                                      if not line.startswith(("sandboxtui: ", "[exit "))))
            await pilot.press("ctrl+r")
        assert transcripts[0] == transcripts[1]
        assert {"out", "err", "partial"} <= set(transcripts[0])
        assert any("/etc/sbx-same: Read-only file system" in line for line in transcripts[0])
