"""A hostile command races the TUI's re-plan (issue 16 item 4).

The TUI re-plans (live reload, every launch) with `build_plan(reuse=last plan)`, which reuses
the listing of each directory whose key is unchanged. The command, inside the real sandbox (as
root and as `nobody`), creates `.env` files and nested repositories and sets each directory's
mtime back to what it was, as fast as it can, while the host re-plans in a loop. Every re-plan
begun after a file was created must deny it (or keep the new `.git` read-only), and the last
re-plan equals a full plan.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from conftest import Runner, chown_tree, python_for

from sandboxtui.core.config import resolve
from sandboxtui.core.plan import _SETTLE_NS, Access, MountPlan, build_plan

DIRS = 20

HOSTILE = f"""
import os, time
log = open("race.log", "a")
for round in range(3):
    for i in range({DIRS}):
        d = f"race/d{{i}}"
        st = os.stat(d)
        secret = f"{{d}}/.env.r{{round}}"
        with open(secret, "w") as f:
            f.write("SECRET=1\\n")
        os.utime(d, ns=(st.st_atime_ns, st.st_mtime_ns))  # the mtime as it was
        repo = f"{{d}}/repo{{round}}"
        os.mkdir(repo)
        rst = os.stat(repo)
        os.mkdir(repo + "/.git")
        os.utime(repo, ns=(rst.st_atime_ns, rst.st_mtime_ns))
        os.utime(d, ns=(st.st_atime_ns, st.st_mtime_ns))
        log.write(f"{{secret}} {{repo}}/.git {{time.time_ns()}}\\n")
        log.flush()
        time.sleep(0.005)
"""


def _access(plan: MountPlan, path: str) -> Access:
    rule = next((r for r in plan.rules if r.path == path), None)
    return plan.explain(path).access if rule is None else rule.access


def test_a_command_racing_the_replan_never_hides_a_new_env_or_git(runner: Runner,
                                                                   shared_dir: Path) -> None:
    base = Path(tempfile.mkdtemp(dir=shared_dir))
    base.chmod(0o755)
    ws = base / "ws"
    for i in range(DIRS):
        (ws / "race" / f"d{i}").mkdir(parents=True)
        (ws / "race" / f"d{i}" / "file.txt").write_text("x\n")
    chown_tree(ws, runner.user)
    time.sleep(_SETTLE_NS / 1e9 + 0.1)  # every listing of the first plan is kept
    policy = resolve(overrides=(), env={})
    plans: list[tuple[int, MountPlan]] = []
    done = threading.Event()

    def replan() -> None:
        last = build_plan(policy, str(ws), {})
        while not done.is_set():
            began = time.time_ns()
            last = build_plan(policy, str(ws), {}, reuse=last)
            plans.append((began, last))
            time.sleep(0.002)

    watcher = threading.Thread(target=replan)
    watcher.start()
    try:
        argv = [*runner.prefix(), "run", "--config", str(runner.config), "--cwd", str(ws),
                *runner.bwrap_options(), "-c", 'sensitive_path_precheck_mode="off"', "--",
                python_for(runner.user), "-c", HOSTILE]
        env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
        result = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env)
    finally:
        done.set()
        watcher.join()
    assert result.returncode == 0, result.stderr
    created = [line.split() for line in (ws / "race.log").read_text().splitlines()]
    assert len(created) == 3 * DIRS
    assert len(plans) > 10
    for began, plan in plans:
        for secret, git, at in created:
            if int(at) < began:
                assert _access(plan, f"{ws}/{secret}") is Access.NONE, secret
                assert _access(plan, f"{ws}/{git}") is Access.RO, git
    final = build_plan(policy, str(ws), {}, reuse=plans[-1][1])
    full = build_plan(policy, str(ws), {})
    assert (final.rules, final.ops, final.repos) == (full.rules, full.ops, full.repos)
