"""TUI benchmarks, each printed beside a baseline.

    .venv/bin/python bench/tui.py [--quick]

1. First full paint of the demo (in-process: plan + app + first refresh; and cold: the real
   `sandboxtui demo` in tmux until the tree is on screen), beside a one-widget Textual app.
2. A workspace with 10,000 denied carveouts: plan, first paint, expanding the directory that
   holds them, scrolling to the end; beside the same on the demo.
3. 50 MB of command output through the run panel (real sandbox): wall time, the longest
   event-loop stall while it streams, peak Python memory (tracemalloc); beside the launcher
   alone draining the same output, and beside 5 MB through the panel (memory must not grow
   with output size).

Targets: first paint < 1 s; no UI stall > 100 ms during output; memory bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from pathlib import Path

from textual.app import App, ComposeResult
from textual.widgets import Static

from sandboxtui.app import SandboxApp
from sandboxtui.core.diagnostics import probe
from sandboxtui.core.launch import prepare, start
from sandboxtui.demo import create_demo
from sandboxtui.model import Options, load_workspace
from sandboxtui.widgets.mount_tree import MountTree
from sandboxtui.widgets.run_panel import RunPanel

SIZE = (160, 50)
CAPS = probe()


def row(name: str, value: float, unit: str, baseline: float | None = None,
        baseline_name: str = "") -> None:
    ratio = f"  ({value / baseline:.1f}x {baseline_name})" if baseline else ""
    print(f"  {name:<46} {value:>10.1f} {unit:<3}{ratio}")


class Hello(App[None]):
    def compose(self) -> ComposeResult:
        yield Static("hello")


async def first_paint(make: Callable[[], App[object]],
                      then: Callable[[App[object], object], Awaitable[None]] | None = None
                      ) -> float:
    """Seconds from constructing the app to the end of its first refresh after mount;
    `then(app, pilot)` runs afterwards in the same session."""
    start_t = time.perf_counter()
    app = make()
    painted: list[float] = []
    async with app.run_test(size=SIZE) as pilot:
        app.call_after_refresh(lambda: painted.append(time.perf_counter()))
        while not painted:
            await pilot.pause(0.001)
        if then is not None:
            await then(app, pilot)
    return painted[0] - start_t


def demo_app(ws: Path, config: Path) -> SandboxApp:
    return SandboxApp(load_workspace(Options(str(ws), config), CAPS), watch=False,
                      audit_path=os.devnull)


def cold_start(tmp: Path) -> float:
    """The real `sandboxtui demo` in tmux: seconds until the mount tree is on the screen."""
    sock = f"sandboxtui-bench-{os.getpid()}"
    env = f"env -u COLUMNS -u LINES TMPDIR={tmp} XDG_STATE_HOME={tmp}/state"
    t0 = time.perf_counter()
    subprocess.run(["tmux", "-L", sock, "new-session", "-d", "-s", "b", "-x", "160", "-y", "50",
                    f"{env} {sys.executable} -m sandboxtui demo"], check=True, timeout=10)
    try:
        while time.perf_counter() - t0 < 20:
            shown = subprocess.run(["tmux", "-L", sock, "capture-pane", "-p", "-t", "b"],
                                   capture_output=True, text=True, timeout=10).stdout
            if "readme-link [rw]" in shown:
                return time.perf_counter() - t0
            time.sleep(0.01)
        raise TimeoutError("sandboxtui demo did not paint within 20 s")
    finally:
        subprocess.run(["tmux", "-L", sock, "kill-server"], capture_output=True, timeout=10)
        Path(os.environ.get("TMUX_TMPDIR", "/tmp"), f"tmux-{os.getuid()}", sock).unlink(
            missing_ok=True)


async def bench_first_paint(ws: Path, config: Path, tmp: Path) -> None:
    print("first full paint")
    base = await first_paint(Hello)
    demo = await first_paint(lambda: demo_app(ws, config))
    row("one-widget Textual app (baseline)", base * 1000, "ms")
    row("demo: plan + app + first paint", demo * 1000, "ms", base * 1000, "baseline")
    if shutil.which("tmux"):
        row("cold `sandboxtui demo` in tmux (process start)", cold_start(tmp) * 1000, "ms")


async def tree_costs(ws: Path, config: Path, folder: str) -> dict[str, float]:
    t0 = time.perf_counter()
    workspace = load_workspace(Options(str(ws), config), CAPS)
    out = {"plan": time.perf_counter() - t0}

    async def browse(app: App[object], pilot) -> None:  # type: ignore[no-untyped-def]
        app.animation_level = "none"  # measure the work, not the smooth-scroll animation
        tree = app.query_one(MountTree)
        node = next(n for n in tree._walk() if n.data and n.data.path.endswith(folder))
        t0 = time.perf_counter()
        tree.move_cursor(node)
        node.expand()
        await pilot.pause()
        out["expand"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        tree.action_scroll_end()
        await pilot.pause()
        for _ in range(20):
            tree.action_page_up()
            await pilot.pause()
        out["scroll"] = time.perf_counter() - t0
        out["nodes"] = len(tree._walk())

    out["paint"] = await first_paint(
        lambda: SandboxApp(workspace, watch=False, audit_path=os.devnull), browse)
    return out


async def bench_tree(ws: Path, config: Path, tmp: Path, count: int) -> None:
    print(f"mount tree with {count} carveouts")
    big = tmp / "big"
    many = big / "many"
    many.mkdir(parents=True)
    for i in range(count):
        (many / f".env.{i}").write_text("x\n")
    (big / "config.toml").write_text('sandbox_mode = "workspace-write"\n')
    base = await tree_costs(ws, config, "/workspace/sub")
    big_costs = await tree_costs(big, big / "config.toml", "/big/many")
    rules = len(load_workspace(Options(str(big), big / "config.toml"), CAPS).plan.rules)
    print(f"  ({rules} plan rules, {int(big_costs['nodes'])} tree nodes after expanding)")
    for key, label in (("plan", "build the plan"), ("paint", "first paint (tree, carveouts...)"),
                       ("expand", "expand the carveouts' directory"),
                       ("scroll", "scroll: end, then 20 page-ups (each painted)")):
        row(label, big_costs[key] * 1000, "ms", base[key] * 1000, "the demo")


async def through_panel(ws: Path, config: Path, megabytes: int, trace: bool) -> dict[str, float]:
    """Run the output through the panel; with `trace`, peak memory (tracemalloc slows every
    allocation, so stalls are measured in a separate run without it)."""
    app = demo_app(ws, config)
    stalls: list[float] = []
    async with app.run_test(size=SIZE) as pilot:
        last = [time.perf_counter()]

        def tick() -> None:
            now = time.perf_counter()
            stalls.append(now - last[0])
            last[0] = now

        await pilot.press("6")
        app.query_one("#run-input").value = (
            f"sh -c 'yes 0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrst"
            f" | head -c {megabytes * 1_000_000}'")
        if trace:
            tracemalloc.start()
        t0 = last[0] = time.perf_counter()
        timer = app.set_interval(0.01, tick)
        await pilot.press("enter")
        panel = app.query_one(RunPanel)
        while not panel.records:
            await pilot.pause(0.01)
        wall = time.perf_counter() - t0
        timer.stop()
        peak = tracemalloc.get_traced_memory()[1] if trace else 0
        tracemalloc.stop()
        assert panel.records[-1].exit_code == 0, panel.records[-1]
    return {"wall": wall, "stall": max(stalls) - 0.01, "peak": peak / 1e6}


def launcher_only(ws: Path, config: Path, megabytes: int) -> float:
    plan = load_workspace(Options(str(ws), config), CAPS).plan
    spec = prepare(plan, ["sh", "-c", f"yes 0123456789abcdefghijklmnopqrstuvwxyz0123456789"
                          f"abcdefghijklmnopqrst | head -c {megabytes * 1_000_000}"],
                   caps=CAPS)
    events: queue.SimpleQueue[object] = queue.SimpleQueue()
    t0 = time.perf_counter()
    start(spec, capture=True, on_output=events.put).wait()
    return time.perf_counter() - t0


async def bench_output(ws: Path, config: Path, megabytes: int) -> None:
    print(f"{megabytes} MB of output through the run panel")
    small_mb = max(1, megabytes // 10)
    raw = launcher_only(ws, config, megabytes)
    timed = await through_panel(ws, config, megabytes, trace=False)
    small = await through_panel(ws, config, small_mb, trace=True)
    big = await through_panel(ws, config, megabytes, trace=True)
    row("launcher alone, output drained (baseline)", raw * 1000, "ms")
    row(f"run panel: wall time, {megabytes} MB", timed["wall"] * 1000, "ms", raw * 1000,
        "baseline")
    row("run panel: longest event-loop stall (target 100)", timed["stall"] * 1000, "ms")
    row(f"run panel: peak Python memory, {small_mb} MB of output", small["peak"], "MB")
    row(f"run panel: peak Python memory, {megabytes} MB of output", big["peak"], "MB",
        small["peak"], f"the {small_mb} MB run")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="1,000 carveouts and 5 MB")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="sandboxtui-bench-"))
    try:
        ws, config = create_demo(str(tmp))
        await bench_first_paint(ws, config, tmp)
        await bench_tree(ws, config, tmp, 1_000 if args.quick else 10_000)
        await bench_output(ws, config, 5 if args.quick else 50)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
