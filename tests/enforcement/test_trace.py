"""`sandboxtui trace` (issue 14): the real tracer over the real sandbox, as root and as nobody.
Each refused operation comes back with its path, errno, access, deciding rule and a verified
suggestion; applying every suggestion as its -c flag makes those operations succeed while
`.env` stays masked; successful workloads report nothing."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest
from conftest import Runner, chown_tree, make_workspace

from sandboxtui.core import trace

SCRIPT = r"""
import os, socket, sys
outside, home, host, secret = sys.argv[1:5]
def attempt(name, fn):
    try:
        fn(); print(name, "ok")
    except OSError as e:
        print(name, e.errno)
attempt("outside", lambda: open(os.path.join(outside, "f"), "w").write("x"))
attempt("git-config", lambda: open(".git/config", "a").write("[x]\n"))
attempt("env", lambda: open(".env").read())
attempt("socket", lambda: socket.socket(socket.AF_UNIX).connect(host))
attempt("cache", lambda: open(os.path.join(home, ".cache", "x"), "w").write("x"))
attempt("mkdir", lambda: os.mkdir(os.path.join(secret, "sub")))
"""


@pytest.fixture
def setup(runner: Runner, shared_dir: Path) -> tuple[Path, Path, Path, Path, Path]:
    """The workspace (with its `none` entry `secret`), and outside every writable root (under
    /var/tmp): a directory of the runner's own, a HOME with .cache, a config file."""
    if shutil.which("strace") is None:
        pytest.fail("strace is missing: install it (CI does)")
    base = Path(tempfile.mkdtemp(dir=shared_dir))
    base.chmod(0o755)
    ws = make_workspace(base)
    (ws / "secret").mkdir()
    chown_tree(ws, runner.user)
    outside = Path(tempfile.mkdtemp(prefix="sandboxtui-trace-", dir="/var/tmp"))
    (outside / "dir").mkdir()
    (outside / "home" / ".cache").mkdir(parents=True)
    chown_tree(outside, runner.user)
    outside.chmod(0o755)
    config = base / "config.toml"
    config.write_text('default_permissions = "dev"\nsensitive_path_precheck_mode = "off"\n'
                      "[permissions.dev.filesystem]\n"
                      f'":workspace_roots" = "write"\n"{ws}/secret" = "none"\n')
    config.chmod(0o644)
    yield ws, outside / "dir", outside / "home", config, base
    shutil.rmtree(outside, ignore_errors=True)


def _tried(stderr: str) -> dict[str, str]:
    """What the script printed (on stderr: --json sends the command's stdout there)."""
    names = ("outside", "git-config", "env", "socket", "cache", "mkdir")
    return dict(line.split()[:2] for line in stderr.splitlines()
                if line.split()[:1] and line.split()[0] in names)


def _trace(runner: Runner, ws: Path, config: Path, home: Path, command: list[str],
           *flags: str) -> tuple[dict[str, object], subprocess.CompletedProcess[str]]:
    argv = [*runner.prefix(), "trace", "--json", "--config", str(config), "--cwd", str(ws),
            *runner.bwrap_options(), *flags, "--", *command]
    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"} | {"HOME": str(home)}
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env)
    return json.loads(done.stdout), done


def test_each_refusal_is_explained_and_its_suggestion_allows_it(
        runner: Runner, setup: tuple[Path, Path, Path, Path, Path]) -> None:
    ws, outside, home, config, base = setup
    sock = str(base / "host.sock")
    host = socket.socket(socket.AF_UNIX)
    host.bind(sock)
    os.chmod(sock, 0o777)
    host.listen(4)
    try:
        command = ["/usr/bin/python3", "-c", SCRIPT, str(outside), str(home), sock,
                   str(ws / "secret")]
        report, done = _trace(runner, ws, config, home, command)
        assert report["exit"] == 0, done.stderr
        tried = _tried(done.stderr)
        assert tried == {"outside": "30", "git-config": "30", "env": "13", "socket": "13",
                         "cache": "30", "mkdir": "13"}, done.stderr
        got = {(d["op"], d["path"], d["errno"], d["access"]): d for d in report["denials"]}
        real = os.path.realpath(ws)
        assert set(got) == {
            ("write", f"{outside}/f", "EROFS", "ro"),
            ("write", f"{real}/.git/config", "EROFS", "ro"),
            ("read", f"{real}/.env", "EACCES", "none"),
            ("connect", sock, "EACCES", "off"),
            ("write", f"{home}/.cache/x", "EROFS", "ro"),
            ("create", f"{real}/secret/sub", "EACCES", "none"),
        }, report
        by_op = {key[0] + ":" + key[1].rsplit("/", 1)[-1]: d for key, d in got.items()}
        assert by_op["write:config"]["suggestion"]["flag"] is None
        assert "protected" in by_op["write:config"]["suggestion"]["widens"]
        assert by_op["read:.env"]["suggestion"]["flag"] is None
        assert "sensitive" in by_op["read:.env"]["rule"]
        assert by_op["write:f"]["suggestion"]["flag"] == (
            f"-c 'sandbox_workspace_write.writable_roots=[\"{outside}\"]'")
        assert by_op["write:x"]["suggestion"]["flag"] == (
            f"-c 'sandbox_workspace_write.writable_roots=[\"{home}/.cache\"]'")
        assert by_op["connect:host.sock"]["suggestion"]["flag"] == (
            "-c sandbox_workspace_write.network_access=true")
        assert by_op["create:sub"]["suggestion"]["flag"] == (
            f"-c 'permissions.dev.filesystem.\"{ws}/secret\"=\"write\"'")
        assert str(config) in by_op["create:sub"]["provenance"]

        # Each suggestion, applied as its -c flag, makes its operation succeed; .env stays
        # masked and .git/config read-only (they had none).
        for name, key in (("outside", "write:f"), ("cache", "write:x"),
                          ("socket", "connect:host.sock"), ("mkdir", "create:sub")):
            flag = shlex.split(by_op[key]["suggestion"]["flag"])
            again, done = _trace(runner, ws, config, home, command, *flag)
            tried = _tried(done.stderr)
            assert tried[name] == "ok" and tried["env"] == "13", (flag, done.stderr)
            assert tried["git-config"] == "30", done.stderr
            assert key not in {d["op"] + ":" + d["path"].rsplit("/", 1)[-1]
                               for d in again["denials"]}
            if name == "mkdir":
                (ws / "secret" / "sub").rmdir()
    finally:
        host.close()


@pytest.mark.parametrize("command", [["/usr/bin/python3", "-c", "import json"],
                                     ["git", "status", "--short"]], ids=["python", "git"])
def test_successful_workloads_report_nothing(runner: Runner, command: list[str],
                                             setup: tuple[Path, Path, Path, Path, Path]) -> None:
    ws, _, home, _, base = setup
    (ws / "secret").rmdir()  # the workload's workspace has no denied entry
    plain = base / "plain.toml"
    plain.write_text('sensitive_path_precheck_mode = "off"\n')
    plain.chmod(0o644)
    report, done = _trace(runner, ws, plain, home, command)
    assert report["exit"] == 0 and report["denials"] == [], done.stderr
    # as nobody git may meet the host's own file modes (root's config): reported apart
    assert all(d["errno"] == "EACCES" for d in report["host_permissions"]), report


def test_without_the_tracer_trace_refuses_and_runs_nothing(monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    monkeypatch.setattr(trace.shutil, "which", lambda *a, **k: None)
    with pytest.raises(trace.TraceError) as refused:
        trace.TraceLog()
    assert refused.value.exit_code == 4 and "apt-get install strace" in str(refused.value)
