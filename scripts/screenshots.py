"""Regenerate screenshots/*.svg: the main views of the real app on the demo workspace.

    .venv/bin/python scripts/screenshots.py [OUTDIR]

The demo is created at a fixed path so the pictures do not change from run to run; the
capabilities are this machine's (the "no system bwrap" picture probes with the system path
pointed at a file that does not exist, which is how such a machine looks; the AppArmor picture
at a bwrap stand-in that fails exactly as Ubuntu's does under its user-namespace restriction,
`UBUNTU_BWRAP`). The run views
launch `cat .env` under the real sandbox (the denials view traces one); the verify views
probe it, and the demo scenarios run their commands for real.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from sandboxtui.app import SandboxApp
from sandboxtui.core.diagnostics import probe
from sandboxtui.demo import create_demo
from sandboxtui.model import Options, load_workspace
from sandboxtui.widgets.approval_modal import ApprovalModal
from sandboxtui.widgets.demo_scenarios import DemoScenarios
from sandboxtui.widgets.denials import DenialsView
from sandboxtui.widgets.run_panel import RunPanel
from sandboxtui.widgets.verify_results import VerifyResults

DEMO = Path("/tmp/sandboxtui-demo")
# A real-looking ~/.codex/config.toml for the "Codex would …" view (sandboxtui --codex).
CODEX_CONFIG = """\
model = "gpt-5-codex"
model_reasoning_effort = "high"
approval_policy = "on-request"
sandbox_mode = "workspace-write"

[sandbox_workspace_write]
network_access = false

[mcp_servers.docs]
command = "npx"
args = ["-y", "docs-mcp"]

[tui]
notifications = true
"""
SIZE = (160, 50)
# bwrap under Ubuntu's kernel.apparmor_restrict_unprivileged_userns = 1: its message, its exit
UBUNTU_BWRAP = "#!/bin/sh\necho 'bwrap: setting up uid map: Permission denied' >&2\nexit 1\n"


def demo_at(base: Path) -> tuple[Path, Path]:
    """The demo, moved to `base` with its config rewritten: stable paths in the pictures."""
    scratch = Path(tempfile.mkdtemp(prefix="sandboxtui-shots-"))
    ws, _ = create_demo(str(scratch))
    made = ws.parent
    shutil.rmtree(base, ignore_errors=True)
    shutil.move(str(made), str(base))
    shutil.rmtree(scratch, ignore_errors=True)
    config = base / "config.toml"
    config.write_text(config.read_text().replace(str(made), str(base)))
    return base / "workspace", config


async def until(pilot, condition: Callable[[], bool], timeout: float = 15) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the app did not reach the expected state")
        await pilot.pause(0.05)


async def run_cat_env(app: SandboxApp, pilot, approve: bool) -> None:  # type: ignore[no-untyped-def]
    await pilot.press("6")
    app.query_one("#run-input").value = "cat .env"
    await pilot.press("enter")
    await until(pilot, lambda: isinstance(app.screen, ApprovalModal) and app.screen.armed
                and bool(app.screen.query("#deny"))
                and app.focused is app.screen.query_one("#deny"))
    if approve:
        await pilot.press("o")
        await until(pilot, lambda: bool(app.query_one(RunPanel).records))
        app.query_one("#run-input").value = "sh -c 'ls -la; touch .git/hooks/x; git status -s'"
        await pilot.press("enter")
        await until(pilot, lambda: len(app.query_one(RunPanel).records) == 2)


async def trace_run(app: SandboxApp, pilot) -> None:  # type: ignore[no-untyped-def]
    """Trace on (by default where strace is installed), an approved run the sandbox refuses
    four ways; the Denials view explains the one with a suggestion."""
    await pilot.press("6")
    app.query_one("#run-input").value = ("sh -c 'mkdir secrets/new; cat .env; "
                                         "echo x > /etc/motd; echo y >> .git/config'")
    await pilot.press("enter")
    await until(pilot, lambda: isinstance(app.screen, ApprovalModal) and app.screen.armed)
    await pilot.press("o")  # it names .env: approved once
    view = app.query_one(DenialsView)
    await until(pilot, lambda: bool(app.query_one(RunPanel).records) and not view.running
                and len(view.rows) == 4)
    table = view.query_one("#denials-table")
    table.focus()
    table.move_cursor(row=next(i for i, d in enumerate(view.rows) if d.op == "create"))


async def verify_plan(app: SandboxApp, pilot, tab: str | None) -> None:  # type: ignore[no-untyped-def]
    """`V`: verify the whole plan; then show the marked tree (tab None) or a panel."""
    await pilot.press("down", "down", "down", "V")
    await until(pilot, lambda: app.query_one(VerifyResults).report is not None)
    app.clear_notifications()
    if tab:
        await pilot.press(tab)


async def run_scenarios(app: SandboxApp, pilot) -> None:  # type: ignore[no-untyped-def]
    """Run every demo scenario but `cat .env` (which would wait for an approval)."""
    await pilot.press("6")
    scenarios = app.query_one(DemoScenarios)
    table = app.query_one("#scenario-table")
    table.focus()
    for row, scenario in enumerate(scenarios.scenarios):
        if scenario.key == "env":
            continue
        table.move_cursor(row=row)
        await pilot.press("enter")
        await until(pilot, lambda key=scenario.key: key in scenarios.outcomes)
    table.move_cursor(row=1)


async def shoot(name: str, steps: Callable[..., Awaitable[None]], outdir: Path, ws: Path,
                config: Path, state: Path, system_bwrap: str = "/usr/bin/bwrap",
                theme: str | None = None, demo: bool = False, codex: bool = False,
                size: tuple[int, int] = SIZE, no_color: bool = False) -> None:
    options = Options(cwd=str(ws), codex=str(config.parent / "codex.toml")) if codex else \
        Options(cwd=str(ws), config_path=config, demo=demo)
    workspace = load_workspace(options, probe(system_bwrap))
    if no_color:
        os.environ["NO_COLOR"] = "1"  # read when the app is made
    app = SandboxApp(workspace, watch=False, audit_path=str(state / f"{name}.jsonl"))
    os.environ.pop("NO_COLOR", None)
    async with app.run_test(size=size) as pilot:
        if theme:
            app.theme = theme
        await pilot.pause()
        await steps(app, pilot)
        await pilot.pause(0.2)
        app.save_screenshot(f"{name}.svg", str(outdir))
    print(f"wrote {outdir / (name + '.svg')}")


async def main(outdir: Path) -> None:
    outdir.mkdir(parents=True, exist_ok=True)
    ws, config = demo_at(DEMO)
    (DEMO / "codex.toml").write_text(CODEX_CONFIG)
    restricted = DEMO / "ubuntu" / "bwrap"
    restricted.parent.mkdir()
    restricted.write_text(UBUNTU_BWRAP)
    restricted.chmod(0o755)
    state = Path(tempfile.mkdtemp(prefix="sandboxtui-shots-state-"))

    async def press(app: SandboxApp, pilot, *k: str) -> None:  # type: ignore[no-untyped-def]
        await pilot.press(*k)

    views: list[tuple[str, Callable[..., Awaitable[None]], dict[str, object]]] = [
        ("main", lambda a, p: press(a, p, *["down"] * 7), {}),
        ("main-80x24", lambda a, p: press(a, p, *["down"] * 7), {"size": (80, 24)}),
        ("main-no-color", lambda a, p: press(a, p, *["down"] * 7), {"no_color": True}),
        ("tree-light", lambda a, p: press(a, p, *["down"] * 7), {"theme": "textual-light"}),
        ("find-path", lambda a, p: press(a, p, "slash", *"sub/.env.local", "enter"), {}),
        ("carveouts", lambda a, p: press(a, p, "2"), {}),
        ("seccomp", lambda a, p: press(a, p, "3"), {}),
        ("seccomp-raw", lambda a, p: press(a, p, "3", "r"), {}),
        ("warnings", lambda a, p: press(a, p, "4"), {}),
        ("warnings-no-system-bwrap", lambda a, p: press(a, p, "4"),
         {"system_bwrap": "/nonexistent/usr/bin/bwrap"}),
        ("warnings-userns-apparmor", lambda a, p: press(a, p, "4"),
         {"system_bwrap": str(restricted)}),
        ("settings", lambda a, p: press(a, p, "5"), {}),
        ("settings-codex", lambda a, p: press(a, p, "5"), {"codex": True}),
        ("approval", lambda a, p: run_cat_env(a, p, approve=False), {}),
        ("run", lambda a, p: run_cat_env(a, p, approve=True), {}),
        ("denials", trace_run, {}),
        ("help", lambda a, p: press(a, p, "question_mark"), {}),
        ("verify-tree", lambda a, p: verify_plan(a, p, None), {}),
        ("verify", lambda a, p: verify_plan(a, p, "8"), {}),
        ("demo-scenarios", run_scenarios, {"demo": True}),
    ]
    try:
        for name, steps, extra in views:
            await shoot(name, steps, outdir, ws, config, state, **extra)
    finally:
        shutil.rmtree(DEMO, ignore_errors=True)
        shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    root = Path(__file__).resolve().parent.parent
    asyncio.run(main(Path(sys.argv[1]) if len(sys.argv) > 1 else root / "screenshots"))
