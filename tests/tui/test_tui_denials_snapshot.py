"""SVG snapshot of the Denials view (issue 14) at 160x50: trace on, the analysis of a trace
(refusals of a write to /etc, a mkdir in the demo's `none` entry, a read of .env, a connect
to a host socket) over the demo's real plan, the mkdir selected with its suggestion. The
tracer's lines are given, not recorded, so the picture is the same on any machine (the real
tracer is in test_tui_denials.py and tests/enforcement/test_trace_tui.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from tui_support import SIZE, make_app, snapshot_demo

from sandboxtui.app import SandboxApp
from sandboxtui.core.config import resolve
from sandboxtui.core.plan import MountPlan, build_plan
from sandboxtui.core.trace import analyse
from sandboxtui.widgets.denials import DenialsView

NO_SLASH_TMP = ("sandbox_workspace_write.exclude_slash_tmp=true",)  # as test_tui_snapshots


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SandboxApp]:
    monkeypatch.delenv("NO_COLOR", raising=False)
    run = Path("/tmp/sandboxtui-snapshot-run")  # the runtime directory is a plan rule
    run.mkdir(mode=0o700, exist_ok=True)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(run))
    with snapshot_demo() as (ws, config):
        yield make_app(ws, config, tmp_path, overrides=NO_SLASH_TMP)


def test_denials_view(app: SandboxApp, snap_compare) -> None:  # type: ignore[no-untyped-def]
    ws = app.workspace
    env = {k: v for k, v in os.environ.items() if k != "TMPDIR"}  # as the app's plan

    def replan(override: str) -> MountPlan:
        policy = resolve(config_path=ws.options.config_path, env=env,
                         overrides=(*NO_SLASH_TMP, override))
        return build_plan(policy, ws.plan.cwd, env)

    text = ('7 openat(AT_FDCWD, "/etc/motd", O_WRONLY|O_CREAT|O_TRUNC, 0666) = -1 EROFS '
            "(Read-only file system)\n"
            '7 openat(AT_FDCWD, "/etc/motd", O_WRONLY|O_CREAT|O_TRUNC, 0666) = -1 EROFS '
            "(Read-only file system)\n"
            '8 mkdir("secrets/new", 0777) = -1 EACCES (Permission denied)\n'
            '9 openat(AT_FDCWD, ".env", O_RDONLY) = -1 EACCES (Permission denied)\n'
            '10 connect(3, {sa_family=AF_UNIX, sun_path="/run/host.sock"}, 110) = -1 EACCES '
            "(Permission denied)\n")
    report = analyse(text, ws.plan, 0, replan, network_on=False)

    async def show(pilot) -> None:  # type: ignore[no-untyped-def]
        await pilot.press("6")  # trace is on by default: strace is installed
        view = app.query_one(DenialsView)
        view.post_message(DenialsView.Report(report, "sh -c 'build.sh'", running=False))
        await pilot.pause()
        table = view.query_one("#denials-table")
        table.focus()
        table.move_cursor(row=next(i for i, d in enumerate(view.rows) if d.op == "create"))
        await pilot.pause()

    assert snap_compare(app, run_before=show, terminal_size=SIZE)
