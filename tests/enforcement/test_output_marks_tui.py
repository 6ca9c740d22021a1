"""Marked output lines (issue 14 item 4) as root and as nobody: a real write the sandbox refuses
prints "Read-only file system" with the path, and the run panel marks that line with the
path's access and deciding rule (`explain()`, as the untraced run's hint says it), outside the
writable roots and in a protected `.git`; the other lines stay unmarked. The app runs
headless (Pilot) in a process of the runner's user, trace on (its default where strace is
installed)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from conftest import Runner, chown_tree, make_workspace

APP = r"""
import asyncio, json, sys
from textual.widgets import Input
from sandboxtui.app import SandboxApp
from sandboxtui.core.config import resolve
from sandboxtui.core.diagnostics import probe
from sandboxtui.model import Options, load_workspace
from sandboxtui.widgets.output_log import OutputLog
from sandboxtui.widgets.run_panel import RunPanel

ws, config, audit, command, *overrides = sys.argv[1:]

async def main():
    options = Options(cwd=ws, config_path=config, overrides=tuple(overrides))
    policy = resolve(config_path=config, overrides=overrides)
    app = SandboxApp(load_workspace(options, probe(policy.system_bwrap)), watch=False,
                     audit_path=audit)
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.press("6")
        app.query_one("#run-input", Input).value = command
        await pilot.press("enter")
        panel = app.query_one(RunPanel)
        for _ in range(1200):
            if panel.records:
                break
            await pilot.pause(0.05)
        await pilot.pause(0.3)
        log = app.query_one(OutputLog)
        print(json.dumps({"exit": panel.records[-1].exit_code, "tracing": panel.tracing,
                          "lines": list(log.lines), "marks": log.marks}))

asyncio.run(main())
"""


def test_a_refused_write_marks_its_line_with_the_rule(runner: Runner, shared_dir: Path) -> None:
    base = Path(tempfile.mkdtemp(dir=shared_dir))
    base.chmod(0o755)
    try:
        ws = make_workspace(base)
        out = Path(tempfile.mkdtemp(prefix="sandboxtui-tui-mark-", dir="/var/tmp"))
        chown_tree(base, runner.user)
        chown_tree(out, runner.user)
        command = f"sh -c 'echo x > {out}/f; echo y >> .git/config; echo done; exit 3'"
        flags = [o for o in runner.bwrap_options() if o != "-c"]
        python = runner.prefix()[:-2]  # the runner's python, without `-m sandboxtui`
        env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
        done = subprocess.run([*python, "-c", APP, str(ws), str(runner.config),
                               str(base / "audit.jsonl"), command, *flags],
                              capture_output=True, text=True, timeout=180, env=env, cwd="/")
        assert done.returncode == 0, done.stderr[-3000:]
        shown = json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(base, ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)
    assert shown["exit"] == 3 and shown["tracing"] is (shutil.which("strace") is not None)
    assert not (out / "f").exists()
    real = os.path.realpath(ws)
    marks = shown["marks"]
    written = next(line for line in shown["lines"] if f"{out}/f" in line
                   and "Read-only file system" in line)
    git = next(line for line in shown["lines"] if ".git/config" in line
               and "Read-only file system" in line)
    assert set(marks) == {written, git}, shown
    assert marks[written].startswith(f"{out}/f is ro in this sandbox: read access: full "
                                     "(read-only bind of /) [default]; ")
    assert marks[git].startswith(f"{real}/.git/config is ro in this sandbox: ")
    assert "protected" in marks[git] and "done" in shown["lines"]
