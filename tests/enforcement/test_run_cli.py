"""`sandboxtui run` and the launcher API: exit codes, streaming, timeouts, cleanup,
environment scrubbing, bwrap selection, dry runs."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from conftest import ABSENT_BWRAP, Runner, chown_tree, plan_for

from sandboxtui.core.bwrap import data_fd
from sandboxtui.core.config import resolve
from sandboxtui.core.launch import (
    LaunchError,
    OutputEvent,
    RunningCommand,
    prepare,
    scrub_env,
    start,
)
from sandboxtui.core.pipelines.stage import STAGE_ARGV
from sandboxtui.core.plan import build_plan

CLI = [sys.executable, "-m", "sandboxtui"]


def sandboxtui(ws: Path, *args: str, env: dict[str, str] | None = None,
               timeout: float = 60) -> subprocess.CompletedProcess[str]:
    base = {**os.environ, "XDG_CONFIG_HOME": "/nonexistent-sandboxtui-config"}
    return subprocess.run([*CLI, "run", "--cwd", str(ws), *args], capture_output=True,
                          text=True, env={**base, **(env or {})}, timeout=timeout)


def gone(marker: str, within: float = 5.0) -> bool:
    """No host process mentions `marker` (waits for the kernel to reap the namespace)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        alive = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                if marker.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                    alive.append(pid)
            except OSError:
                pass
        if not alive:
            return True
        time.sleep(0.05)
    return False


def marker() -> str:
    return f"1000.{secrets.randbelow(10**9):09d}"


# --- exit codes -------------------------------------------------------------------------------


def test_exit_code_is_the_commands(tmp_path: Path) -> None:
    done = sandboxtui(tmp_path, "--", "sh", "-c", "echo out; echo err >&2; exit 3")
    own = [line for line in done.stderr.splitlines() if not line.startswith("sandboxtui: ")]
    assert (done.returncode, done.stdout, own) == (3, "out\n", ["err"])


def test_killed_by_signal_is_128_plus_n(tmp_path: Path) -> None:
    assert sandboxtui(tmp_path, "--", "sh", "-c", "kill -TERM $$").returncode == 128 + 15


def test_not_found_is_127_and_runs_nothing(tmp_path: Path) -> None:
    done = sandboxtui(tmp_path, "--", "no-such-command-sandboxtui")
    assert done.returncode == 127
    assert "command not found" in done.stderr


def test_not_executable_is_126(tmp_path: Path) -> None:
    (tmp_path / "script").write_text("#!/bin/sh\necho ran\n")
    done = sandboxtui(tmp_path, "--", "./script")
    assert done.returncode == 126 and "ran" not in done.stdout
    assert "permission denied" in done.stderr


def test_exec_failure_inside_the_sandbox_is_127_not_4(tmp_path: Path) -> None:
    script = tmp_path / "script"
    script.write_text("#!/nonexistent/interpreter\n")
    script.chmod(0o755)
    done = sandboxtui(tmp_path, "--", "./script")
    assert done.returncode == 127, done.stderr
    assert "could not be executed inside the sandbox" in done.stderr


def test_unenforceable_plan_is_refused_with_4(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / ".codex").symlink_to(elsewhere)
    done = sandboxtui(ws, "--", "sh", "-c", "touch ran")
    assert done.returncode == 4
    assert ".codex is a symlink" in done.stderr
    assert not (ws / "ran").exists()


def test_address_space_limit_applies_to_the_command_not_to_the_stage(tmp_path: Path) -> None:
    """The limits come after every import of the exec stage: 12 MB is plenty for `sh` (a
    stage importing Landlock under the limit died of a MemoryError: traceback, exit 1)."""
    done = sandboxtui(tmp_path, "-c", "features.use_legacy_landlock=true", "-c",
                      "limits.address_space=12000000", "--", "sh", "-c", "ulimit -v")
    assert (done.returncode, done.stdout) == (0, f"{12000000 // 1024}\n"), done.stderr


def test_any_failure_before_the_exec_is_4_with_a_status_record(tmp_path: Path) -> None:
    """Whatever goes wrong while the stage restricts itself (here a MemoryError: the seccomp
    program is copied after the address-space limit is in force) means nothing ran: exit 4
    and a record on the status fd, never a traceback and exit 1."""
    status_r, status_w = os.pipe()
    bpf_fd = data_fd(bytes(8 << 20), "test-bpf")
    spec = {"argv": ["touch", str(tmp_path / "ran")], "limits": {"address_space": 1 << 20},
            "seccomp_fd": bpf_fd, "status_fd": status_w}
    spec_fd = data_fd(json.dumps(spec).encode(), "test-spec")
    try:
        done = subprocess.run([*STAGE_ARGV, str(spec_fd)], pass_fds=(spec_fd, bpf_fd, status_w),
                              capture_output=True, text=True, timeout=30)
        os.close(status_w)
        with os.fdopen(status_r, "rb") as fh:
            record = json.loads(fh.read())
    finally:
        for fd in (spec_fd, bpf_fd):
            os.close(fd)
    assert done.returncode == 4, done.stderr
    assert record == {"exit-code": 4, "error": "cannot enforce the sandbox: MemoryError"}
    assert not (tmp_path / "ran").exists()


def test_unusable_bwrap_is_4_with_the_cause(tmp_path: Path) -> None:
    fake = tmp_path / "bwrap"
    fake.write_text("#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\n"
                    "exit 1\n")
    fake.chmod(0o755)
    ws = tmp_path / "ws"
    ws.mkdir()
    done = sandboxtui(ws, "-c", f'system_bwrap="{fake}"', "--", "true")
    assert done.returncode == 4
    assert "No permissions to create new namespace" in done.stderr
    assert "could not be set up" in done.stderr


def test_usage_and_config_errors_are_2(tmp_path: Path) -> None:
    assert sandboxtui(tmp_path, "--").returncode == 2
    assert sandboxtui(tmp_path, "--timeout", "-1", "--", "true").returncode == 2
    bad = sandboxtui(tmp_path, "-c", "sandbox_mode=nonsense", "--", "true")
    assert bad.returncode == 2 and "sandbox_mode" in bad.stderr


# --- bwrap selection, warnings, unsandboxed ---------------------------------------------------


def test_missing_system_bwrap_falls_back_to_the_vendored_one_with_a_warning(
        tmp_path: Path) -> None:
    done = sandboxtui(tmp_path, "-c", f'system_bwrap="{ABSENT_BWRAP}"', "--", "sh", "-c",
                      "grep Seccomp: /proc/self/status")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["Seccomp:", "2"]
    assert f"sandboxtui: warning: {ABSENT_BWRAP} is missing; the vendored bwrap" in done.stderr


def test_danger_full_access_runs_directly_with_a_warning(tmp_path: Path) -> None:
    done = sandboxtui(tmp_path, "-s", "danger-full-access", "--", "sh", "-c",
                      "grep Seccomp: /proc/self/status")
    assert done.returncode == 0
    assert done.stdout.split() == ["Seccomp:", "0"]
    assert "sandboxtui: warning: sandbox_mode = danger-full-access" in done.stderr


# --- environment ------------------------------------------------------------------------------


def test_secret_looking_variables_are_not_passed_unless_configured(tmp_path: Path) -> None:
    env = {"GITHUB_TOKEN": "t", "MY_API_KEY": "k", "AWS_SECRET_ACCESS_KEY": "a",
           "DB_PASSWORD": "p", "PLAIN_SETTING": "visible"}
    done = sandboxtui(tmp_path, "--", "env", env=env)
    names = {line.split("=", 1)[0] for line in done.stdout.splitlines()}
    assert "PLAIN_SETTING" in names and "PATH" in names
    assert not names & {"GITHUB_TOKEN", "MY_API_KEY", "AWS_SECRET_ACCESS_KEY", "DB_PASSWORD"}
    allowed = sandboxtui(tmp_path, "-c", 'env_passthrough=["GITHUB_TOKEN", "AWS_*"]', "--",
                         "env", env=env)
    names = {line.split("=", 1)[0] for line in allowed.stdout.splitlines()}
    assert {"GITHUB_TOKEN", "AWS_SECRET_ACCESS_KEY"} <= names
    assert "MY_API_KEY" not in names


@pytest.mark.parametrize("staged_by", ["features.use_legacy_landlock=true",
                                       "limits.open_files=64"])
def test_the_exec_stage_never_imports_from_the_workspace(shared_dir: Path, staged_by: str) -> None:
    """The exec stage runs unsandboxed with the workspace as its cwd: an empty PYTHONPATH entry
    must not make it import a sitecustomize.py that an earlier sandboxed command planted. Legacy
    Landlock is launched by `nobody` (a root launcher stays on bubblewrap)."""
    user = "nobody" if "legacy" in staged_by else "root"
    base = Path(tempfile.mkdtemp(dir=shared_dir))
    base.chmod(0o755)
    ws = base / "ws"
    ws.mkdir()
    planted = base / "planted"
    (ws / "sitecustomize.py").write_text(f"open({str(planted)!r}, 'w').close()\n")
    env = {"PYTHONPATH": ":"}
    # The plant works on an interpreter started the way the stage used to be (-P -s)...
    subprocess.run([sys.executable, "-P", "-s", "-c", "pass"], cwd=ws, check=True,
                   env={**os.environ, **env})
    assert planted.exists()
    planted.unlink()
    # ...but not on the stage.
    chown_tree(base, user)
    runner = Runner(user, "system", shared_dir / "config.toml")
    # (runuser's `env PYTHONPATH=...` replaces the variable: it gets the empty entry too)
    prefix = [a.replace("PYTHONPATH=", "PYTHONPATH=:", 1) for a in runner.prefix()]
    argv = [*prefix, "run", "--config", str(runner.config), "--cwd", str(ws), "-c", staged_by,
            "--", "true"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60,
                          env={**os.environ, **env})
    assert done.returncode == 0, done.stderr
    assert ("legacy Landlock" in done.stderr) is (user == "nobody")  # its warnings
    assert not planted.exists()


SECRETS = {"MYSQL_PWD": "p", "DB_PASS": "p", "SMTP_PASS": "p", "GH_PAT": "p",
           "DOCKER_CREDS": "p", "NETRC": "machine x", "SENTRY_DSN": "https://k@sentry.example/1",
           "DATABASE_URL": "postgres://app:hunter2@db.example:5432/app",
           "REDIS_URL": "redis://:hunter2@cache.example:6379/0", "GITHUB_AUTH": "p",
           "AUTH_HEADER": "p", "HTTP_PROXY": "http://user:pw@proxy.example:3128"}
KEPT = {"GIT_AUTHOR_NAME": "A", "GIT_AUTHOR_EMAIL": "a@example.invalid", "PWD": "/w",
        "OLDPWD": "/", "PATH": "/usr/bin:/bin", "HOME": "/root", "AUTHOR": "A",
        "PLAIN_URL": "https://example.invalid/a:b", "REDIS_HOST_URL": "redis://cache:6379/0",
        "MAILTO": "a@example.invalid"}


def test_scrub_env_drops_secret_names_and_urls_with_credentials() -> None:
    kept, dropped = scrub_env({**SECRETS, **KEPT}, passthrough=[])
    assert kept == KEPT
    assert dropped == tuple(sorted(SECRETS))
    kept, dropped = scrub_env({**SECRETS, **KEPT}, passthrough=["DATABASE_URL", "*_PASS"])
    assert {"DATABASE_URL", "DB_PASS", "SMTP_PASS"} <= kept.keys()
    assert "REDIS_URL" in dropped


# --- dry run ----------------------------------------------------------------------------------


def test_dry_run_prints_argv_and_rules_and_runs_nothing(tmp_path: Path) -> None:
    done = sandboxtui(tmp_path, "--dry-run", "--", "touch", "ran")
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "ran").exists()
    lines = [line.strip() for line in done.stdout.splitlines()]
    for flag in ("--new-session", "--die-with-parent", "--unshare-user", "--unshare-pid",
                 "--unshare-net", "--cap-drop", "--seccomp"):
        assert repr(flag) in lines
    assert lines.index("'--'") == lines.index("'touch'") - 1
    assert "process_vm_writev" in done.stdout and "recvfrom" in done.stdout


# --- streaming, timeouts, nothing left behind ---------------------------------------------------


def test_output_streams_live(tmp_path: Path) -> None:
    proc = subprocess.Popen([*CLI, "run", "--cwd", str(tmp_path), "--", "sh", "-c",
                             "echo first; sleep 3; echo second"], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None
    start_time = time.monotonic()
    assert proc.stdout.readline() == "first\n"
    assert time.monotonic() - start_time < 2.5
    proc.kill()
    proc.wait()


def test_timeout_kills_the_whole_sandbox(tmp_path: Path) -> None:
    m = marker()
    started = time.monotonic()
    done = sandboxtui(tmp_path, "--timeout", "0.5", "--", "sh", "-c",
                      f"sleep {m} & sleep {m}; echo never")
    assert done.returncode == 128 + signal.SIGKILL
    assert time.monotonic() - started < 10
    assert "timed out" in done.stderr and "never" not in done.stdout
    assert gone(m)


def test_leftover_processes_die_with_the_command(tmp_path: Path) -> None:
    m = marker()
    done = sandboxtui(tmp_path, "--", "sh", "-c", f"setsid sleep {m} & echo started")
    assert done.returncode == 0 and done.stdout == "started\n"
    assert gone(m)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
def test_the_sandbox_dies_with_sandboxtui(tmp_path: Path, sig: signal.Signals) -> None:
    m = marker()
    proc = subprocess.Popen([*CLI, "run", "--cwd", str(tmp_path), "--", "sh", "-c",
                             f"echo up; sleep {m}"], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "up\n"
    proc.send_signal(sig)
    code = proc.wait(timeout=10)
    assert code == (-9 if sig is signal.SIGKILL else 130)
    assert gone(m)


# --- the launcher API (what the TUI uses) -------------------------------------------------------


def test_capture_mode_delivers_events_to_a_callback(tmp_path: Path) -> None:
    events: list[OutputEvent] = []
    running = start(prepare(plan_for(tmp_path, config=None),
                            ["sh", "-c", "echo a; echo b >&2; exit 7"]),
                    capture=True, on_output=events.append)
    result = running.wait()
    assert (result.exit_code, result.error, result.timed_out) == (7, None, False)
    assert sorted((e.stream, e.data) for e in events) == [("stderr", b"b\n"),
                                                         ("stdout", b"a\n")]


def test_capture_mode_reports_exec_failure_precisely(tmp_path: Path) -> None:
    script = tmp_path / "script"
    script.write_text("#!/nonexistent/interpreter\n")
    script.chmod(0o755)
    running = start(prepare(plan_for(tmp_path, config=None), ["./script"]), capture=True)
    list(running.events())
    result = running.wait()
    assert result.exit_code == 127
    assert result.error == "./script: No such file or directory"


def test_cancel_kills_the_sandbox(tmp_path: Path) -> None:
    m = marker()
    running = start(prepare(plan_for(tmp_path, config=None), ["sh", "-c", f"sleep {m}"]),
                    capture=True)
    threading.Timer(0.3, running.cancel).start()
    result = running.wait()
    assert result.cancelled and result.exit_code == 128 + signal.SIGKILL, result
    assert result.signal == signal.SIGKILL
    assert gone(m)


def test_cancel_during_bwrap_setup_still_kills_the_sandbox(tmp_path: Path) -> None:
    """bwrap arms its sandbox's die-with-parent only after setup: a cancel that lands during
    setup must still take the sandbox down, not wait for the command to finish."""
    for _ in range(5):
        m = f"6.{secrets.randbelow(10**9):09d}"  # a bug shows as a 6 s wait, not a hang
        running = start(prepare(plan_for(tmp_path, config=None), ["sh", "-c", f"sleep {m}"]),
                        capture=True)
        running.cancel()
        t = time.monotonic()
        result = running.wait()
        assert result.cancelled and result.exit_code == 128 + signal.SIGKILL
        assert time.monotonic() - t < 3, "wait() blocked until the command ended"
        assert gone(m)


def test_unsandboxed_capture_streams_output(tmp_path: Path) -> None:
    cfg = tmp_path / "danger.toml"
    cfg.write_text('sandbox_mode = "danger-full-access"\n')
    plan = build_plan(resolve(config_path=cfg), str(tmp_path), {})
    running = start(prepare(plan, ["sh", "-c", "head -c 200000 /dev/zero; echo done >&2"]),
                    capture=True)
    events = list(running.events())
    assert running.wait().exit_code == 0
    assert sum(len(e.data) for e in events if e.stream == "stdout") == 200000
    assert b"".join(e.data for e in events if e.stream == "stderr") == b"done\n"


def test_a_launch_from_a_short_lived_thread_outlives_the_thread(tmp_path: Path) -> None:
    """bwrap's --die-with-parent follows the spawning thread: the launcher must not let a
    worker thread's exit kill the sandbox."""
    holder: list[RunningCommand] = []

    def worker() -> None:
        spec = prepare(plan_for(tmp_path, config=None), ["sh", "-c", "sleep 0.5; echo survived"])
        holder.append(start(spec, capture=True))
        time.sleep(0.2)  # bwrap is up (and has set its parent-death signal) before we exit

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    running = holder[0]
    out = b"".join(e.data for e in running.events())
    assert running.wait().exit_code == 0
    assert out == b"survived\n"


def test_prepare_refuses_before_anything_runs(tmp_path: Path) -> None:
    with pytest.raises(LaunchError) as exc:
        prepare(plan_for(tmp_path, config=None), ["no-such-command-sandboxtui"])
    assert exc.value.exit_code == 127
    (tmp_path / ".env").write_text("#!/bin/sh\n")
    (tmp_path / ".env").chmod(0o755)
    with pytest.raises(LaunchError) as exc:
        prepare(plan_for(tmp_path, config=None), ["./.env"])
    assert exc.value.exit_code == 126
    assert "denied inside the sandbox" in exc.value.message


def test_a_runtime_directory_that_is_not_private_is_refused(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    (run_dir / "sandboxtui").mkdir(parents=True, mode=0o755)
    (run_dir / "sandboxtui").chmod(0o755)
    done = sandboxtui(tmp_path, "--", "touch", "ran", env={"XDG_RUNTIME_DIR": str(run_dir)})
    assert done.returncode == 4
    assert "is not a private directory" in done.stderr
    assert not (tmp_path / "ran").exists()


def test_run_never_imports_textual_and_plan_never_loads_libseccomp(tmp_path: Path) -> None:
    def imported(command: str, *args: str) -> set[str]:
        # a fresh state directory: no cached seccomp program, the launch compiles its filter
        done = subprocess.run([sys.executable, "-X", "importtime", "-m", "sandboxtui", command,
                               "--cwd", str(tmp_path), *args], capture_output=True, text=True,
                              check=True, env={**os.environ,
                                               "XDG_STATE_HOME": str(tmp_path / "state")})
        return {line.split("|")[-1].strip() for line in done.stderr.splitlines()
                if line.startswith("import time:")}

    ran = imported("run", "--", "true")
    assert "sandboxtui.core.launch" in ran and "pyseccomp" in ran
    assert not {m for m in ran if m.split(".")[0] == "textual"}
    planned = imported("plan")
    assert "sandboxtui.core.plan" in planned
    assert "pyseccomp" not in planned and "sandboxtui.core.launch" not in planned
