"""Attacks on the time between the plan and the launch (about 100 ms for `run`, minutes while
an approval waits): a host process swaps a package directory holding `.env` for one holding a
decoy (or a hard link of the real secret), so the mask would land on the decoy while the real
secret, renamed, has none. Both kinds of mask: bwrap's own (the first denied file) and the mask
stage's. As root and as `nobody`, with the system and the vendored bwrap: the launch is refused
(exit 4, naming the path), nothing runs, the secret is never read. And a workspace directory
that can be listed but not searched (mode 0600) is denied as a whole: the launch runs."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import tempfile
from pathlib import Path

import pytest
from conftest import CANARY, SRC, Runner, chown_tree

PACKAGES = 5

SWAP = r"""
import json, os, sys
sys.path[:0] = sys.argv[4].split(":")
from sandboxtui.core.config import resolve
from sandboxtui.core.launch import prepare, start
from sandboxtui.core.plan import build_plan

ws, victim, how, bwrap = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[5]
overrides = ['sensitive_path_precheck_mode="off"'] + ([bwrap] if bwrap else [])
plan = build_plan(resolve(config_path=None, overrides=overrides, env={}), ws, {})
# Between the plan and the launch: the package moves aside, a new one takes its name.
package = os.path.join(ws, victim)
os.rename(package, package + "x")
os.mkdir(package)
if how == "decoy":
    with open(package + "/.env", "w") as fh:
        fh.write("decoy\n")
else:  # the very secret under the old name: the same file, another directory
    os.link(package + "x/.env", package + "/.env")
spec = prepare(plan, ["sh", "-c", f"touch ran; cat {victim}x/.env {victim}/.env"])
running = start(spec, capture=True)
out = b"".join(event.data for event in running.events())
result = running.wait()
print(json.dumps({"exit": result.exit_code, "error": result.error, "out": out.decode()}))
"""


def workspace(shared_dir: Path, user: str) -> Path:
    base = Path(tempfile.mkdtemp(dir=shared_dir))
    base.chmod(0o755)
    ws = base / "ws"
    for i in range(PACKAGES):
        pkg = ws / f"p{i}"
        pkg.mkdir(parents=True)
        (pkg / ".env").write_text(f"KEY={CANARY}-{i}\n")
    (base / "swap.py").write_text(SWAP)
    chown_tree(ws, user)
    return ws


# p0/.env is the plan's first denied file (bwrap binds the empty file there); p3/.env is
# mounted by the mask stage.
@pytest.mark.parametrize("victim", ["p0", "p3"])
@pytest.mark.parametrize("how", ["decoy", "hardlink"])
def test_a_package_swapped_after_the_plan_refuses_the_launch(
        runner: Runner, shared_dir: Path, victim: str, how: str) -> None:
    ws = workspace(shared_dir, runner.user)
    bwrap = " ".join(runner.bwrap_options()[1:])  # the -c value, if any
    argv = [*runner.prefix()[:-2], str(ws.parent / "swap.py"), str(ws), victim, how, SRC,
            bwrap]
    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=ws, env=env)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.splitlines()[-1])
    assert CANARY not in out["out"], out
    assert out["exit"] == 4, out
    assert f"{ws}/{victim}/.env changed since the plan was made" in out["error"], out
    assert "plan again" in out["error"]
    assert not (ws / "ran").exists()  # nothing ran


def test_a_directory_listed_but_not_searchable_is_denied_whole(runner: Runner,
                                                                 shared_dir: Path) -> None:
    """Mode 0600: its names list (r) but nothing in it opens (no x), so its `.env` can be
    neither checked nor masked by name. As nobody it is denied as a whole and the launch runs
    (it was refused, 'rd/.env no longer exists'); root searches it anyway and masks `.env`."""
    ws = workspace(shared_dir, runner.user)
    rd = ws / "rd"
    rd.mkdir()
    (rd / ".env").write_text(f"KEY={CANARY}-rd\n")
    chown_tree(ws, runner.user)
    rd.chmod(0o600)
    try:
        done = runner.run(ws, ["sh", "-c", "chmod 700 r?; cat r?/.e*; echo done"])
    finally:
        rd.chmod(0o700)
    assert done.returncode == 0, done.stderr
    assert "done" in done.stdout and CANARY not in done.stdout + done.stderr
    assert (rd / ".env").read_text() == f"KEY={CANARY}-rd\n"


def test_too_few_open_files_names_the_limit(runner: Runner, shared_dir: Path) -> None:
    """300 masks under `ulimit -n 40`: the mask stage runs out of descriptors and fails closed,
    saying so (it said 'removed or renamed since the plan was made?')."""
    ws = workspace(shared_dir, runner.user)
    for i in range(300):
        (ws / f"q{i}").mkdir()
        (ws / f"q{i}" / ".env").write_text(f"KEY={CANARY}-q{i}\n")
    chown_tree(ws, runner.user)

    def few_files() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (40, 40))

    done = runner.run(ws, ["sh", "-c", "touch ran; cat q*/.e*"], preexec_fn=few_files)
    assert done.returncode == 4, done.stderr
    assert "Too many open files: raise the open-files limit (ulimit -n)" in done.stderr
    assert "renamed" not in done.stderr and CANARY not in done.stdout
    assert not (ws / "ran").exists()
