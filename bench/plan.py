"""Planning cost against a bare walk of the same tree, at 10k and 100k files.

Prints, per size: median plan time, median `os.walk` time, median `find` time, the ratio of
plan to walk, and how plan time grows from the small tree to the large one. Then the re-plan
(`build_plan(reuse=last plan)`, what live reload and the TUI's launches do) after one file
is created in a deep directory, beside the full plan and the walk, checked equal to a full
plan.
Usage: python bench/plan.py [--sizes 10000 100000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from sandboxtui.core.plan import _SETTLE_NS, MountPlan, build_plan
from sandboxtui.core.policy import Policy


def make_tree(root: Path, files: int, sensitive: int) -> None:
    """`files` files in nested dirs (about 20 per dir, 3 levels), `sensitive` of them .env."""
    per_dir = 20
    every = max(files // sensitive, 1)
    for i in range(files):
        d = root / f"d{i // (per_dir * 50)}" / f"e{(i // per_dir) % 50}"
        if i % per_dir == 0:
            d.mkdir(parents=True, exist_ok=True)
        name = ".env" if i % every == 0 else f"f{i}.txt"
        if name == ".env" and (d / ".env").exists():
            name = f".env.{i}"
        (d / name).write_bytes(b"")


def median_seconds(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def walk(root: str) -> int:
    return sum(len(files) + len(dirs) for _, dirs, files in os.walk(root))


def replan_seconds(policy: Policy, root: Path, repeat: int) -> float:
    """Median re-plan after one new file, each from the plan before it; checked against a
    full plan of the same tree."""
    time.sleep(_SETTLE_NS / 1e9)  # listings are kept once their ctime has settled
    last = build_plan(policy, str(root), {})
    deep = next(d for d, _, _ in os.walk(root) if d.count("/") >= str(root).count("/") + 2)
    times = []
    for i in range(repeat):
        (Path(deep) / f"new{i}.txt").write_bytes(b"")
        t = time.perf_counter()
        plan: MountPlan = build_plan(policy, str(root), {}, reuse=last)
        times.append(time.perf_counter() - t)
        last = plan
    full = build_plan(policy, str(root), {})
    assert (last.rules, last.ops, last.repos) == (full.rules, full.ops, full.repos)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--sensitive", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    policy = Policy()
    rows = []
    base = Path(tempfile.mkdtemp(prefix="sandboxtui-bench-plan-", dir="/var/tmp"))
    try:
        for size in args.sizes:
            root = base / f"ws{size}"
            make_tree(root, size, args.sensitive)
            walk(str(root))  # warm the dentry cache equally for every contender
            plan = build_plan(policy, str(root), {})
            t_plan = median_seconds(lambda r=root: build_plan(policy, str(r), {}), args.repeat)
            t_walk = median_seconds(lambda r=root: walk(str(r)), args.repeat)
            t_find = median_seconds(lambda r=root: subprocess.run(
                ["find", str(r)], stdout=subprocess.DEVNULL, check=True), args.repeat)
            t_replan = replan_seconds(policy, root, args.repeat)
            assert plan.scan is not None
            rows.append((size, plan.scan.matches, t_plan, t_walk, t_find, t_replan))
    finally:
        shutil.rmtree(base)
    print(f"{'files':>8} {'masked':>7} {'plan ms':>9} {'walk ms':>9} {'find ms':>9} "
          f"{'plan/walk':>10} {'plan/find':>10} {'replan ms':>10} {'replan/walk':>12}")
    for size, masked, tp, tw, tf, tr in rows:
        print(f"{size:>8} {masked:>7} {tp * 1e3:>9.1f} {tw * 1e3:>9.1f} {tf * 1e3:>9.1f} "
              f"{tp / tw:>10.2f} {tp / tf:>10.2f} {tr * 1e3:>10.1f} {tr / tw:>12.3f}")
    print("replan: build_plan(reuse=the last plan) after one new file (target: under 50 ms "
          "at 100k files)")
    if len(rows) > 1:
        (s0, _, p0, w0, _, _), (s1, _, p1, w1, _, _) = rows[0], rows[-1]
        print(f"growth {s0} -> {s1} files (x{s1 / s0:.0f}): plan x{p1 / p0:.1f}, "
              f"walk x{w1 / w0:.1f}")


if __name__ == "__main__":
    main()
