"""TUI benchmarks, each printed beside a baseline.

    .venv/bin/python bench/tui.py [--quick]

1. First paint from process start: a fresh process on a pseudo-terminal (160x50), from its
   spawn until its first screen's text arrives, beside a one-widget Textual app measured the
   same way in the same run (paired, interleaved, medians): `sandboxtui demo`, and
   `sandboxtui` on a workspace of 100,000 files holding 10,000 denied carveouts. Then End and
   page-ups are typed into each, and its peak RSS read (target: under 200 MiB).
2. The same 10,000 carveouts in-process: plan, first paint, expanding the directory that
   holds them, scrolling to the end, the longest event-loop stall while scrolling (target:
   50 ms); beside the same on the demo.
3. 50 MB of command output through the run panel (real sandbox): wall time, the longest
   event-loop stall while it streams, peak Python memory (tracemalloc); beside the launcher
   alone draining the same output, and beside 5 MB through the panel (memory must not grow
   with output size).

Targets: first paint within 1.5x the one-widget app (the demo) and 2x (100k files, 10,000
carveouts); no UI stall > 50 ms scrolling, > 100 ms during output; memory bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import gc
import os
import pty
import queue
import select
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from pathlib import Path

from textual.app import App

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


HELLO = """
from textual.app import App
from textual.widgets import Static

class Hello(App):
    def compose(self):
        yield Static("hello, first paint")

Hello().run()
"""
END, PAGE_UP = b"\x1b[F", b"\x1b[5~"


def on_terminal(argv: list[str], marker: bytes, env: dict[str, str], cwd: Path
                ) -> tuple[float, float]:
    """Spawn `argv` on a fresh pseudo-terminal: seconds from the spawn until `marker` is on
    it (its first screen), and its peak RSS in MiB after End and ten page-ups."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 160, 0, 0))
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=cwd,
                            start_new_session=True)
    os.close(slave)
    seen = b""

    def read(until: float, marker: bytes | None = None) -> None:
        nonlocal seen
        while time.perf_counter() < until:
            if select.select([master], [], [], 0.005)[0]:
                try:
                    seen = (seen + os.read(master, 1 << 16))[-4096:]
                except OSError:
                    return
                if marker is not None and marker in seen:
                    return

    try:
        read(t0 + 30, marker)
        if marker not in seen:
            raise TimeoutError(f"{argv} did not show {marker!r} within 30 s")
        painted = time.perf_counter() - t0
        for key in [END] + [PAGE_UP] * 10:
            os.write(master, key)
            read(time.perf_counter() + 0.05)
        read(time.perf_counter() + 0.3)
        status = Path(f"/proc/{proc.pid}/status").read_text()
        rss = next(int(line.split()[1]) for line in status.splitlines()
                   if line.startswith("VmHWM:")) / 1024
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        os.close(master)
    return painted, rss


def big_workspace(root: Path, files: int, carveouts: int) -> Path:
    """`files` files: `carveouts` of them `.env.N` in one directory, the rest 20 a directory."""
    many = root / "aaa-carveouts"  # listed first: on the first screen
    many.mkdir(parents=True)
    for i in range(carveouts):
        (many / f".env.{i}").write_text("x\n")
    for i in range(files - carveouts):
        d = root / f"d{i // 1000}" / f"e{(i // 20) % 50}"
        if i % 20 == 0:
            d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i}.txt").write_bytes(b"")
    (root / "config.toml").write_text('sandbox_mode = "workspace-write"\n')
    return root


def bench_process_start(tmp: Path, files: int, carveouts: int, repeat: int) -> None:
    print(f"first paint from process start (fresh processes, medians of {repeat} paired runs)")
    hello = tmp / "hello.py"
    hello.write_text(HELLO)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TERM": "xterm-256color",
           "HOME": os.environ.get("HOME", "/root"), "TMPDIR": str(tmp),
           "XDG_STATE_HOME": f"{tmp}/state", "XDG_CONFIG_HOME": f"{tmp}/config"}
    big = big_workspace(tmp / "big", files, carveouts)
    baseline = "one-widget Textual app (baseline)"
    contenders = {
        baseline: ([sys.executable, str(hello)], b"hello, first paint", tmp),
        "`sandboxtui demo`": ([sys.executable, "-m", "sandboxtui", "demo"], b"readme-link",
                              tmp),
        f"`sandboxtui`, {files:,} files, {carveouts:,} carveouts": (
            [sys.executable, "-m", "sandboxtui", "--config", str(big / "config.toml")],
            b"aaa-carveouts", big),
    }
    times: dict[str, list[float]] = {name: [] for name in contenders}
    rss: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(repeat):
        for name, (argv, marker, cwd) in contenders.items():
            t, peak = on_terminal(argv, marker, env, cwd)
            times[name].append(t)
            rss[name].append(peak)
    base = statistics.median(times[baseline])
    for name in contenders:
        t = statistics.median(times[name])
        print(f"  {name:<52} {t * 1000:>6.0f} ms  ({t / base:.2f}x the baseline)  "
              f"peak RSS {max(rss[name]):.0f} MiB")
    print("  targets: the demo within 1.5x, 100k files with 10,000 carveouts within 2x, "
          "under 200 MiB")


async def tree_costs(ws: Path, config: Path, folder: str) -> dict[str, float]:
    t0 = time.perf_counter()
    workspace = load_workspace(Options(str(ws), config), CAPS)
    out = {"plan": time.perf_counter() - t0}
    gc.freeze()  # as run_app does once the plan is made

    async def browse(app: App[object], pilot) -> None:  # type: ignore[no-untyped-def]
        app.animation_level = "none"  # measure the work, not the smooth-scroll animation
        tree = app.query_one(MountTree)
        node = next(n for n in tree._walk() if n.data and n.data.path.endswith(folder))
        t0 = time.perf_counter()
        tree.move_cursor(node)
        node.expand()
        await pilot.pause()
        out["expand"] = time.perf_counter() - t0
        gaps, last = [0.0], [time.perf_counter()]

        def tick() -> None:  # the event loop's longest gap between 5 ms ticks
            now = time.perf_counter()
            gaps.append(now - last[0] - 0.005)
            last[0] = now

        timer = app.set_interval(0.005, tick)
        t0 = last[0] = time.perf_counter()
        tree.action_scroll_end()
        await pilot.pause()
        for _ in range(20):
            tree.action_page_up()
            await pilot.pause()
        out["scroll"] = time.perf_counter() - t0
        timer.stop()
        out["stall"] = max(gaps)
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
                       ("scroll", "scroll: end, then 20 page-ups (each painted)"),
                       ("stall", "longest event-loop stall scrolling (target 50)")):
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
    parser.add_argument("--quick", action="store_true",
                        help="10,000 files, 1,000 carveouts and 5 MB")
    parser.add_argument("--repeat", type=int, default=7, help="paired first-paint runs")
    parser.add_argument("--first-paint", action="store_true",
                        help="only the first paint from process start")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="sandboxtui-bench-"))
    try:
        ws, config = create_demo(str(tmp))
        bench_process_start(tmp, 10_000 if args.quick else 100_000,
                            1_000 if args.quick else 10_000, args.repeat)
        if args.first_paint:
            return
        await bench_tree(ws, config, tmp, 1_000 if args.quick else 10_000)
        await bench_output(ws, config, 5 if args.quick else 50)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
