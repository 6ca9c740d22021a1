"""The terminal (issue 11, item 5): a command that shares the user's terminal cannot leave it
changed (termios modes, window size), and nothing a command or a hostile workspace writes is
interpreted by the host terminal: `run`'s inherited terminal, the TUI's run panel, and every
untrusted string the CLI prints (`plan`, `explain`, `approvals`)."""

from __future__ import annotations

import fcntl
import json
import os
import select
import shlex
import struct
import subprocess
import tempfile
import termios
import time
from pathlib import Path

import pytest
from conftest import RUNNERS, Runner, chown_tree, make_workspace
from textual.widget import Widget
from textual.widgets import DataTable, Input, Log
from tui_support import SIZE, demo_at, make_app, real_caps

from sandboxtui.widgets.approval_modal import ApprovalModal
from sandboxtui.widgets.run_panel import RunPanel


def _legacy_and_bwrap(user: str, bwrap: str) -> list[tuple[str, str, str]]:
    """Legacy Landlock runs no bwrap, and a root launcher never runs on it."""
    legacy = bwrap == "system" and user != "root"
    return [(user, bwrap, "bwrap")] + ([(user, bwrap, "legacy")] if legacy else [])


PIPELINES = [p for user, bwrap in RUNNERS for p in _legacy_and_bwrap(user, bwrap)]


@pytest.fixture(params=PIPELINES, ids=lambda p: "-".join(p))
def any_runner(request: pytest.FixtureRequest, shared_dir: Path) -> Runner:
    user, bwrap, pipeline = request.param
    return Runner(user, bwrap, shared_dir / "config.toml", pipeline=pipeline)


@pytest.fixture
def ws(shared_dir: Path, any_runner: Runner) -> Path:
    base = Path(tempfile.mkdtemp(dir=shared_dir))
    base.chmod(0o755)
    workspace = make_workspace(base)
    chown_tree(workspace, any_runner.user)
    return workspace


def _drain(master: int) -> bytes:
    out = b""
    while select.select([master], [], [], 0.2)[0]:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: no process holds the slave open any more
            break
        if not chunk:
            break
        out += chunk
    return out


# The command changes the terminal, shows the change took effect inside, then ends one way or
# another: on its own, by a signal, or killed by the launcher's timeout.
ENDS = {
    "exit": (["sh", "-c", "stty -echo -isig rows 3 cols 17 && stty size"], 0),
    "signal": (["sh", "-c", "stty -echo -isig rows 3 cols 17 && stty size && kill -9 $$"], 137),
    "timeout": (["sh", "-c", "stty -echo -isig rows 3 cols 17 && stty size && sleep 30"], 137),
}


@pytest.mark.parametrize("end", list(ENDS))
def test_terminal_state_is_restored_after_the_command(any_runner: Runner, ws: Path,
                                                      end: str) -> None:
    """`stty -echo -isig rows 3` inside the sandbox, on the terminal `run` shares with it:
    once the launcher exits, modes and window size are exactly what they were before."""
    master, slave = os.openpty()
    try:
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 41, 101, 0, 0))
        before = termios.tcgetattr(slave)
        size_before = fcntl.ioctl(slave, termios.TIOCGWINSZ, bytes(8))
        assert before[3] & termios.ECHO and before[3] & termios.ISIG
        command, code = ENDS[end]
        timeout = ["--timeout", "3"] if end == "timeout" else []
        argv = [*any_runner.prefix(), "run", "--config", str(any_runner.config), "--cwd",
                str(ws), *any_runner.bwrap_options(), *timeout, "--", *command]
        env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
        proc = subprocess.run(argv, stdin=slave, stdout=slave, stderr=subprocess.PIPE,
                              env=env, timeout=60, start_new_session=True)
        shown = _drain(master).decode(errors="replace")
        assert proc.returncode == code, proc.stderr.decode(errors="replace")
        assert "3 17" in shown, f"the command did not change the terminal: {shown!r}"
        assert termios.tcgetattr(slave) == before
        assert fcntl.ioctl(slave, termios.TIOCGWINSZ, bytes(8)) == size_before
    finally:
        os.close(master)
        os.close(slave)


def test_exclusive_mode_and_stopped_output_are_undone(any_runner: Runner, ws: Path) -> None:
    """TIOCEXCL (every later open of the terminal fails for non-root: sudo, ssh prompts) and
    tcflow(TCOOFF) (the terminal shows nothing more) set inside the sandbox are undone."""
    master, slave = os.openpty()
    try:
        code = ("import fcntl, termios; fcntl.ioctl(0, termios.TIOCEXCL); "
                "termios.tcflow(1, termios.TCOOFF)")
        argv = [*any_runner.prefix(), "run", "--config", str(any_runner.config), "--cwd",
                str(ws), *any_runner.bwrap_options(), "--", "python3", "-c", code]
        env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
        proc = subprocess.run(argv, stdin=slave, stdout=slave, stderr=subprocess.PIPE,
                              env=env, timeout=60, start_new_session=True)
        assert proc.returncode == 0, proc.stderr.decode(errors="replace")
        _drain(master)
        exclusive = fcntl.ioctl(slave, 0x80045440, bytes(4))  # TIOCGEXCL
        assert struct.unpack("i", exclusive)[0] == 0
        os.set_blocking(slave, False)  # a write to a stopped terminal waits for ever
        try:
            os.write(slave, b"still-flowing\n")
        except BlockingIOError:
            pytest.fail("the terminal's output is still stopped")
        assert b"still-flowing" in _drain(master)
    finally:
        os.close(master)
        os.close(slave)


# --- untrusted strings the CLI prints --------------------------------------------------------

ESC = "\x1b"
TITLE = "\x1b]0;pwned\x07"  # OSC 0: set the window title
HOSTILE_FILE = f".env.{TITLE}\nforged line"
HOSTILE_DIR = "d\x1b[2J\x9b31m\u202e"  # clear screen, a one-byte CSI, a bidi override


def _cli(runner: Runner, ws: Path, *args: str,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    command, rest = args[0], args[1:]
    options = [] if command == "approvals" else ["--config", str(runner.config), "--cwd",
                                                 str(ws), *runner.bwrap_options()]
    argv = [*runner.prefix(), command, *options, *rest]
    base = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
    return subprocess.run(argv, capture_output=True, text=True, timeout=60,
                          env={**base, **(env or {})})


def _assert_inert(out: str) -> None:
    assert ESC not in out and "\x07" not in out and "\x9b" not in out and "\u202e" not in out


def test_plan_explain_and_precheck_print_hostile_names_inert(runner: Runner,
                                                            workspace: Path) -> None:
    """A workspace file named with an OSC sequence and a newline (a sensitive name, so the plan
    lists it), and a directory named with a clear-screen sequence: `plan`, `explain`, `verify`
    and the precheck's refusal show them escaped, on one line each."""
    (workspace / HOSTILE_FILE).write_text("secret\n")
    (workspace / HOSTILE_DIR).mkdir()
    (workspace / HOSTILE_DIR / ".env").write_text("secret\n")
    chown_tree(workspace, runner.user)
    plan = _cli(runner, workspace, "plan")
    assert plan.returncode == 0, plan.stderr
    _assert_inert(plan.stdout + plan.stderr)
    assert "\\x1b]0;pwned\\x07\\nforged line" in plan.stdout
    assert not any(line.startswith("forged line") for line in plan.stdout.splitlines())
    assert "d\\x1b[2J\\x9b31m\\u202e" in plan.stdout
    for path in (HOSTILE_FILE, f"{HOSTILE_DIR}/.env"):
        explain = _cli(runner, workspace, "explain", path)
        assert explain.returncode == 0, explain.stderr
        _assert_inert(explain.stdout + explain.stderr)
        assert "access:   none" in explain.stdout
    block = _cli(runner, workspace, "run", "-c", 'sensitive_path_precheck_mode="block"', "--",
                 "cat", HOSTILE_FILE, f"{TITLE}[bold]x")
    assert block.returncode == 3
    _assert_inert(block.stdout + block.stderr)
    assert "\\x1b]0;pwned" in block.stderr
    missing = _cli(runner, workspace, "run", "--", f"no-such-command{TITLE}")
    assert missing.returncode == 127
    _assert_inert(missing.stdout + missing.stderr)


def test_approvals_prints_a_planted_audit_entry_inert(runner: Runner, workspace: Path) -> None:
    """The audit log holds whatever a command line contained; `sandboxtui approvals` must not
    replay it to the terminal."""
    state = workspace.parent / "state"
    (state / "sandboxtui").mkdir(parents=True)
    request = {"id": "abc", "argv": ["cat", f"{TITLE}.env", "a\nforged"],
               "cwd": f"/tmp/{HOSTILE_DIR}", "matched": [f"{ESC}[31m.env"]}
    decision = {"choice": "edit", "who": f"tui{ESC}[2J", "argv": ["cat", f"x{TITLE}"],
                "reason": f"ok{ESC}]52;c;Y2F0IC5lbnY=\x07"}  # OSC 52: write the clipboard
    records = [{"kind": "request", "time": 1.0, "id": "abc", "request": request},
               {"kind": "decision", "time": 2.0, "id": "abc", "decision": decision},
               # damaged or planted shapes: a line each, never a traceback
               {"kind": "decision", "time": "soon", "decision": f"x{ESC}[2J"},
               {"kind": "request", "time": 3, "request": {"argv": 5, "matched": [1]}}]
    (state / "sandboxtui" / "audit.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in records))
    chown_tree(state, runner.user)
    shown = _cli(runner, workspace, "approvals", env={"XDG_STATE_HOME": str(state)})
    assert shown.returncode == 0, shown.stderr
    _assert_inert(shown.stdout + shown.stderr)
    assert "\\x1b]0;pwned\\x07.env" in shown.stdout and "\\x1b]52;c;" in shown.stdout
    assert len(shown.stdout.splitlines()) == 4 and "Traceback" not in shown.stderr


# --- the TUI ---------------------------------------------------------------------------------


def _painted(widget: Widget) -> str:
    """What the widget sends to the terminal: the text of every segment it renders."""
    return "\n".join("".join(seg.text for seg in widget.render_line(y))
                     for y in range(widget.size.height))


async def _wait_for(pilot, condition, timeout: float = 15.0,  # type: ignore[no-untyped-def]
                    shown=lambda: "") -> None:
    """Wait for the condition; on timeout, say what the UI showed instead."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for the UI: {shown()}"
        await pilot.pause(0.05)


@pytest.mark.anyio
async def test_run_panel_renders_command_output_and_argv_inert(tmp_path: Path) -> None:
    """The command prints an OSC title change, a clear-screen CSI and Rich markup; its argv
    holds them too. Output view, status line and history show them as visible text: no ESC
    reaches the terminal and `[bold]` stays literal."""
    ws, config = demo_at(tmp_path / "demo")
    app = make_app(ws, config, tmp_path, caps=real_caps(),
                   overrides=("sandbox_workspace_write.exclude_slash_tmp=true",))
    payload = f"{TITLE}\x1b[2J\x9b1m[bold]x[/bold]"
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("6")
        app.query_one("#run-input", Input).value = shlex.join(
            ["sh", "-c", 'printf "%s\\n\\t%s\\n" "$1" "$1"', "sh", payload])
        await pilot.press("enter")
        panel = app.query_one(RunPanel)
        await _wait_for(pilot, lambda: panel.records)
        await pilot.pause(0.2)
        assert panel.records[-1].exit_code == 0
        log = app.query_one("#run-output", Log)
        shown = "\n".join(log.lines)
        assert "\\x1b]0;pwned\\x07\\x1b[2J\\x9b1m[bold]x[/bold]" in shown
        log.scroll_home(animate=False, immediate=True)  # the first lines, whatever the layout
        for widget in (log, app.query_one("#run-status"), app.query_one("#run-history")):
            # the history table paints its new row on a later refresh: ask for one and wait
            await _wait_for(pilot, lambda w=widget: w.refresh() and "[bold]x" in _painted(w),
                            shown=lambda w=widget: f"{w!r} painted {_painted(w)!r}")
            painted = _painted(widget)
            _assert_inert(painted)
            assert "[bold]x" in painted, type(widget).__name__


@pytest.mark.anyio
async def test_approval_modal_and_audit_view_render_the_request_inert(tmp_path: Path) -> None:
    """A command naming a sensitive file whose name carries an OSC sequence and markup: the
    approval modal, its edit box and the audit log view show it inert and literal."""
    ws, config = demo_at(tmp_path / "demo")
    app = make_app(ws, config, tmp_path, caps=real_caps(),
                   overrides=("sandbox_workspace_write.exclude_slash_tmp=true",))
    hostile = f".env.{TITLE}[bold]x[/bold]"
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("6")
        app.query_one("#run-input", Input).value = shlex.join(["cat", hostile])
        await pilot.press("enter")
        await _wait_for(pilot, lambda: isinstance(app.screen, ApprovalModal)
                        and bool(app.screen.query("#deny")))
        await pilot.pause(0.2)
        modal = app.screen
        for widget in (modal.query_one("#approval-request"), modal.query_one("#approval-edit")):
            widget.display = True
            await pilot.pause(0.1)
            painted = _painted(widget)
            _assert_inert(painted)
            assert "\\x1b]0;pwned\\x07[bold]x" in painted, (widget, widget.size)
        await pilot.press("d")
        panel = app.query_one(RunPanel)
        await _wait_for(pilot, lambda: panel.records)
        await pilot.press("escape", "7")  # leave the command input, then the Approvals tab
        table = app.query_one("#audit-table", DataTable)
        await _wait_for(pilot, lambda: table.row_count == 2 and table.size.height > 0)
        await pilot.pause(0.2)
        painted = _painted(table)
        _assert_inert(painted)
        assert "\\x1b]0;pwned\\x07[bold]x" in painted


@pytest.mark.anyio
async def test_tree_details_and_carveouts_render_hostile_names_inert(tmp_path: Path) -> None:
    """File names are untrusted too: a sensitive file named with an OSC sequence, a newline
    and markup, inside a directory named with a clear-screen sequence, shows up inert in the
    mount tree, the details pane and the carveouts table."""
    ws, config = demo_at(tmp_path / "demo")
    parent = ws / HOSTILE_DIR
    parent.mkdir()
    hostile = parent / f"{HOSTILE_FILE}[bold]x"  # markup without a slash: one name
    hostile.write_text("secret\n")
    app = make_app(ws, config, tmp_path, caps=real_caps())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.2)
        tree = app.query_one("#mount-tree")
        assert tree.reveal(str(hostile))
        app.query_one("#details").show(str(hostile))
        await pilot.pause(0.3)
        for widget in (tree, app.query_one("#details-body")):
            painted = _painted(widget)
            _assert_inert(painted)
            folded = "".join(painted.split())  # the details pane folds long paths
            assert "\\x1b]0;pwned\\x07\\nforgedline[bold]x" in folded, type(widget).__name__
        await pilot.press("2")
        table = app.query_one("#carveouts-table", DataTable)
        await _wait_for(pilot, lambda: table.row_count > 0 and table.size.height > 0)
        table.move_cursor(row=next(i for i in range(table.row_count)
                                   if "pwned" in str(table.get_row_at(i)[1])))
        await pilot.pause(0.3)
        painted = _painted(table)
        _assert_inert(painted)
        assert "\\x1b]0;pwned\\x07\\nforged line[bold]x" in painted
