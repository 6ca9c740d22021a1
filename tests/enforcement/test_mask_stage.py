"""The mask stage (core/mask_stage.py): thousands of masked files, mounted by the launcher inside
the sandbox while bwrap waits, hide every secret as bwrap's own masks did; the plan, explain and
`--dry-run` still show every one of them. As root and as `nobody`."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from conftest import CANARY, Runner, chown_tree, python_for

MASKED = 3000
LINKED = "packages/g/p00007/notes.txt"  # a hard link of g/p00007/.env.example

PROBE = r"""
import errno, json, os, sys
canary = sys.argv[1]
outcomes, sizes, inodes, leaks = {}, set(), set(), []
for top, dirs, files in os.walk("packages"):
    for name in files:
        if name == "index.js":
            continue
        path = os.path.join(top, name)
        try:
            with open(path, "rb") as fh:
                data = fh.read()
            outcome = "read:%d" % len(data)
            if canary.encode() in data:
                leaks.append(path)
        except OSError as exc:
            outcome = errno.errorcode[exc.errno]
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        st = os.lstat(path)
        sizes.add(st.st_size)
        inodes.add((st.st_dev, st.st_ino))

def attempt(fn):
    try:
        fn()
        return "ok"
    except OSError as exc:
        return errno.errorcode[exc.errno]

def create(path):
    with open(path, "x") as fh:
        fh.write("x")

print(json.dumps({
    "outcomes": outcomes, "sizes": sorted(sizes), "inodes": len(inodes), "leaks": leaks,
    "index": open("packages/g/h/p00002/index.js").read(),
    "rename pin": attempt(lambda: os.rename("packages/g/p00001", "packages/g/moved")),
    "rename mask": attempt(lambda: os.rename("packages/p00003/.env.example", "packages/x")),
    "write mask": attempt(lambda: open("packages/p00003/.env.example", "w")),
    "create beside": attempt(lambda: create("packages/p00003/new.txt")),
}))
"""


def monorepo(shared_dir: Path, user: str) -> Path:
    """A workspace with MASKED packages, each with a `.env.example` holding the canary, at
    three depths, and one hard link of a secret under an innocent name."""
    base = Path(tempfile.mkdtemp(dir=shared_dir))
    base.chmod(0o755)
    ws = base / "ws"
    for i in range(MASKED):
        pkg = ws / "packages" / ("", "g/", "g/h/")[i % 3] / f"p{i:05d}"
        pkg.mkdir(parents=True)
        (pkg / ".env.example").write_text(f"KEY={CANARY}-{i}\n")
        (pkg / "index.js").write_text("module.exports = 1\n")
    os.link(ws / "packages/g/p00007/.env.example", ws / LINKED)
    (base / "probe.py").write_text(PROBE)
    chown_tree(ws, user)
    return ws


def test_thousands_of_masked_files_stay_hidden(runner: Runner, shared_dir: Path) -> None:
    ws = monorepo(shared_dir, runner.user)
    done = runner.run(ws, [python_for(runner.user), str(ws.parent / "probe.py"), CANARY],
                      timeout=300)
    assert done.returncode == 0, done.stderr
    assert CANARY not in done.stdout + done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    # Every secret and its other name: unreadable, empty, all the one mode-000 file.
    assert result["outcomes"] == {"EACCES": MASKED + 1}
    assert result["sizes"] == [0] and result["inodes"] == 1 and result["leaks"] == []
    assert result["index"] == "module.exports = 1\n"
    # Pins and masks hold as bwrap's did: no rename carries a mask away, nothing is written.
    assert result["rename pin"] == "EBUSY" and result["rename mask"] in ("EBUSY", "EXDEV")
    assert result["write mask"] in ("EACCES", "EROFS")
    assert result["create beside"] == "ok"
    assert (ws / "packages/p00003/.env.example").read_text() == f"KEY={CANARY}-3\n"
