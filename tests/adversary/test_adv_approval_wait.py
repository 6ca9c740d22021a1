"""A plan made before an approval goes stale while the approver takes its time (attack review,
H2): the launch used the plan made before the question, so a `.env` created during the wait was
readable. The launch now plans again after the decision: a secret created meanwhile is masked,
and a path that became sensitive and unmasked since (one the approver never saw) is refused."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from conftest import CANARY, Runner, chown_tree, make_workspace

# A console of the runner's user (the product's own broker): on the request, it runs the
# scripted change to the workspace (the attacker's move during the wait), then approves once.
CONSOLE = """
import os, sys
from sandboxtui.core.approvals.broker import Broker
from sandboxtui.core.approvals.model import Choice, Decision
ws, change = sys.argv[1], sys.argv[2]
broker = Broker(workspace=ws)
broker.start()
print("serving", flush=True)
pending = broker.next_request(60)
exec(change)
print("asked:", pending.request.argv, flush=True)
pending.decide(Decision(Choice.ONCE, "scripted approver"))
broker.close()
"""


def _approved_run(runner: Runner, ws: Path, change: str, command: list[str]
                  ) -> subprocess.CompletedProcess[str]:
    """`command` run headless in `ws`, approved by the scripted console after `change`."""
    state = ws.parent / "state"  # the audit log (nobody's home does not exist)
    state.mkdir()
    chown_tree(state, runner.user)
    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"} | {
        "XDG_STATE_HOME": str(state)}
    console = subprocess.Popen([*runner.prefix()[:-2], "-c", CONSOLE, str(ws), change],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env=env)
    try:
        assert console.stdout is not None and console.stdout.readline() == "serving\n"
        r = subprocess.run([*runner.prefix(), "run", "--config", str(runner.config), "--cwd",
                            str(ws), *runner.bwrap_options(), "--", *command],
                           capture_output=True, text=True, timeout=60, env=env,
                           stdin=subprocess.DEVNULL)
        said = console.communicate(timeout=30)[0]
    finally:
        if console.poll() is None:
            console.kill()
            console.wait()
    assert "asked:" in said, (said, r.stderr)
    return r


def _workspace(shared_dir: Path, runner: Runner) -> Path:
    base = Path(tempfile.mkdtemp(dir=shared_dir))
    base.chmod(0o755)
    ws = make_workspace(base)
    (ws / "sub" / ".env.local").unlink()
    (base / "outside").mkdir()
    (base / "outside" / ".env").write_text(f"OUTSIDE={CANARY}\n")
    chown_tree(base, runner.user)
    return ws


def test_a_secret_created_while_the_approval_is_awaited_stays_masked(
        runner: Runner, shared_dir: Path) -> None:
    ws = _workspace(shared_dir, runner)
    create = f"open(os.path.join(ws, '.env.local'), 'w').write('LATE={CANARY}\\n')"
    r = _approved_run(runner, ws, create, ["cat", ".env.local"])
    assert (ws / ".env.local").exists()
    assert CANARY not in r.stdout + r.stderr, r.stderr
    assert r.returncode != 0, r.stderr


def test_a_path_that_turned_sensitive_while_awaited_is_refused(
        runner: Runner, shared_dir: Path) -> None:
    ws = _workspace(shared_dir, runner)
    # Approved: `cat .env notes`, `.env` masked. Meanwhile `notes` becomes a link to a `.env`
    # outside the workspace, which the sandbox does not mask: the approver never saw it.
    link = "os.symlink(os.path.join(os.path.dirname(ws), 'outside', '.env'), " \
           "os.path.join(ws, 'notes'))"
    r = _approved_run(runner, ws, link, ["cat", ".env", "notes"])
    assert CANARY not in r.stdout, r.stdout
    assert r.returncode == 3, r.stderr
    assert "while the approval was awaited" in r.stderr and "notes" in r.stderr, r.stderr
