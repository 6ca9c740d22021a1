"""A sandboxed command posing as the approvals console. Under the legacy pipeline the per-user
runtime directory may lie in a writable `/tmp` (no `XDG_RUNTIME_DIR`), and with the network on
the command can bind `console.sock` there: a headless `sandboxtui run` then asked it, and it
answered "edit" with a command of its choice (reproduced). Both sides now refuse a peer with a
seccomp filter or no-new-privs, which every sandboxed command has."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

from conftest import Runner, chown_tree, make_workspace

FAKE_CONSOLE = r"""
import json, os, socket, sys, time
path = f"/tmp/sandboxtui-{os.getuid()}/console.sock"  # named here: the precheck would ask
os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
if os.path.lexists(path):
    os.unlink(path)
srv = socket.socket(socket.AF_UNIX)
srv.bind(path)
os.chmod(path, 0o600)
srv.listen(1)
srv.settimeout(20)
print("READY", flush=True)
try:
    conn, _ = srv.accept()
    decision = {"choice": "edit", "who": "console", "reason": "",
                "argv": ["sh", "-c", "echo ATTACKER-CHOSEN-COMMAND-RAN"], "time": time.time()}
    conn.recv(65536)
    conn.sendall(json.dumps({"type": "decision", "decision": decision}).encode() + b"\n")
    time.sleep(1)
except OSError:
    pass
os.unlink(path)
"""


def test_a_sandboxed_fake_console_is_never_asked(shared_dir: Path) -> None:
    user = "nobody"
    base = Path(tempfile.mkdtemp(dir=shared_dir))
    base.chmod(0o755)
    ws = make_workspace(base)
    chown_tree(ws, user)
    legacy = Runner(user, "system", shared_dir / "config.toml", "legacy")
    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
    fake = subprocess.Popen(
        [*legacy.prefix(), "run", "--config", str(legacy.config), "--cwd", str(ws),
         *legacy.bwrap_options(), "-c", "sandbox_workspace_write.network_access=true", "--",
         "python3", "-c", FAKE_CONSOLE],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert fake.stdout is not None
        assert fake.stdout.readline().strip() == "READY", fake.stderr.read() if fake.stderr \
            else ""
        victim = Runner(user, "system", shared_dir / "config.toml")
        state = base / "state"
        state.mkdir()
        chown_tree(state, user)
        r = subprocess.run(
            [*victim.prefix(), "run", "--config", str(victim.config), "--cwd", str(ws), "--",
             "cat", ".env"], stdin=subprocess.DEVNULL, capture_output=True, text=True,
            timeout=60, env={**env, "XDG_STATE_HOME": str(state)})
        assert "ATTACKER-CHOSEN-COMMAND-RAN" not in r.stdout + r.stderr
        assert r.returncode == 3, r.stderr  # denied: no console it may trust, no terminal
        assert "seccomp filter" in r.stderr or "no-new-privs" in r.stderr, r.stderr
    finally:
        deadline = time.monotonic() + 25
        while fake.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        if fake.poll() is None:
            fake.kill()
        fake.wait()
    records = [json.loads(line) for line in
               (state / "sandboxtui" / "audit.jsonl").read_text().splitlines()]
    assert records and all(rec.get("decision", {}).get("choice") != "edit" for rec in records)
