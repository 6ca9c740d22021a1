"""An untraced `run` that fails with a refusal names the refused path's access and rule, and
the way to the full list (issue 14, item 5), as root and as nobody. The hint reads what the
command wrote to stderr without changing what that stderr is: a pipe stays a pipe (stdout on
the same pipe keeps its order), a file is read back, a terminal is left alone (the command
still sees a terminal, and no hint is printed). Nothing is added to a run that succeeds, nor to
a failure that names no path the plan refused."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import time
from pathlib import Path

from conftest import Runner, chown_tree

from sandboxtui.core.stderr_tail import LEFTOVER_WAIT

HINT = "is ro in this sandbox: read access: full (read-only bind of /) [default]"


def _argv(runner: Runner, ws: Path, script: str) -> list[str]:
    return [*runner.prefix(), "run", "--config", str(runner.config), "--cwd", str(ws),
            *runner.bwrap_options(), "--", "sh", "-c", script]


def _lines(text: str) -> list[str]:
    """The output's lines without sandboxtui's startup warnings (once per workspace and day)."""
    return [line for line in text.splitlines() if not line.startswith("sandboxtui: warning")]


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}


def test_a_failed_run_on_a_pipe_gets_the_hint(runner: Runner, workspace: Path) -> None:
    chown_tree(workspace, runner.user)
    done = runner.run(workspace, ["sh", "-c", "echo x > /etc/sbx-hint"])
    assert done.returncode == 2
    lines = _lines(done.stderr)
    assert "Read-only file system" in lines[-2]  # the command's own line, then the hint
    assert lines[-1].startswith(f"sandboxtui: /etc/sbx-hint {HINT}")
    assert "sandboxtui trace" in lines[-1]


def test_no_hint_on_success_or_without_a_refused_path(runner: Runner, workspace: Path) -> None:
    chown_tree(workspace, runner.user)
    done = runner.run(workspace, ["sh", "-c", "echo ok; echo note >&2"])
    assert (done.returncode, done.stdout) == (0, "ok\n") and done.stderr.endswith("note\n")
    assert "in this sandbox" not in done.stderr  # (a warning may come first, once a day)
    done = runner.run(workspace, ["sh", "-c", "echo 'Permission denied (publickey).' >&2; "
                                  "echo 'cannot open /etc/x: Permission denied' >&2; exit 1"])
    assert done.returncode == 1  # /etc/x is readable: the host said no, not the plan
    assert "in this sandbox" not in done.stderr


def test_stdout_and_stderr_on_one_pipe_keep_their_order(runner: Runner,
                                                        workspace: Path) -> None:
    chown_tree(workspace, runner.user)
    script = "echo a; echo b >&2; echo c; echo d >&2; echo x > /etc/sbx-order"
    done = subprocess.run(_argv(runner, workspace, script), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=60, env=_env())
    lines = _lines(done.stdout)
    assert lines[:4] == ["a", "b", "c", "d"] and "Read-only file system" in lines[4]
    assert lines[5].startswith(f"sandboxtui: /etc/sbx-order {HINT}") and len(lines) == 6


def test_stderr_in_a_file_is_read_back(runner: Runner, workspace: Path) -> None:
    chown_tree(workspace, runner.user)
    log = workspace.parent / "log.txt"
    log.write_text("earlier: cannot create /etc/old: Read-only file system\n")
    chown_tree(log, runner.user)
    with open(log, "a") as err:
        done = subprocess.run(_argv(runner, workspace, "echo x > /etc/sbx-file"),
                              stderr=err, timeout=60, env=_env())
    assert done.returncode == 2
    lines = _lines(log.read_text())
    assert "Read-only file system" in lines[1] and lines[2].startswith(
        f"sandboxtui: /etc/sbx-file {HINT}")  # this run's line, not the older one


def test_a_terminal_is_left_alone(runner: Runner, workspace: Path) -> None:
    chown_tree(workspace, runner.user)
    leader, follower = pty.openpty()
    try:
        proc = subprocess.Popen(_argv(runner, workspace, "test -t 2 && echo tty >&2; "
                                      "echo x > /etc/sbx-tty"),
                                stdin=follower, stdout=follower, stderr=follower, env=_env())
        os.close(follower)
        seen = b""
        while select.select([leader], [], [], 60)[0]:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # EIO: every writer is gone
                break
            if not chunk:
                break
            seen += chunk
        assert proc.wait(timeout=60) == 2
    finally:
        os.close(leader)
    text = seen.decode(errors="replace")
    assert "tty" in text and "Read-only file system" in text
    assert HINT not in text


def test_a_slow_reader_loses_nothing(runner: Runner, workspace: Path) -> None:
    """More stderr than a pipe holds, read only well after the command ended (longer than
    the copy waits for a leftover writer, launch included): every byte arrives."""
    chown_tree(workspace, runner.user)
    script = "head -c 300000 /dev/zero | tr '\\0' x >&2"
    proc = subprocess.Popen(_argv(runner, workspace, script), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env=_env())
    time.sleep(LEFTOVER_WAIT + 4)
    assert proc.stderr is not None
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0
    assert "x" * 300000 in err
