"""Host isolation (issue 11, items 1, 4, 6, 7): a sandboxed command, even one started by root,
cannot write host-global kernel settings (/proc/sys, the sysrq trigger), reach the host's SysV
IPC objects, read the host's procfs under `--no-proc`, or outlive the launcher when the
terminal closes or the launcher's process group is killed. Real launches, every pipeline."""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import pty
import pwd
import random
import select
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import RUNNERS, SYSTEM_BWRAP, Runner, chown_tree, make_workspace

from sandboxtui.core.diagnostics import probe

NO_PRECHECK = 'sensitive_path_precheck_mode="off"'
# A root launcher never runs on legacy Landlock (it stays on bubblewrap: test_adv_legacy_metadata).
PIPELINES = [(u, b, "bwrap") for u, b in RUNNERS] + [("nobody", "system", "legacy")]


@pytest.fixture(params=PIPELINES, ids=lambda p: "-".join(p))
def any_runner(request: pytest.FixtureRequest, shared_dir: Path) -> Runner:
    user, bwrap, pipeline = request.param
    return Runner(user, bwrap, shared_dir / "config.toml", pipeline=pipeline)


@pytest.fixture
def ws(shared_dir: Path, any_runner: Runner) -> Path:
    base = Path(tempfile.mkdtemp(dir=shared_dir))
    base.chmod(0o755)
    workspace = make_workspace(base)
    chown_tree(workspace, any_runner.user)
    return workspace


def sandboxtui_argv(runner: Runner, ws: Path, *options: str) -> list[str]:
    return [*runner.prefix(), "run", "--config", str(runner.config), "--cwd", str(ws),
            *runner.bwrap_options(), "-c", NO_PRECHECK, *options, "--"]


def launcher_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k != "XDG_RUNTIME_DIR" and not k.lower().endswith("_proxy")}
    return {**env, **extra}


def run_json(runner: Runner, ws: Path, script: str, *args: str, options: tuple[str, ...] = (),
             env: dict[str, str] | None = None) -> tuple[dict[str, object], str]:
    argv = [*sandboxtui_argv(runner, ws, *options), "/usr/bin/python3", "-c", script, *args]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60,
                          env=env or launcher_env())
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


# --- item 1: /proc/sys and the other host-global proc files are read-only -----------------------

# Writes back exactly what it read, so the host cannot change even where the write succeeds.
WRITE_BACK = r"""
import errno, json, os, sys
out = {}
for path in ("/proc/sys/kernel/domainname", "/proc/sys/kernel/core_pattern",
             "/proc/sys/vm/overcommit_ratio", "/proc/irq/default_smp_affinity",
             "/proc/sysrq-trigger"):
    if not os.path.exists(path):
        continue
    try:
        value = open(path, "rb").read() if path != "/proc/sysrq-trigger" else b""
        fd = os.open(path, os.O_WRONLY)
        try:
            if value:
                os.write(fd, value)
        finally:
            os.close(fd)
        out[path] = "written"
    except OSError as exc:
        out[path] = errno.errorcode[exc.errno]
# A host process's OOM score (the launcher's): absent from a PID namespace; read-only under
# Landlock. Written back unchanged, like the rest.
path = f"/proc/{sys.argv[1]}/oom_score_adj"
try:
    value = open(path, "rb").read()
    with open(path, "wb", buffering=0) as fh:
        fh.write(value)
    out["host_oom_score_adj"] = "written"
except OSError as exc:
    out["host_oom_score_adj"] = errno.errorcode[exc.errno]
print(json.dumps(out))
"""
SYSCTLS = ("/proc/sys/kernel/domainname", "/proc/sys/kernel/core_pattern")


def host_sysctls() -> dict[str, bytes]:
    return {p: Path(p).read_bytes() for p in SYSCTLS}


def assert_refused(results: dict[str, object], runner: Runner) -> None:
    assert set(SYSCTLS) <= set(results)
    oom = results.pop("host_oom_score_adj")
    assert oom == ("ENOENT" if runner.pipeline == "bwrap" else "EACCES"), oom
    for path, outcome in results.items():
        assert outcome in ("EROFS", "EACCES"), (path, outcome)
        if runner.user == "root" and runner.pipeline == "bwrap":
            # the kernel's own answer for a read-only mount: the permission bits allowed it
            assert outcome == "EROFS", (path, outcome)


def test_host_kernel_settings_are_read_only(any_runner: Runner, ws: Path) -> None:
    before = host_sysctls()
    results, _ = run_json(any_runner, ws, WRITE_BACK, str(os.getpid()))
    assert_refused(results, any_runner)
    assert host_sysctls() == before


@pytest.mark.parametrize("user", ["root", "nobody"])
def test_host_kernel_settings_are_read_only_in_proxy_mode(user: str, shared_dir: Path) -> None:
    runner = Runner(user, "system", shared_dir / "config.toml")
    base = Path(tempfile.mkdtemp(dir=shared_dir))
    base.chmod(0o755)
    workspace = make_workspace(base)
    chown_tree(workspace, user)
    before = host_sysctls()
    with socket.socket() as proxy:
        proxy.bind(("127.0.0.1", 0))
        proxy.listen()
        env = launcher_env(HTTP_PROXY=f"http://127.0.0.1:{proxy.getsockname()[1]}")
        results, _ = run_json(runner, workspace, WRITE_BACK, str(os.getpid()), env=env,
                              options=("-c", 'sandbox_workspace_write.network_access="proxy"'))
    assert_refused(results, runner)
    assert host_sysctls() == before


def test_explain_names_why_proc_sys_is_read_only(shared_dir: Path) -> None:
    runner = Runner("root", "system", shared_dir / "config.toml")
    argv = [*runner.prefix(), "explain", "--json", "--config", str(runner.config),
            "/proc/sys/kernel/core_pattern"]
    ex = json.loads(subprocess.run(argv, capture_output=True, text=True, check=True,
                                   timeout=60).stdout)
    assert ex["access"] == "ro" and ex["rule"]["kind"] == "host-kernel"
    assert "global root uid" in ex["rule"]["reason"]
    assert {"op": "kernel-ro", "dest": "/proc/sys", "source": "/proc/sys"}.items() <= \
        next(op for op in ex["ops"] if op["dest"] == "/proc/sys").items()


# --- item 4: SysV IPC ---------------------------------------------------------------------------

IPC_CREAT, IPC_EXCL, IPC_RMID = 0o1000, 0o2000, 0

LOOKUP = r"""
import ctypes, errno, json, sys
libc = ctypes.CDLL(None, use_errno=True)
key = int(sys.argv[1])
out = {}
for name, call in (("shm", lambda: libc.shmget(key, 0, 0)), ("msg", lambda: libc.msgget(key, 0))):
    ident = call()
    out[name] = "found" if ident >= 0 else errno.errorcode[ctypes.get_errno()]
print(json.dumps(out))
"""


@contextlib.contextmanager
def host_ipc_objects() -> Iterator[int]:
    """A world-accessible shared memory segment and message queue under one fixed key, so
    only the namespace (not the permission bits) can keep a sandbox from them; removed after."""
    libc = ctypes.CDLL(None, use_errno=True)
    key = 0x5B700000 + random.randrange(0xFFFF)
    shm = libc.shmget(key, 4096, IPC_CREAT | IPC_EXCL | 0o666)
    msg = libc.msgget(key, IPC_CREAT | IPC_EXCL | 0o666)
    try:
        assert shm >= 0 and msg >= 0, os.strerror(ctypes.get_errno())
        yield key
    finally:
        if shm >= 0:
            libc.shmctl(shm, IPC_RMID, None)
        if msg >= 0:
            libc.msgctl(msg, IPC_RMID, None)


def test_host_sysv_ipc_is_out_of_reach(any_runner: Runner, ws: Path) -> None:
    with host_ipc_objects() as key:
        results, _ = run_json(any_runner, ws, LOOKUP, str(key))
    assert results == {"shm": "ENOENT", "msg": "ENOENT"}


# --- item 6: --no-proc ----------------------------------------------------------------------------

PROC_VIEW = r"""
import json, os, sys
out = {}
try:
    out["pids"] = [p for p in os.listdir("/proc") if p.isdigit()]
except OSError as exc:
    out["pids"] = exc.strerror
try:
    out["host_cmdline"] = open(f"/proc/{sys.argv[1]}/cmdline", "rb").read().decode()
except OSError as exc:
    out["host_cmdline"] = exc.strerror
print(json.dumps(out))
"""


def test_no_proc_hides_the_host_procfs(any_runner: Runner, ws: Path) -> None:
    results, stderr = run_json(any_runner, ws, PROC_VIEW, str(os.getpid()),
                               options=("--no-proc",))
    assert "--no-proc: the sandbox has no /proc" in stderr
    if any_runner.pipeline == "legacy":
        # Landlock cannot subtract: a named, visible limit, not a silent one.
        assert "legacy Landlock cannot enforce none on /proc" in stderr
        return
    assert not isinstance(results["pids"], list) or results["pids"] == []
    assert "pytest" not in str(results["host_cmdline"])
    assert results["host_cmdline"] in ("Permission denied", "No such file or directory")


# --- item 7: nothing survives the launcher --------------------------------------------------------


def marker_pids(marker: str) -> list[int]:
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            # the grandchild's own argument, not the launcher's script that mentions it
            if marker.encode() in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0"):
                pids.append(int(pid))
    return pids


def _read_until(master: int, needle: bytes, timeout: float) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while needle not in seen and time.monotonic() < deadline:
        if select.select([master], [], [], 0.2)[0]:
            try:
                seen += os.read(master, 65536)
            except OSError:
                break
    return seen


@pytest.mark.parametrize("end", ["hangup", "killpg"])
def test_nothing_survives_the_launcher(any_runner: Runner, ws: Path, end: str) -> None:
    """The launcher runs as a session leader on a pty; the command leaves a background
    grandchild. Closing the terminal (SIGHUP) or SIGKILL to the launcher's process group must
    take the grandchild down too."""
    marker = f"sandboxtui-orphan-{os.urandom(4).hex()}"
    script = ('/usr/bin/python3 -c "import time; time.sleep(1000)" ' + marker
              + " & echo ready; wait")
    argv = [*sandboxtui_argv(any_runner, ws), "sh", "-c", script]
    if argv[0] == "runuser":
        # The launcher itself must lead the session, as it does under a user's login shell
        # (runuser would stand between the terminal and it): drop to the user here instead.
        argv = argv[argv.index("--") + 1:]
    user = pwd.getpwnam(any_runner.user)
    pid, master = pty.fork()
    if pid == 0:  # the launcher: a new session, the pty as its controlling terminal
        try:
            os.setgroups([])
            os.setgid(user.pw_gid)
            os.setuid(user.pw_uid)
            os.execvpe(argv[0], argv, launcher_env())
        finally:
            os._exit(127)
    try:
        seen = _read_until(master, b"ready", 60)
        assert b"ready" in seen, seen.decode(errors="replace")
        deadline = time.monotonic() + 10
        while not marker_pids(marker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker_pids(marker), "the grandchild never started"
        if end == "hangup":
            os.close(master)
            master = -1
        else:
            os.killpg(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while marker_pids(marker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker_pids(marker) == [], f"survived the launcher's {end}"
        if end == "hangup":  # the launcher itself ends the launch: it cleans up after itself
            _, status = os.waitpid(pid, 0)
            pid = 0
            assert os.waitstatus_to_exitcode(status) == 128 + signal.SIGHUP
            assert not os.path.lexists(ws / ".agents"), "placeholder left on the host"
    finally:
        for leftover in marker_pids(marker):  # only the processes this test started
            with contextlib.suppress(ProcessLookupError):
                os.kill(leftover, signal.SIGKILL)
        if pid:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        if master >= 0:
            os.close(master)


def test_legacy_without_user_namespaces_names_the_ipc_limit(shared_dir: Path) -> None:
    """A normal user on a machine without unprivileged user namespaces (simulated: the
    launcher runs inside `bwrap --disable-userns`) gets no private IPC namespace on the
    legacy pipeline: the launch says so, and the limit it names is real. Root always can."""
    runner = Runner("nobody", "system", shared_dir / "config.toml", pipeline="legacy")
    base = Path(tempfile.mkdtemp(dir=shared_dir))
    base.chmod(0o755)
    workspace = make_workspace(base)
    chown_tree(workspace, "nobody")
    prefix = runner.prefix()
    at = prefix.index("--") + 1
    bwrap = probe(SYSTEM_BWRAP, launch_test=False).bwrap  # the system's or the vendored one
    assert bwrap is not None
    argv = [*prefix[:at], bwrap, "--dev-bind", "/", "/", "--unshare-user",
            "--disable-userns", "--die-with-parent", "--", *prefix[at:],
            *sandboxtui_argv(runner, workspace)[len(prefix):], "/usr/bin/python3", "-c", LOOKUP]
    with host_ipc_objects() as key:
        done = subprocess.run([*argv, str(key)], capture_output=True, text=True, timeout=60,
                              env=launcher_env())
    assert done.returncode == 0, done.stderr
    assert "legacy pipeline: no private IPC namespace" in done.stderr
    assert json.loads(done.stdout) == {"shm": "found", "msg": "found"}


HOST_STATE = r"""
import errno, json
out = {}
for path in ("/proc/timer_list", "/proc/keys"):
    try:
        open(path, "rb").read(1)
        out[path] = "read"
    except OSError as exc:
        out[path] = errno.errorcode[exc.errno]
print(json.dumps(out))
"""


def test_host_wide_proc_state_is_hidden(any_runner: Runner, ws: Path) -> None:
    """Host timers (with host pids and command names) and the keys the user can view are
    not scoped by a PID namespace: bubblewrap hides them (Docker's masked paths); the legacy
    pipeline shows the host's /proc and says so."""
    results, stderr = run_json(any_runner, ws, HOST_STATE)
    if any_runner.pipeline == "legacy":
        assert "legacy Landlock shows the host's /proc" in stderr
        return
    assert results == {"/proc/timer_list": "EACCES", "/proc/keys": "EACCES"}
