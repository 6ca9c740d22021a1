"""Attacks on the mask stage (core/mask_stage.py), which mounts most file masks from the launcher
inside the sandbox's namespaces while bwrap waits: the command tries to undo a mask (umount2,
mount --move, open_tree clones, a nested user namespace); a symlink is planted at a mask path
between plan and launch; a second process renames directories while launches go on. As root
and as `nobody`: the secret is never seen, or nothing runs (exit 4, naming the path)."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

from conftest import CANARY, SRC, Runner, chown_tree, python_for

PACKAGES = 3000  # beyond what bwrap alone could mount (its argument limit: about 2,990)
VICTIM = "packages/p00005/.env.example"

UNDO = r"""
import ctypes, errno, json, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
L = ctypes.c_long
victim = os.path.abspath(sys.argv[1] + "/.env.example")  # not named on the command line
parent = os.path.dirname(victim)
out = {}

def call(name, fn):
    ret = fn()
    out[name] = "ok" if ret >= 0 else errno.errorcode[ctypes.get_errno()]
    return ret

def read(name):
    try:
        with open(victim, "rb") as fh:
            out[name] = "read:" + fh.read().decode(errors="replace")
    except OSError as exc:
        out[name] = errno.errorcode[exc.errno]

def attacks(prefix):
    call(prefix + "umount2", lambda: libc.umount2(victim.encode(), 0))
    call(prefix + "umount2 detach", lambda: libc.umount2(victim.encode(), 2))
    call(prefix + "umount parent", lambda: libc.umount2(parent.encode(), 2))
    call(prefix + "mount --move", lambda: libc.mount(victim.encode(), b"moved", None,
                                                     L(8192), None))
    # A non-recursive clone of the directory would show what lies under the mask.
    tree = call(prefix + "open_tree", lambda: libc.syscall(L(428), L(-100), parent.encode(),
                                                           L(1 | 0o2000000)))
    if tree >= 0:
        try:
            fd = os.open(os.path.basename(victim), os.O_RDONLY, dir_fd=tree)
            out[prefix + "open_tree read"] = "read:" + os.read(fd, 4096).decode()
        except OSError as exc:
            out[prefix + "open_tree read"] = errno.errorcode[exc.errno]
    read(prefix + "read after")

open("moved", "w").close()  # in the workspace, the cwd
attacks("")
# A nested user namespace holds every capability over its own copy of the mounts, whose
# inherited mounts the kernel locks together.
if call("unshare", lambda: libc.unshare(0x10000000 | 0x20000)) == 0:
    attacks("nested ")
print(json.dumps(out))
"""

PLANT = r"""
import json, os, sys
sys.path[:0] = sys.argv[4].split(":")
from sandboxtui.core.config import resolve
from sandboxtui.core.launch import prepare, start
from sandboxtui.core.plan import build_plan

ws, victim, bwrap = sys.argv[1], sys.argv[2], sys.argv[3]
overrides = ['sensitive_path_precheck_mode="off"'] + ([bwrap] if bwrap else [])
plan = build_plan(resolve(config_path=None, overrides=overrides, env={}), ws, {})
# Between the plan and the launch: the secret moves aside, a symlink takes its name.
os.rename(victim, victim + ".moved")
os.symlink("../../README.md", victim)
spec = prepare(plan, ["sh", "-c", "touch ran; cat " + victim + ".moved"])
running = start(spec, capture=True)
out = b"".join(event.data for event in running.events())
result = running.wait()
print(json.dumps({"exit": result.exit_code, "error": result.error, "out": out.decode()}))
"""


RACE = r"""
import json, os, subprocess, sys
sys.path[:0] = sys.argv[3].split(":")
from sandboxtui.core.config import resolve
from sandboxtui.core.launch import prepare, start
from sandboxtui.core.plan import build_plan

ws, bwrap = sys.argv[1], sys.argv[2]
overrides = ['sensitive_path_precheck_mode="off"'] + ([bwrap] if bwrap else [])
plan = build_plan(resolve(config_path=None, overrides=overrides, env={}), ws, {})
a, b = ws + "/packages/p00005", ws + "/packages/q00005"
# A second process: renames the package back and forth (EBUSY while a sandbox pins it).
renamer = subprocess.Popen([sys.executable, "-c", "import os, sys\n"
                            "while True:\n"
                            "    for s, d in ((sys.argv[1], sys.argv[2]),"
                            " (sys.argv[2], sys.argv[1])):\n"
                            "        try: os.rename(s, d)\n"
                            "        except OSError: pass\n", a, b])
outcomes = []
try:
    for _ in range(8):
        spec = prepare(plan, ["sh", ws + "/../cat.sh"])
        running = start(spec, capture=True)
        out = b"".join(event.data for event in running.events())
        result = running.wait()
        sys.stdout.write(out.decode(errors="replace"))  # the test looks for the canary
        outcomes.append((result.exit_code, result.error or ""))
finally:
    renamer.kill()
print(json.dumps(outcomes))
"""


def workspace(shared_dir: Path, user: str) -> Path:
    base = Path(tempfile.mkdtemp(dir=shared_dir))
    base.chmod(0o755)
    ws = base / "ws"
    for i in range(PACKAGES):
        pkg = ws / "packages" / f"p{i:05d}"
        pkg.mkdir(parents=True)
        (pkg / ".env.example").write_text(f"KEY={CANARY}-{i}\n")
    (ws / "README.md").write_text("readme\n")
    # Reads every package's secret without naming it (the precheck reads the command line).
    cat = 'for f in packages/*/.e*; do cat "$f"; done 2>/dev/null; true\n'
    for name, text in (("undo.py", UNDO), ("plant.py", PLANT), ("race.py", RACE),
                       ("cat.sh", cat)):
        (base / name).write_text(text)
    chown_tree(ws, user)
    return ws


def test_the_command_cannot_undo_a_mask(runner: Runner, shared_dir: Path) -> None:
    ws = workspace(shared_dir, runner.user)
    done = runner.run(ws, [python_for(runner.user), str(ws.parent / "undo.py"),
                           str(ws / os.path.dirname(VICTIM))])
    assert done.returncode == 0, done.stderr
    assert CANARY not in done.stdout + done.stderr
    out = json.loads(done.stdout.splitlines()[-1])
    prefixes = [""] + (["nested "] if out["unshare"] == "ok" else [])
    for prefix in prefixes:
        for attack in ("umount2", "umount2 detach", "umount parent", "mount --move"):
            assert out[prefix + attack] in ("EPERM", "EINVAL"), (prefix + attack, out)
        # The clone is refused, or it is recursive after all: the mask comes along.
        assert out[prefix + "open_tree"] in ("EPERM", "EINVAL") \
            or out[prefix + "open_tree read"] in ("EACCES", "read:"), out
        assert out[prefix + "read after"] == "EACCES", out
    assert (ws / VICTIM).read_text() == f"KEY={CANARY}-5\n"


def test_a_symlink_planted_after_the_plan_refuses_the_launch(runner: Runner,
                                                              shared_dir: Path) -> None:
    ws = workspace(shared_dir, runner.user)
    victim = ws / VICTIM
    bwrap = " ".join(runner.bwrap_options()[1:])  # the -c value, if any
    argv = [*runner.prefix()[:-2], str(ws.parent / "plant.py"), str(ws), str(victim), bwrap,
            SRC]
    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=ws, env=env)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.splitlines()[-1])
    assert out["exit"] == 4, out
    assert str(victim) in out["error"] and CANARY not in out["out"]
    assert not (ws / "ran").exists()  # nothing ran
    assert (ws / "README.md").read_text() == "readme\n"


def test_renames_by_a_second_process_never_show_a_secret(runner: Runner,
                                                          shared_dir: Path) -> None:
    """Once the plan is made, a second process renames a package back and forth while the
    same plan is launched again and again: each launch either runs with every secret
    unreadable, or is refused (exit 4) naming what moved. (The scan's own race, a rename
    while the planner lists the directory, is the planner's: here the plan is fixed.)"""
    ws = workspace(shared_dir, runner.user)
    bwrap = " ".join(runner.bwrap_options()[1:])
    argv = [*runner.prefix()[:-2], str(ws.parent / "race.py"), str(ws), bwrap, SRC]
    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, cwd=ws, env=env)
    assert done.returncode == 0, done.stderr
    assert CANARY not in done.stdout
    outcomes = json.loads(done.stdout.splitlines()[-1])
    assert len(outcomes) == 8
    for code, error in outcomes:
        assert code == 0 or code == 4 and ("p00005" in error or "q00005" in error), error
