"""The TUI's traced run (issue 14) as root and as nobody: the run panel with trace on runs the
command through the real tracer over the real sandbox, and the Denials view shows the
kernel's real refusals, each with its rule, provenance and suggestion, as `sandboxtui trace`
reports them. The app runs headless (Pilot) in a process of the runner's user."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from conftest import Runner, chown_tree, make_workspace

APP = r"""
import asyncio, json, sys
from textual.widgets import DataTable, Input
from sandboxtui.app import SandboxApp
from sandboxtui.core.config import resolve
from sandboxtui.core.diagnostics import probe
from sandboxtui.model import Options, load_workspace
from sandboxtui.widgets.denials import DenialsView
from sandboxtui.widgets.run_panel import RunPanel

ws, config, audit, command, *overrides = sys.argv[1:]

async def main():
    options = Options(cwd=ws, config_path=config, overrides=tuple(overrides))
    policy = resolve(config_path=config, overrides=overrides)
    app = SandboxApp(load_workspace(options, probe(policy.system_bwrap)), watch=False,
                     audit_path=audit)
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.press("6")  # trace is on by default where strace is installed
        app.query_one("#run-input", Input).value = command
        await pilot.press("enter")
        panel, view = app.query_one(RunPanel), app.query_one(DenialsView)
        for _ in range(1200):
            if panel.records and view.report is not None and not view.running:
                break
            await pilot.pause(0.05)
        table = view.query_one(DataTable)
        print(json.dumps({
            "exit": panel.records[-1].exit_code,
            "denials": [[d.op, d.path, d.errno, d.access, d.rule, d.provenance,
                         d.suggestion and d.suggestion.flag] for d in view.report.denials],
            "host": [[d.op, d.path, d.errno] for d in view.report.host],
            "cells": [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)],
        }))

asyncio.run(main())
"""


def test_the_denials_view_shows_the_kernels_refusals(runner: Runner, shared_dir: Path) -> None:
    if shutil.which("strace") is None:
        pytest.fail("strace is missing: install it (CI does)")
    base = Path(tempfile.mkdtemp(dir=shared_dir))
    base.chmod(0o755)
    try:
        ws = make_workspace(base)
        out = Path(tempfile.mkdtemp(prefix="sandboxtui-tui-trace-", dir="/var/tmp"))
        chown_tree(base, runner.user)
        chown_tree(out, runner.user)
        command = (f"sh -c 'echo x > {out}/f; echo y >> .git/config; cat .env; exit 3'")
        flags = [o for o in runner.bwrap_options() if o != "-c"]
        python = runner.prefix()[:-2]  # the runner's python, without `-m sandboxtui`
        env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
        done = subprocess.run([*python, "-c", APP, str(ws), str(runner.config),
                               str(base / "audit.jsonl"), command,
                               'sensitive_path_precheck_mode="off"', *flags],
                              capture_output=True, text=True, timeout=180, env=env, cwd="/")
        assert done.returncode == 0, done.stderr[-3000:]
        shown = json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(base, ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)
    assert shown["exit"] == 3
    real = os.path.realpath(ws)
    got = {(op, path, errno, access): (rule, provenance, flag)
           for op, path, errno, access, rule, provenance, flag in shown["denials"]}
    assert set(got) == {("write", f"{out}/f", "EROFS", "ro"),
                        ("write", f"{real}/.git/config", "EROFS", "ro"),
                        ("read", f"{real}/.env", "EACCES", "none")}, shown
    assert got[("write", f"{out}/f", "EROFS", "ro")] == (
        "read access: full (read-only bind of /)", "default",
        f"-c 'sandbox_workspace_write.writable_roots=[\"{out}\"]'")
    rule, _, flag = got[("read", f"{real}/.env", "EACCES", "none")]
    assert "sensitive" in rule and flag is None
    rule, _, flag = got[("write", f"{real}/.git/config", "EROFS", "ro")]
    assert "protected" in rule and flag is None
    # as nobody the shell's lookup meets root's 0700 home (PATH): the host's file modes,
    # listed apart, below the sandbox's refusals
    assert all(errno == "EACCES" for _, _, errno in shown["host"]), shown
    cells = shown["cells"]
    assert {row[5] for row in cells[:3]} == {f"{out}/f", f"{real}/.git/config", f"{real}/.env"}
    assert [row[3] for row in cells[3:]] == ["host"] * len(shown["host"])
