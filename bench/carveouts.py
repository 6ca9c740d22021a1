"""Launch and plan time against the number of masked files: 0, 100, 1,000 and 10,000.

    .venv/bin/python bench/carveouts.py [--counts 0 100 1000 10000] [--runs N]

Each workspace is a monorepo: `packages/pNNNNN/.env.example` in every package (every one is
masked by the default `.env.*`), at three depths (packages/pN, packages/g/pN,
packages/g/h/pN), beside an ordinary file. Per count, side by side in the same run:
  launch  `sandboxtui run -- /bin/true` as a fresh process (medians of --runs, the counts
          interleaved; the plan is made inside, so it counts too)
  plan    build_plan() in this process (medians of --runs)
each as a ratio to the workspace with none, and the growth exponent of what the masks add
(a log-log fit of time(N) - time(0) against N: 1 is linear, 2 quadratic).
Targets (issue 16): 1,000 masks within 1.5x of none, 10,000 within 5x.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sandboxtui.core.plan import build_plan
from sandboxtui.core.policy import Policy


def make_workspace(root: Path, masked: int) -> None:
    """A monorepo with `masked` packages, each with a `.env.example` and a source file."""
    (root / "README.md").parent.mkdir(parents=True)
    (root / "README.md").write_text("bench\n")
    for i in range(masked):
        depth = ("", "g/", "g/h/")[i % 3]
        pkg = root / "packages" / f"{depth}p{i:05d}"
        pkg.mkdir(parents=True)
        (pkg / ".env.example").write_text("API_KEY=example\n")
        (pkg / "index.js").write_text("\n")


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, str]:
    """Wall time of `argv`, and why it failed (empty when it exited 0)."""
    t = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env=env)
    took = time.perf_counter() - t
    if done.returncode == 0:
        return took, ""
    return took, f"exit {done.returncode}: " + (done.stderr.strip().splitlines() or [""])[-1]


def plan_seconds(root: Path, runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        build_plan(Policy(), str(root), {})
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def exponent(counts: list[int], extra: list[float]) -> float | None:
    """Least-squares slope of log(extra) against log(count), over the counts above 0."""
    points = [(math.log(n), math.log(e)) for n, e in zip(counts, extra, strict=True)
              if n > 0 and e > 0]
    if len(points) < 2:
        return None
    mx = statistics.fmean(x for x, _ in points)
    my = statistics.fmean(y for _, y in points)
    den = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / den if den else None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--counts", type=int, nargs="+", default=[0, 100, 1000, 10_000])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    counts = sorted(set(args.counts) | {0})
    base = Path(tempfile.mkdtemp(prefix="sandboxtui-bench-carveouts-", dir="/var/tmp"))
    config = base / "config.toml"
    config.write_text("# empty: defaults\n")
    # A private state and runtime directory: the warnings memo and the launch files stay here.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env |= {"XDG_STATE_HOME": str(base / "state"), "PYTHONPYCACHEPREFIX": str(base / "pyc")}
    rows = []
    try:
        argvs, masks = {}, {}
        for n in counts:
            root = base / f"ws{n}"
            make_workspace(root, n)
            plan = build_plan(Policy(), str(root), {})
            masks[n] = sum(op.kind.value == "deny-file" for op in plan.ops)
            argvs[n] = [sys.executable, "-m", "sandboxtui", "run", "--config", str(config),
                        "--cwd", str(root), "--", "/bin/true"]
            timed(argvs[n], env)  # warm: bytecode caches, dentries
        times: dict[int, list[float]] = {n: [] for n in counts}
        failed = dict.fromkeys(counts, "")
        for _ in range(args.runs):  # interleaved: a load that comes and goes hits all alike
            for n in counts:
                took, why = timed(argvs[n], env)
                times[n].append(took)
                failed[n] = failed[n] or why
        for n in counts:
            rows.append((n, masks[n], statistics.median(times[n]),
                         plan_seconds(base / f"ws{n}", args.runs), failed[n]))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    launch0, plan0 = rows[0][2], rows[0][3]
    print(f"{'masked':>7} {'deny ops':>9} {'launch ms':>10} {'x none':>7} {'plan ms':>9} "
          f"{'x none':>7}")
    for n, masks, launch, plan_t, failed in rows:
        print(f"{n:>7} {masks:>9} {launch * 1e3:>10.1f} {launch / launch0:>7.2f} "
              f"{plan_t * 1e3:>9.1f} {plan_t / plan0:>7.2f}" + (f"  {failed}" if failed else ""))
    ok = [r for r in rows if not r[4]]
    for name, col, zero in (("launch", 2, launch0), ("plan", 3, plan0)):
        k = exponent([r[0] for r in ok], [r[col] - zero for r in ok])
        print(f"growth exponent of what the masks add to {name}: "
              + ("n/a" if k is None else f"{k:.2f}"))


if __name__ == "__main__":
    main()
