"""The legacy Landlock pipeline sees the host's /dev (it has no private one): read access
"beneath /" must leave /dev out but for the device nodes a command needs, or a launcher in the
disk group could read a raw disk, and through it every masked file. Real launches, root and
nobody; a root launcher asking for legacy stays on bubblewrap (its private /dev has no disk)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from conftest import Runner, chown_tree, make_workspace

PROBE = r"""
import errno, json, os, sys
out = {}
for path in sys.argv[1:]:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        os.close(fd)
        out[path] = "opened"
    except OSError as exc:
        out[path] = errno.errorcode[exc.errno]
for path in ("/", "/dev"):
    try:
        out["list " + path] = "listed %d" % len(os.listdir(path))
    except OSError as exc:
        out["list " + path] = errno.errorcode[exc.errno]
print(json.dumps(out))
"""


def _block_device() -> str | None:
    for name in sorted(os.listdir("/sys/block")):
        if os.path.exists(f"/dev/{name}"):
            return f"/dev/{name}"
    return None


@pytest.mark.parametrize("user", ["root", "nobody"])
def test_legacy_opens_only_the_safe_devices(user: str, shared_dir: Path, tmp_path: Path) -> None:
    disk = _block_device()
    if disk is None:
        pytest.skip("no block device on this machine")
    base = Path(os.path.realpath(shared_dir)) / f"legacy-dev-{user}-{os.getpid()}"
    base.mkdir()
    base.chmod(0o755)
    ws = make_workspace(base)
    chown_tree(ws, user)
    runner = Runner(user, "system", shared_dir / "config.toml", "legacy")
    argv = [*runner.prefix(), "run", "--config", str(runner.config), "--cwd", str(ws),
            *runner.bwrap_options(), "--", "python3", "-c", PROBE, disk, "/dev/kmsg",
            "/dev/null", "/dev/urandom", "/dev/zero"]
    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout.splitlines()[-1])
    if user == "root":  # Landlock cannot confine root: bubblewrap's /dev has neither node
        assert "bubblewrap is used" in r.stderr
        assert got[disk] == "ENOENT" and got["/dev/kmsg"] == "ENOENT", got
    else:
        assert got[disk] == "EACCES" and got["/dev/kmsg"] == "EACCES", got
    assert {got[d] for d in ("/dev/null", "/dev/urandom", "/dev/zero")} == {"opened"}
    # listing stays possible (explain says / is ro): only opening a device is refused
    assert got["list /"].startswith("listed") and got["list /dev"].startswith("listed"), got
