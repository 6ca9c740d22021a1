"""The terminal (issue 11, item 5): a command that shares the user's terminal cannot leave it
changed (termios modes, window size), and nothing a command or a hostile workspace writes is
interpreted by the host terminal: `run`'s inherited terminal, the TUI's run panel, and every
untrusted string the CLI prints (`plan`, `explain`, `approvals`)."""

from __future__ import annotations

import fcntl
import os
import select
import struct
import subprocess
import tempfile
import termios
from pathlib import Path

import pytest
from conftest import RUNNERS, Runner, chown_tree, make_workspace


def _legacy_and_bwrap(user: str, bwrap: str) -> list[tuple[str, str, str]]:
    return [(user, bwrap, "bwrap")] + ([(user, bwrap, "legacy")] if bwrap == "system" else [])


PIPELINES = [p for user, bwrap in RUNNERS for p in _legacy_and_bwrap(user, bwrap)]


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


def _drain(master: int) -> bytes:
    out = b""
    while select.select([master], [], [], 0.2)[0]:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: no process holds the slave open any more
            break
        if not chunk:
            break
        out += chunk
    return out


# The command changes the terminal, shows the change took effect inside, then ends one way or
# another: on its own, by a signal, or killed by the launcher's timeout.
ENDS = {
    "exit": (["sh", "-c", "stty -echo -isig rows 3 cols 17 && stty size"], 0),
    "signal": (["sh", "-c", "stty -echo -isig rows 3 cols 17 && stty size && kill -9 $$"], 137),
    "timeout": (["sh", "-c", "stty -echo -isig rows 3 cols 17 && stty size && sleep 30"], 137),
}


@pytest.mark.parametrize("end", list(ENDS))
def test_terminal_state_is_restored_after_the_command(any_runner: Runner, ws: Path,
                                                      end: str) -> None:
    """`stty -echo -isig rows 3` inside the sandbox, on the terminal `run` shares with it:
    once the launcher exits, modes and window size are exactly what they were before."""
    master, slave = os.openpty()
    try:
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 41, 101, 0, 0))
        before = termios.tcgetattr(slave)
        size_before = fcntl.ioctl(slave, termios.TIOCGWINSZ, bytes(8))
        assert before[3] & termios.ECHO and before[3] & termios.ISIG
        command, code = ENDS[end]
        timeout = ["--timeout", "3"] if end == "timeout" else []
        argv = [*any_runner.prefix(), "run", "--config", str(any_runner.config), "--cwd",
                str(ws), *any_runner.bwrap_options(), *timeout, "--", *command]
        env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
        proc = subprocess.run(argv, stdin=slave, stdout=slave, stderr=subprocess.PIPE,
                              env=env, timeout=60, start_new_session=True)
        shown = _drain(master).decode(errors="replace")
        assert proc.returncode == code, proc.stderr.decode(errors="replace")
        assert "3 17" in shown, f"the command did not change the terminal: {shown!r}"
        assert termios.tcgetattr(slave) == before
        assert fcntl.ioctl(slave, termios.TIOCGWINSZ, bytes(8)) == size_before
    finally:
        os.close(master)
        os.close(slave)
