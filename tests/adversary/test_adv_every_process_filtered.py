"""Every process inside the sandbox carries the seccomp filter and no-new-privs from its start,
bwrap's own init (PID 1) included: the command runs as the same uid and could otherwise write
shellcode into an unfiltered PID 1 through /proc/1/mem and run without any filter (reproduced
in proxy mode, where the command's own filter is loaded later by the inside program). Real
launches on every network mode, as root and as nobody, on both bwraps."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from conftest import Runner, chown_tree

MODES = {
    "off": [],
    "on": ["-c", "sandbox_workspace_write.network_access=true"],
    "proxy": ["-c", 'sandbox_workspace_write.network_access="proxy"'],
}

PROBE = r"""
import json, os
out = {}
for pid in sorted(int(p) for p in os.listdir("/proc") if p.isdigit()):
    try:
        with open(f"/proc/{pid}/status") as fh:
            fields = dict(line.split(":", 1) for line in fh if ":" in line)
    except OSError:
        continue
    out[pid] = (fields["Name"].strip(), fields["Seccomp"].strip(), fields["NoNewPrivs"].strip())
print(json.dumps(out))
"""


@pytest.mark.parametrize("mode", list(MODES))
def test_every_process_inside_is_filtered(runner: Runner, workspace: Path, mode: str) -> None:
    chown_tree(workspace, runner.user)
    argv = [*runner.prefix(), "run", "--config", str(runner.config), "--cwd", str(workspace),
            *runner.bwrap_options(), *MODES[mode], "--", "python3", "-c", PROBE]
    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
    env["HTTPS_PROXY"] = "http://127.0.0.1:9"  # proxy mode needs one to exist
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    procs = json.loads(r.stdout.splitlines()[-1])
    assert "1" in procs, procs  # bwrap's init is visible to the command
    unfiltered = {pid: p for pid, p in procs.items() if p[1] != "2" or p[2] != "1"}
    assert unfiltered == {}, procs
