"""Landlock confines writes, not metadata: the legacy pipeline let the command chmod, chown and
set xattrs on any file its uid owns anywhere on the host (a root launcher: `chmod 666
/etc/shadow`). A root launcher now stays on bubblewrap; for a normal user the legacy filters
refuse group/other-writable modes, owner changes and xattrs everywhere. Real launches, root
and nobody; the host file's metadata is checked afterwards."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

import pytest
from conftest import Runner, chown_tree, make_workspace

PROBE = r"""
import errno, json, os, sys
victim = sys.argv[1]
out = {}
def probe(name, fn):
    try:
        fn()
        out[name] = "ok"
    except OSError as exc:
        out[name] = errno.errorcode[exc.errno]
probe("chmod", lambda: os.chmod(victim, 0o666))
fd = os.open(victim, os.O_RDONLY)
probe("fchmod", lambda: os.fchmod(fd, 0o666))
probe("chown", lambda: os.chown(victim, os.getuid(), os.getgid()))
probe("setxattr", lambda: os.setxattr(victim, "user.sandboxtui", b"x"))
print(json.dumps(out))
"""


@pytest.mark.parametrize("user", ["root", "nobody"])
def test_legacy_cannot_change_metadata_outside_the_roots(user: str, shared_dir: Path) -> None:
    outside = Path(tempfile.mkdtemp(prefix="sandboxtui-meta-", dir="/var/tmp"))
    try:
        victim = outside / "victim"
        victim.write_text("host\n")
        victim.chmod(0o600)
        chown_tree(outside, user)
        before = os.stat(victim)
        base = Path(tempfile.mkdtemp(dir=shared_dir))
        base.chmod(0o755)
        ws = make_workspace(base)
        chown_tree(ws, user)
        runner = Runner(user, "system", shared_dir / "config.toml", "legacy")
        argv = [*runner.prefix(), "run", "--config", str(runner.config), "--cwd", str(ws),
                *runner.bwrap_options(), "--", "python3", "-c", PROBE, str(victim)]
        env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
        r = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)
        assert r.returncode == 0, r.stderr
        got = json.loads(r.stdout.splitlines()[-1])
        if user == "root":  # bubblewrap: the host is a read-only mount there
            assert "bubblewrap is used" in r.stderr and set(got.values()) == {"EROFS"}, got
        else:
            # xattrs answer EOPNOTSUPP (as a filesystem without them), so cp -p falls back
            assert got == {"chmod": "EPERM", "fchmod": "EPERM", "chown": "EPERM",
                           "setxattr": "ENOTSUP"}, got  # errno.errorcode names EOPNOTSUPP so
        after = os.stat(victim)
        assert (after.st_mode, after.st_uid) == (before.st_mode, before.st_uid)
        assert "user.sandboxtui" not in os.listxattr(victim)
    finally:
        subprocess.run(["rm", "-rf", str(outside)], check=False)
