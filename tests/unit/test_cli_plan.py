"""`plan`, `explain` and `doctor` from the command line, as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sandboxtui.core.diagnostics import vendored_bwrap


def sandboxtui(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_CONFIG_HOME": "/nonexistent-sandboxtui-config"}
    return subprocess.run([sys.executable, "-m", "sandboxtui", *args], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=60)


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    w = tmp_path / "ws"
    w.mkdir()
    (w / ".env").write_text("TOKEN=x\n")
    (w / "sub").mkdir()
    (w / "sub" / ".env.local").write_text("TOKEN=y\n")
    return w


def test_plan_json_lists_rules_ops_and_settings_with_provenance(ws: Path) -> None:
    done = sandboxtui("plan", "--json", "--cwd", str(ws), "-c", 'sandbox_mode="read-only"')
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["mode"] == "read-only"
    denied = {r["path"] for r in data["rules"] if r["access"] == "none"
              and r["kind"] not in ("runtime", "host-kernel")}
    assert denied == {str(ws / ".env"), str(ws / "sub" / ".env.local")}
    assert [o["op"] for o in data["ops"]][:3] == ["ro-bind-root", "dev", "proc"]
    settings = {s["key"]: s["provenance"] for s in data["settings"]}
    assert settings["sandbox_mode"] == '-c sandbox_mode="read-only"'
    assert settings["sensitive_paths"] == "default"


def test_explain_text_and_json(ws: Path) -> None:
    done = sandboxtui("explain", ".env", "--cwd", str(ws))
    assert done.returncode == 0, done.stderr
    assert "access:   none" in done.stdout and "sensitive path .env" in done.stdout
    done = sandboxtui("explain", "sub/.env.local", "--json", cwd=ws)
    data = json.loads(done.stdout)
    assert data["access"] == "none" and data["rule"]["provenance"] == "default"
    assert data["ops"][-1]["op"] == "deny-file"


def test_no_proc_drops_the_proc_mount(ws: Path) -> None:
    data = json.loads(sandboxtui("plan", "--json", "--no-proc", "--cwd", str(ws)).stdout)
    assert "proc" not in [o["op"] for o in data["ops"]]
    # the host's /proc is hidden instead, and the plan says so
    assert {"op": "deny-dir", "dest": "/proc"}.items() <= data["ops"][2].items()
    assert "no-proc" in {d["code"] for d in data["diagnostics"]}


def test_bad_cwd_and_bad_path_exit_2(tmp_path: Path) -> None:
    done = sandboxtui("plan", "--cwd", str(tmp_path / "missing"))
    assert done.returncode == 2 and "not a directory" in done.stderr
    done = sandboxtui("plan", "-c", "bogus=1", "--cwd", str(tmp_path))
    assert done.returncode == 2 and "bogus: unknown key" in done.stderr


def test_doctor_reports_missing_system_bwrap_and_vendored_fallback(ws: Path) -> None:
    done = sandboxtui("doctor", "--json", "--cwd", str(ws), "-c",
                      'system_bwrap="/nonexistent/usr/bin/bwrap"')
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    codes = {d["code"]: d for d in data["diagnostics"]}
    missing = codes["system-bwrap-missing"]
    assert "/nonexistent/usr/bin/bwrap is missing" in missing["cause"]
    assert "vendored" in missing["cause"] and "apt-get install bubblewrap" in missing["remedy"]
    assert data["capabilities"]["bwrap"] == vendored_bwrap()
    assert data["capabilities"]["bwrap_usable"] is True
    assert "bwrap-unusable" not in codes
    text = sandboxtui("doctor", "--cwd", str(ws), "-c", 'system_bwrap="/nonexistent/bwrap"')
    assert "WARNING  /nonexistent/bwrap is missing" in text.stdout


def test_doctor_is_quiet_with_an_existing_system_bwrap(ws: Path) -> None:
    system = "/usr/bin/bwrap" if os.access("/usr/bin/bwrap", os.X_OK) else vendored_bwrap()
    assert system is not None
    done = sandboxtui("doctor", "--json", "--cwd", str(ws), "-c", f'system_bwrap="{system}"')
    data = json.loads(done.stdout)
    assert "system-bwrap-missing" not in {d["code"] for d in data["diagnostics"]}
    assert data["capabilities"]["bwrap"] == system


def test_headless_commands_do_not_import_textual(ws: Path) -> None:
    code = (
        "import sys, contextlib, io\n"
        "from sandboxtui.cli import main\n"
        f"for args in (['plan', '--cwd', {str(ws)!r}], ['explain', '.env', '--cwd', {str(ws)!r}],"
        f" ['doctor', '--cwd', {str(ws)!r}]):\n"
        "    with contextlib.redirect_stdout(io.StringIO()):\n"
        "        assert main(args) == 0\n"
        "assert not [m for m in sys.modules if m.split('.')[0] == 'textual'], 'textual imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
