"""The TUI's command-line entry points: Textual is imported only on the TUI paths."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tui_support import demo_at

PROBE = """
import sys
from sandboxtui.cli import main
rc = main(sys.argv[1:])
print("textual imported" if "textual" in sys.modules else "textual not imported", rc)
"""


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TMPDIR": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    return subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True,
                          env=env, timeout=60)


def test_headless_paths_do_not_import_textual(tmp_path: Path) -> None:
    ws, config = demo_at(tmp_path / "demo")
    for args in (["plan", "--cwd", str(ws), "--config", str(config)],
                 ["explain", ".env", "--cwd", str(ws), "--config", str(config)],
                 ["demo", "--print"]):
        done = _cli(tmp_path, *args)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip().endswith("textual not imported 0"), (args, done.stdout)
    demo = _cli(tmp_path, "demo", "--print")
    assert "demo workspace:" in demo.stdout and "sensitive path .env" in demo.stdout

