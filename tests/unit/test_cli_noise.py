"""Headless noise (issue 15, item 16): `--version`, no doubled "warning:" in a dry run, and
path-valued AWS variables passed through while its keys stay withheld."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

from sandboxtui.core.launch import scrub_env


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sandboxtui", *args], capture_output=True,
                          text=True, timeout=60, cwd=cwd)


def test_version_is_the_installed_distributions(tmp_path: Path) -> None:
    done = _cli("--version", cwd=tmp_path)
    assert done.returncode == 0 and done.stdout == f"sandboxtui {version('sandboxtui')}\n"


def test_dry_run_says_warning_once_per_line(tmp_path: Path) -> None:
    done = _cli("run", "--dry-run", "--cwd", str(tmp_path), "--", "true", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "warning: sensitive files" in done.stdout
    assert "warning: warning:" not in done.stdout


def test_aws_paths_and_names_pass_its_keys_do_not() -> None:
    env = {"AWS_CA_BUNDLE": "/etc/ssl/certs/ca.pem", "AWS_REGION": "eu-west-1",
           "AWS_PROFILE": "dev", "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
           "AWS_SECRET_ACCESS_KEY": "s", "AWS_SESSION_TOKEN": "t"}
    kept, dropped = scrub_env(env, ())
    assert set(kept) == {"AWS_CA_BUNDLE", "AWS_REGION", "AWS_PROFILE"}
    assert set(dropped) == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}


def test_demo_without_git_refuses_and_leaves_nothing(tmp_path: Path) -> None:
    """(issue 15, item 17) The demo is a git repository: without git, a clear refusal and no
    scratch directory behind, instead of a traceback."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    done = subprocess.run([sys.executable, "-m", "sandboxtui", "demo", "--print"],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path,
                          env={"PATH": str(tmp_path / "no-bin"), "TMPDIR": str(scratch)})
    assert done.returncode == 4, done.stderr
    assert "git is not installed" in done.stderr and "apt-get install git" in done.stderr
    assert "Traceback" not in done.stderr and list(scratch.iterdir()) == []
