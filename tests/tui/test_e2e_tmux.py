"""End to end: the real `sandboxtui demo` in tmux, driven by keys, read from the screen.

Navigate to `.env`, read that it is denied and by which rule, run `cat .env` from the run
panel, approve in the modal, and read the kernel's denial from the output. A private tmux
server (`-L`) is used and killed at the end; every wait is bounded.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


class Tmux:
    def __init__(self, socket: str) -> None:
        self.socket = socket

    def __call__(self, *args: str) -> str:
        done = subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True,
                              text=True, timeout=10)
        if done.returncode != 0:
            raise AssertionError(f"tmux {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", "e2e")

    def keys(self, *keys: str) -> None:
        self("send-keys", "-t", "e2e", *keys)

    def wait_for(self, condition: Callable[[str], bool], what: str, timeout: float = 15) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if condition(screen):
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; the screen was:\n{screen}")
            time.sleep(0.1)


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    socket = f"sandboxtui-e2e-{os.getpid()}-{time.monotonic_ns()}"
    t = Tmux(socket)
    env = {
        "XDG_STATE_HOME": str(tmp_path / "state"),  # the audit log
        "XDG_RUNTIME_DIR": str(tmp_path / "run"),  # the broker socket, launch files
        "TMPDIR": str(tmp_path),  # the demo workspace
    }
    (tmp_path / "run").mkdir(mode=0o700)
    # COLUMNS/LINES (set by some test runners) would override the pane's size.
    # The pane stays after the app exits, showing its exit status (and any traceback).
    command = " ".join(["env", "-u", "COLUMNS", "-u", "LINES",
                        *(f"{k}={v}" for k, v in env.items()), sys.executable, "-m",
                        "sandboxtui", "demo", ";", "echo", "sandboxtui-exited-$?", ";",
                        "sleep", "60"])
    t("new-session", "-d", "-s", "e2e", "-x", "160", "-y", "50", command)
    try:
        yield t
    finally:
        subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, timeout=10)
        base = os.environ.get("TMUX_TMPDIR", "/tmp")
        Path(base, f"tmux-{os.getuid()}", socket).unlink(missing_ok=True)


def _details_path(screen: str) -> str:
    """The details pane's `path` value (it may wrap onto the following lines)."""
    lines = screen.splitlines()
    for i, line in enumerate(lines):
        if "│ path " in line:
            value = line.split("│ path ", 1)[1].strip(" │")
            for more in lines[i + 1:]:
                cell = more.rsplit("││", 1)[-1].strip(" │")
                if not cell or not more.rsplit("││", 1)[-1].startswith("            "):
                    break
                value += cell
            return value
    return ""


def test_demo_env_is_denied_and_cat_is_refused_by_the_kernel(tmux: Tmux) -> None:
    tmux.wait_for(lambda s: "readme-link [rw]" in s, "the mount tree")
    # Walk down the tree until the details pane shows .env, one node at a time: each step
    # waits for the details to follow the cursor, so a slow screen cannot make us overshoot.
    shown = _details_path(tmux.screen())
    for _ in range(20):
        if shown.endswith("/.env"):
            break
        tmux.keys("Down")
        before = shown
        shown = _details_path(tmux.wait_for(lambda s, b=before: _details_path(s) not in ("", b),
                                            "the details to follow the cursor"))
    screen = tmux.wait_for(lambda s: _details_path(s).endswith("/workspace/.env"),
                           "the details of .env")
    assert "none  denied" in screen
    assert "sensitive path .env" in screen
    assert "--ro-bind <empty file, mode 000>" in screen
    tmux.keys("v")  # verify the node: the kernel's answers agree with the picture
    # the mark, and the notification saying so (painted a moment later on a loaded machine)
    tmux.wait_for(lambda s: ".env [denied]" in s and "✓ verified" in s
                  and "0 mismatches" in s, "the mark and its notification")

    tmux.keys("6")
    screen = tmux.wait_for(lambda s: "command to run in the sandbox" in s, "the run panel")
    assert "demo scenario (enter runs)" in screen and "write .git/config" in screen
    tmux.keys("-l", "cat .env")
    tmux.keys("Enter")
    screen = tmux.wait_for(lambda s: "Approval needed" in s, "the approval modal")
    assert "mentions" in screen and ".env" in screen
    # keys typed before the prompt has been up for a moment decide nothing
    tmux.wait_for(lambda s: "Approval needed" in s and "keys are ignored" not in s,
                  "the prompt to take keys")
    tmux.keys("o")
    screen = tmux.wait_for(lambda s: "[exit 1" in s, "the command's exit")
    assert "cat: .env: Permission denied" in screen
    assert "demo-secret-do-not-leak" not in screen
    assert "approve-once" in screen

    tmux.keys("Escape")  # leave the command input (sent alone: ESC + "1" would read as alt+1)
    time.sleep(0.3)
    tmux.keys("1")
    tmux.wait_for(lambda s: "readme-link [rw]" in s, "the tree again")
    tmux.keys("q")
    tmux.wait_for(lambda s: "sandboxtui-exited-0" in s, "the app to quit", timeout=10)


def test_keys_typed_while_a_headless_request_arrives_decide_nothing(tmux: Tmux,
                                                                     tmp_path: Path) -> None:
    """Issue 15 items 1 and 4: the user types into the run input while a headless `sandboxtui
    run` asks for an approval. The request does not take the focus (a banner and the bell
    announce it), every key typed goes on into the input, and the audit log records no
    decision until the user opens the prompt and answers it."""
    tmux.wait_for(lambda s: "readme-link [rw]" in s, "the mount tree")
    ws = next(tmp_path.glob("sandboxtui-demo-*/workspace"))
    tmux.keys("6")
    tmux.wait_for(lambda s: "command to run in the sandbox" in s, "the run panel")
    tmux.keys("-l", "echo hel")
    audit = tmp_path / "state" / "sandboxtui" / "audit.jsonl"
    env = {**os.environ, "XDG_RUNTIME_DIR": str(tmp_path / "run"),
           "XDG_STATE_HOME": str(tmp_path / "state")}
    headless = subprocess.Popen(
        [sys.executable, "-m", "sandboxtui", "run", "--config", str(ws.parent / "config.toml"),
         "--cwd", str(ws), "--approval-timeout", "60", "--", "cat", ".env"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=env)
    try:
        tmux.wait_for(lambda s: "APPROVAL WAITING" in s and "cat .env" in s, "the banner")
        # the user goes on typing, one key at a time, well past the prompt's guard time
        for key in ("l", "o", " ", "s", "o", "d", "e"):
            tmux.keys("-l", key)
            time.sleep(0.15)
        screen = tmux.wait_for(lambda s: "echo hello sode" in s, "the typed keys in the input")
        assert "Approval needed" not in screen
        assert headless.poll() is None
        decisions = [line for line in audit.read_text().splitlines() if '"decision"' in line]
        assert decisions == [], decisions
        tmux.keys("Escape")  # leave the input, then review
        time.sleep(0.3)
        tmux.keys("a")
        tmux.wait_for(lambda s: "Approval needed" in s and "request 1 of 1" in s
                      and "keys are ignored" not in s, "the prompt, taking keys")
        tmux.keys("d")
        _, err = headless.communicate(timeout=30)
    finally:
        headless.kill()
        headless.wait()
    assert headless.returncode == 3, err
    assert "waiting for approval in sandboxtui (pid" in err
    decisions = [line for line in audit.read_text().splitlines() if '"decision"' in line]
    assert len(decisions) == 1 and '"deny"' in decisions[0]
