"""Sensitive paths under the real sandbox, and the precheck/approval gate of `sandboxtui run`.

The kernel's answer is asserted (errno), and the host files are compared before and after; as
root and as `nobody`, with the system and the vendored bwrap.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import CANARY, RUNNERS, Runner, chown_tree, make_workspace, python_for
from test_escape import PROBE_HELPERS

from sandboxtui.core.approvals.broker import Broker
from sandboxtui.core.approvals.model import Choice, Decision
from sandboxtui.core.audit import read_audit

PROBE = PROBE_HELPERS + r"""
def create(path):
    with open(path, "x") as fh:
        fh.write("new\n")

for name in (".env", "sub/dir/.env", "sub/.env.local", ".env.d/secret.txt"):
    probe("read " + name, lambda: read(name))
    probe("append " + name, lambda: append(name))
probe("list .env.d", lambda: sorted(os.listdir(".env.d")))
probe("create .env.d/new", lambda: create(".env.d/new"))
probe("size .env", lambda: "size:%d" % os.stat(".env").st_size)
probe("read README.md", lambda: read("README.md"))
probe("append README.md", lambda: append("README.md"))
probe("create new.txt", lambda: create("new.txt"))
probe("create sub/dir/ok.txt", lambda: create("sub/dir/ok.txt"))
probe("mkdir newdir", lambda: os.mkdir("newdir"))
print(json.dumps(out))
"""

SECRETS = (".env", "sub/dir/.env", "sub/.env.local", ".env.d/secret.txt")


def sensitive_workspace(shared_dir: Path, user: str) -> Path:
    base = Path(tempfile.mkdtemp(dir=shared_dir))
    base.chmod(0o755)
    ws = make_workspace(base)
    (ws / "sub" / "dir").mkdir()
    (ws / "sub" / "dir" / ".env").write_text(f"DEEP={CANARY}\n")
    (ws / ".env.d").mkdir()  # a directory matching `.env.*`
    (ws / ".env.d" / "secret.txt").write_text(f"DIR={CANARY}\n")
    (base / "probe.py").write_text(PROBE)
    chown_tree(ws, user)
    return ws


def host_state(ws: Path) -> dict[str, Any]:
    return {name: (ws / name).read_bytes() for name in SECRETS} | {
        ".env.d": sorted(os.listdir(ws / ".env.d"))}


@pytest.fixture(scope="module", params=RUNNERS, ids=lambda p: "-".join(p))
def launched(request: pytest.FixtureRequest,
             shared_dir: Path) -> Iterator[tuple[dict[str, str], subprocess.CompletedProcess[str],
                                                 dict[str, Any], dict[str, Any], Path]]:
    """One real launch per (user, bwrap) running every probe."""
    user, bwrap = request.param
    runner = Runner(user, bwrap, shared_dir / "config.toml")
    ws = sensitive_workspace(shared_dir, user)
    before = host_state(ws)
    done = runner.run(ws, [python_for(user), str(ws.parent / "probe.py")],
                      start_new_session=True)
    assert done.returncode == 0, done.stderr
    yield json.loads(done.stdout.splitlines()[-1]), done, before, host_state(ws), ws


def test_sensitive_files_and_directories_are_unreadable(launched: Any) -> None:
    result, done, before, after, _ws = launched
    for name in SECRETS:
        assert result[f"read {name}"] == "EACCES", name
    for name in SECRETS:  # mode-000 masks: refused before the read-only mount matters
        assert result[f"append {name}"] == "EACCES", name
    assert result["list .env.d"] == "EACCES"
    assert result["create .env.d/new"] == "EACCES"
    assert result["size .env"] == "size:0"
    assert CANARY not in done.stdout + done.stderr
    assert after == before  # the host files are untouched


def test_the_rest_of_the_workspace_stays_readable_and_writable(launched: Any) -> None:
    result, _done, _before, _after, ws = launched
    assert result["read README.md"] == "read:hello\nchanged\n"
    for name in ("append README.md", "create new.txt", "create sub/dir/ok.txt", "mkdir newdir"):
        assert result[name] == "ok", name
    assert (ws / "README.md").read_text() == "hello\nchanged\npwned\n"
    assert (ws / "new.txt").read_text() == "new\n"
    assert (ws / "sub" / "dir" / "ok.txt").read_text() == "new\n"
    assert (ws / "newdir").is_dir()


# --- the gate in `sandboxtui run` -------------------------------------------------------------


def gate_env(shared_dir: Path, user: str) -> dict[str, str]:
    """Private runtime and state directories for `user`, so no real console is asked."""
    base = Path(tempfile.mkdtemp(dir=shared_dir))
    base.chmod(0o755)
    for name in ("runtime", "state"):
        (base / name).mkdir(mode=0o700)
    chown_tree(base / "runtime", user)
    chown_tree(base / "state", user)
    return {**os.environ, "XDG_RUNTIME_DIR": str(base / "runtime"),
            "XDG_STATE_HOME": str(base / "state")}


def run_gated(runner: Runner, ws: Path, env: dict[str, str], command: list[str],
              *options: str) -> subprocess.CompletedProcess[str]:
    argv = [*runner.prefix(), "run", "--config", str(runner.config), "--cwd", str(ws),
            *runner.bwrap_options(), *options, "--", *command]
    # A new session: no controlling terminal, so ask mode cannot prompt anyone.
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60,
                          start_new_session=True)


@pytest.fixture(params=[("root", "system"), ("nobody", "system")], ids=lambda p: "-".join(p))
def gated(request: pytest.FixtureRequest, shared_dir: Path) -> tuple[Runner, Path, dict[str, str]]:
    user, bwrap = request.param
    runner = Runner(user, bwrap, shared_dir / "config.toml")
    return runner, sensitive_workspace(shared_dir, user), gate_env(shared_dir, user)


def test_block_mode_exits_3_naming_the_path_and_runs_nothing(gated: Any) -> None:
    runner, ws, env = gated
    done = run_gated(runner, ws, env, ["sh", "-c", "cat sub/dir/.env > leaked"],
                     "-c", 'sensitive_path_precheck_mode="block"')
    assert done.returncode == 3, done.stderr
    assert "blocked by sensitive_path_precheck_mode = block" in done.stderr
    assert str(ws / "sub" / "dir" / ".env") in done.stderr
    assert not (ws / "leaked").exists()
    audit = read_audit(os.path.join(env["XDG_STATE_HOME"], "sandboxtui", "audit.jsonl"))
    assert [r.kind for r in audit.records] == ["request", "decision"]


def test_ask_mode_without_console_or_terminal_is_denied(gated: Any) -> None:
    runner, ws, env = gated
    done = run_gated(runner, ws, env, ["sh", "-c", "cat <.env > leaked"])
    assert done.returncode == 3, done.stderr
    assert "no console is running and there is no terminal" in done.stderr
    assert not (ws / "leaked").exists()


def test_off_mode_runs_and_the_os_still_denies(gated: Any) -> None:
    runner, ws, env = gated
    done = run_gated(runner, ws, env, ["cat", ".env"], "-c",
                     'sensitive_path_precheck_mode="off"')
    assert done.returncode == 1
    assert "Permission denied" in done.stderr and CANARY not in done.stdout


def test_ask_mode_approved_by_a_running_console(shared_dir: Path) -> None:
    """A console (this test) approves a headless run; the sandbox still masks the file."""
    runner = Runner("root", "system", shared_dir / "config.toml")
    ws = sensitive_workspace(shared_dir, "root")
    env = gate_env(shared_dir, "root")
    with Broker(os.path.join(env["XDG_RUNTIME_DIR"], "sandboxtui")) as broker:
        argv = [*runner.prefix(), "run", "--config", str(runner.config), "--cwd", str(ws), "--",
                "sh", "-c", "cat .env; echo rc=$?"]
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, start_new_session=True)
        try:
            pending = broker.next_request(timeout=30)
            assert pending is not None
            assert pending.request.matched == (str(ws / ".env"),)
            pending.decide(Decision(Choice.ONCE, "test-console"))
            out, err = proc.communicate(timeout=60)
        finally:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "Permission denied" in err and "rc=1" in out and CANARY not in out
    audit = read_audit(os.path.join(env["XDG_STATE_HOME"], "sandboxtui", "audit.jsonl"))
    assert audit.records[-1].data["decision"]["who"] == "test-console"
