"""What tracing costs: `sandboxtui trace` against `sandboxtui run`, the same command side by side.

    .venv/bin/python bench/trace.py [--runs N] [--files N]

Workloads (syscall-heavy, in a scratch git repository of --files files, committed):
  git-status   `git status --short`: an lstat and an open per file
  find         `find . -type f`: a getdents walk
  python       `python3 -c "import json, email, http.client"`: imports, opens
Each is timed as a whole process (`sandboxtui run -- CMD` and `sandboxtui trace -- CMD`),
interleaved, and the median of each is printed with the ratio trace/run. Target: at most 3x.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CLI = [sys.executable, "-m", "sandboxtui"]
WORKLOADS = {
    "git-status": ["git", "status", "--short"],
    "find": ["find", ".", "-type", "f"],
    "python": ["/usr/bin/python3", "-c", "import json, email, http.client"],
}


def repository(files: int) -> Path:
    ws = Path(tempfile.mkdtemp(prefix="sandboxtui-bench-trace-"))
    for i in range(files):
        d = ws / f"d{i // 100:03d}"
        d.mkdir(exist_ok=True)
        (d / f"f{i}.txt").write_text(f"{i}\n")
    git = ["git", "-C", str(ws), "-c", "user.name=b", "-c", "user.email=b@b"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "files"], check=True)
    return ws


def timed(argv: list[str], cwd: Path) -> float:
    t = time.perf_counter()
    subprocess.run(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   check=False)
    return time.perf_counter() - t


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--files", type=int, default=10_000)
    args = parser.parse_args()
    if shutil.which("strace") is None:
        print("strace is not installed: apt-get install strace", file=sys.stderr)
        return 1
    ws = repository(args.files)
    config = ws.parent / f"{ws.name}.toml"
    config.write_text('sensitive_path_precheck_mode = "off"\n')
    common = ["--config", str(config), "--cwd", str(ws), "--"]
    try:
        print(f"{args.files} files, {args.runs} runs each (median wall time)")
        for name, command in WORKLOADS.items():
            runs: list[float] = []
            traces: list[float] = []
            for _ in range(args.runs):
                runs.append(timed([*CLI, "run", *common, *command], ws))
                traces.append(timed([*CLI, "trace", *common, *command], ws))
            run, trace = statistics.median(runs), statistics.median(traces)
            print(f"  {name:<11} run {run * 1000:7.1f} ms   trace {trace * 1000:7.1f} ms   "
                  f"ratio {trace / run:4.2f}x")
    finally:
        shutil.rmtree(ws, ignore_errors=True)
        config.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
