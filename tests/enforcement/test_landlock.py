"""The legacy Landlock pipeline, restricted read and resource limits, against the kernel.

The escape probes of test_escape.py run again under `features.use_legacy_landlock = true`, as
`nobody`: a root launcher never runs on this pipeline (Landlock cannot stop a root command
from chmodding any host file); it stays on bubblewrap, which doctor names. Landlock answers
EACCES where bubblewrap's read-only mounts answer EROFS; what Landlock cannot express (a denied
`.env`, read-only `.git`/`.codex` inside the writable workspace) is not asserted as denied: it
must instead be named in the run's warnings.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
from conftest import CANARY, Runner, chown_tree
from test_escape import X86_64, Escape


@pytest.fixture(scope="module")
def legacy(shared_dir: Path) -> Any:
    runner = Runner("nobody", "system", shared_dir / "config.toml", pipeline="legacy")
    with Escape.launched(runner, shared_dir) as e:
        yield e


def test_writes_outside_the_roots_are_refused(legacy: Escape) -> None:
    r = legacy.result
    for name in ("write_abs", "create_abs", "write_proc_root", "write_via_symlink", "write_etc"):
        assert r[name] == "EACCES", name
    assert r["symlink_create"] == "ok"
    assert r["hardlink_create"] == "EXDEV"  # Landlock refuses to reparent across its rules
    # (not Escape.snapshot(): under this pipeline the probe may really remove `.env`)
    assert legacy.victim.read_bytes() == b"original\n"
    assert os.listdir(legacy.outside) == ["victim.txt"]
    assert not os.path.lexists("/etc/sandboxtui-probe")


def test_what_landlock_cannot_enforce_is_named_not_silently_passed(legacy: Escape) -> None:
    err = legacy.done.stderr
    ws = legacy.ws
    assert f"legacy Landlock cannot enforce none on {ws}/.env" in err
    assert f"legacy Landlock cannot enforce none on {ws}/sub/.env.local" in err
    for name in (".git", ".codex"):
        assert f"legacy Landlock cannot enforce ro on {ws}/{name}" in err
    # missing: bubblewrap mounts an empty read-only directory there; Landlock cannot keep it
    # out
    assert f"legacy Landlock cannot enforce ro on {ws}/.agents" in err
    assert "the command CAN create it" in err
    # ...and the warning is true: the content is readable under this pipeline.
    assert legacy.result["env_direct"] == f"read:API_TOKEN={CANARY}\n"


def test_network_is_refused_but_socketpair_works(legacy: Escape) -> None:
    r = legacy.result
    for name in ("tcp4", "udp4", "tcp6", "udp6", "raw_icmp", "ping_dgram", "netlink", "packet",
                 "unix_connect_host", "unix_connect_abstract", "io_uring_setup", "unix_dgram",
                 "unix_raw", "unix_dgram_pair"):
        assert r[name] == "EPERM", name
    assert legacy.datagrams() == []
    assert legacy.tcp_connections() == 0
    assert r["unix_create"] == "ok" and r["socketpair"] == "ok"


@X86_64
def test_foreign_architecture_syscalls_are_refused(legacy: Escape) -> None:
    assert legacy.result["foreign_arch"] == "i386=-1 x32=-1/1"


def test_process_is_confined(legacy: Escape) -> None:
    r = legacy.result
    assert r["no_new_privs"] == "1"
    caps = r["caps"]
    for name in ("CapInh", "CapPrm", "CapEff", "CapAmb"):
        assert caps[name] == "0000000000000000", name
    assert r["seccomp"] == "2"
    for name in ("ptrace_traceme", "ptrace_attach_init", "process_vm_readv"):
        assert r[name] == "EPERM", name
    assert r["inherited_fds"] == []
    assert r["tiocsti"] == "EPERM"  # a new session: no controlling terminal to inject into
    assert b"#" not in legacy.typed


def test_nothing_is_left_behind(legacy: Escape) -> None:
    assert legacy.leftovers() == []


def test_allowed_side_works(legacy: Escape) -> None:
    r = legacy.result
    assert r["ws_write"] == "ok" and r["tmp_write"] == "ok"
    assert (legacy.ws / "written-inside.txt").read_text() == "inside\n"
    assert r["usr_read"] == "elf"


def test_git_works_in_the_workspace(shared_dir: Path, workspace: Path) -> None:
    # A fresh repo: the probe batch above really damages its own `.git` (unenforced).
    chown_tree(workspace, "nobody")
    runner = Runner("nobody", "system", shared_dir / "config.toml", pipeline="legacy")
    done = _run(runner, workspace, "git status --porcelain && git diff --stat && echo git-ok")
    assert "git-ok" in done.stdout, done.stderr
    assert "README.md" in done.stdout


# --- restricted read, both pipelines ----------------------------------------------------------

# A root launcher never runs on the legacy pipeline (test_doctor_... below pins that).
PIPELINES = [("root", "bwrap"), ("nobody", "bwrap"), ("nobody", "legacy")]


@pytest.fixture
def secret_outside(shared_dir: Path) -> Path:
    d = Path(tempfile.mkdtemp(dir="/var/tmp"))
    d.chmod(0o755)
    f = d / "outside.txt"
    f.write_text("outside-secret\n")
    f.chmod(0o644)
    yield f
    subprocess.run(["rm", "-rf", str(d)], check=False)


@pytest.mark.parametrize(("user", "pipeline"), PIPELINES)
def test_restricted_read_hides_everything_but_the_readable_roots(
    user: str, pipeline: str, shared_dir: Path, workspace: Path, secret_outside: Path
) -> None:
    chown_tree(workspace, user)
    runner = Runner(user, "system", shared_dir / "config.toml", pipeline=pipeline)
    script = (f"cat {secret_outside} ; echo rc=$? ; /usr/bin/env true && echo env-ok ; "
              "python3 -c 'print(\"py-ok\")' ; cat README.md ; echo ws > new.txt && echo ws-ok")
    done = _run(runner, workspace, script, 'read_access={mode="restricted"}')
    out = done.stdout
    assert "outside-secret" not in out
    assert "rc=1" in out  # cat failed
    expected = "No such file or directory" if pipeline == "bwrap" else "Permission denied"
    assert expected in done.stderr
    assert "env-ok" in out and "py-ok" in out and "hello" in out and "ws-ok" in out


def _run(runner: Runner, workspace: Path, script: str, *config: str
         ) -> subprocess.CompletedProcess[str]:
    extra = [a for c in config for a in ("-c", c)]
    argv = [*runner.prefix(), "run", "--config", str(runner.config), "--cwd", str(workspace),
            *runner.bwrap_options(), *extra, "--", "sh", "-c", script]
    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)


# --- resource limits, both pipelines ----------------------------------------------------------

BOTH = [("nobody", "bwrap"), ("nobody", "legacy"), ("root", "bwrap")]


@pytest.mark.parametrize(("user", "pipeline"), BOTH)
def test_limits_cap_fds_memory_and_file_size(
    user: str, pipeline: str, shared_dir: Path, workspace: Path
) -> None:
    chown_tree(workspace, user)
    runner = Runner(user, "system", shared_dir / "config.toml", pipeline=pipeline)
    script = (
        "python3 - <<'EOF'\n"
        "import errno, os\n"
        "fds = []\n"
        "try:\n"
        "    while True: fds.append(os.open('/dev/null', os.O_RDONLY))\n"
        "except OSError as e: print('fds', len(fds), errno.errorcode[e.errno])\n"
        "for fd in fds: os.close(fd)\n"
        "try:\n"
        "    b = bytearray(512 * 1024 * 1024); print('mem ok')\n"
        "except MemoryError: print('mem MemoryError')\n"
        "import signal; signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "try:\n"
        "    with open('big.bin', 'wb') as fh: fh.write(b'x' * 200000)\n"
        "    print('fsize ok')\n"
        "except OSError as e: print('fsize', errno.errorcode[e.errno])\n"
        "EOF\n"
    )
    done = _run(runner, workspace, script, "limits.open_files=40",
                f"limits.address_space={256 * 1024 * 1024}", "limits.file_size=100000")
    assert "fds" in done.stdout and "EMFILE" in done.stdout, done.stderr
    count = int(done.stdout.split("fds ")[1].split()[0])
    assert count < 40
    assert "mem MemoryError" in done.stdout
    assert "fsize EFBIG" in done.stdout
    assert (workspace / "big.bin").stat().st_size <= 100000


@pytest.mark.parametrize("pipeline", ["bwrap", "legacy"])
def test_a_fork_bomb_is_capped(pipeline: str, shared_dir: Path, workspace: Path) -> None:
    chown_tree(workspace, "nobody")
    runner = Runner("nobody", "system", shared_dir / "config.toml", pipeline=pipeline)
    bomb = ("python3 - <<'EOF'\n"
            "import errno, os, time\n"
            "n = 0\n"
            "try:\n"
            "    for _ in range(500):\n"
            "        if os.fork() == 0:\n"
            "            time.sleep(3); os._exit(0)\n"
            "        n += 1\n"
            "except OSError as e: print('forks', n, errno.errorcode[e.errno])\n"
            "EOF\n")
    done = _run(runner, workspace, bomb, "limits.processes=30")
    assert "EAGAIN" in done.stdout, done.stdout + done.stderr
    assert int(done.stdout.split("forks ")[1].split()[0]) < 30


def test_process_limit_as_root_is_refused(shared_dir: Path, workspace: Path) -> None:
    runner = Runner("root", "system", shared_dir / "config.toml")
    done = _run(runner, workspace, "echo ran", "limits.processes=30")
    assert done.returncode == 4 and "ran" not in done.stdout
    assert "RLIMIT_NPROC" in done.stderr


def test_doctor_names_the_pipeline_limits_and_unenforced_paths(
    shared_dir: Path, workspace: Path
) -> None:
    import json

    def doctor(user: str) -> dict[str, Any]:
        runner = Runner(user, "system", shared_dir / "config.toml", pipeline="legacy")
        argv = [*runner.prefix(), "doctor", "--json", "--config", str(runner.config), "--cwd",
                str(workspace), *runner.bwrap_options(), "-c", "limits.open_files=64"]
        out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
        return json.loads(out)  # type: ignore[no-any-return]

    data = doctor("nobody")
    assert data["pipeline"] == "legacy-landlock" and data["limits"] == {"open_files": 64}
    causes = [d["cause"] for d in data["diagnostics"] if d["code"] == "landlock-unenforced"]
    assert any(f"{workspace}/.env " in c for c in causes)
    # A root launcher asking for legacy stays on bubblewrap, and doctor says why.
    root = doctor("root")
    assert root["pipeline"] == "bubblewrap"
    (why,) = [d for d in root["diagnostics"] if d["code"] == "legacy-root"]
    assert "bubblewrap is used" in why["cause"]
    assert not [d for d in root["diagnostics"] if d["code"] == "landlock-unenforced"]


def test_the_command_cannot_signal_outside_its_domain(shared_dir: Path, workspace: Path) -> None:
    """Landlock ABI 6 scoping: no killing the supervising stage (which would orphan leftovers)
    and, with the network on, no connecting to the host's abstract Unix sockets."""
    import secrets
    import socket

    chown_tree(workspace, "nobody")
    runner = Runner("nobody", "system", shared_dir / "config.toml", pipeline="legacy")
    name = f"sandboxtui-scope-{secrets.token_hex(4)}"
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind("\0" + name)
        listener.listen()
        script = ("kill -9 $PPID; echo kill=$?; python3 -c 'import socket\n"
                  "try:\n    socket.socket(socket.AF_UNIX).connect(\"\\0" + name + "\")\n"
                  "    print(\"abstract=ok\")\nexcept OSError as e: print(\"abstract\", e.errno)'")
        done = _run(runner, workspace, script, "sandbox_workspace_write.network_access=true")
    assert "kill=1" in done.stdout, done.stdout + done.stderr
    assert "abstract 1" in done.stdout  # EPERM
