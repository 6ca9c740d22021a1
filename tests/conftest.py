"""Shared fixtures: who runs `sandboxtui` (root or `nobody`), with which bwrap, over which
workspace.

Enforcement tests are parametrized over `Runner` (user x bwrap). The unprivileged variant drops
to `nobody` with `runuser`; everything it needs (workspace, probe files, config) lives in a
world-readable temp directory and the workspace is chowned to it. The "system" bwrap variant
needs /usr/bin/bwrap and is skipped without it, all under one reason (`./dev.sh test` installs
bubblewrap when it runs as root with apt); the "vendored" variant points `system_bwrap` at a
path that does not exist, which is how a machine without the system bwrap looks.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

import sandboxtui
from sandboxtui.core.config import resolve
from sandboxtui.core.plan import MountPlan, ScanBounds, build_plan

SYSTEM_BWRAP = "/usr/bin/bwrap"
NO_SYSTEM_BWRAP = (f"{SYSTEM_BWRAP} is missing: the system-bwrap variants are skipped (as root, "
                   "./dev.sh test installs bubblewrap)")
ABSENT_BWRAP = "/nonexistent/sandboxtui-test/bwrap"
SRC = str(Path(sandboxtui.__file__).resolve().parent.parent)
CANARY = "sandboxtui-canary-7f3a9c"


@cache
def python_for(user: str) -> str:
    """A Python `user` can execute (the venv's may live under root's 0700 home)."""
    if user == "root":
        return sys.executable
    probe = ["runuser", "-u", user, "--", sys.executable, "-c", "pass"]
    if subprocess.run(probe, capture_output=True).returncode == 0:
        return sys.executable
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    found = shutil.which(version, path="/usr/local/bin:/usr/bin:/bin")
    if found is None:
        raise RuntimeError(f"no {version} executable by {user}: cannot run the unprivileged tests")
    return found


@dataclass(frozen=True)
class Runner:
    """Runs `sandboxtui` as `user` with the system or the vendored bwrap."""

    user: str  # "root" | "nobody"
    bwrap: str  # "system" | "vendored"
    config: Path  # an empty, world-readable config file: tests set everything with -c
    pipeline: str = "bwrap"  # "bwrap" | "legacy" (features.use_legacy_landlock = true)

    def prefix(self) -> list[str]:
        """The argv prefix that starts `python -m sandboxtui` as this user."""
        python = python_for(self.user)
        if self.user == "root":
            return [python, "-m", "sandboxtui"]
        # PYTHONPATH gives a foreign interpreter the checkout and the venv's pure packages.
        path = f"{SRC}:{sysconfig.get_paths()['purelib']}"
        return ["runuser", "-u", self.user, "--", "env", f"PYTHONPATH={path}", python,
                "-m", "sandboxtui"]

    def bwrap_options(self) -> list[str]:
        if self.pipeline == "legacy":
            return ["-c", "features.use_legacy_landlock=true"]
        if self.bwrap == "system":
            if not os.access(SYSTEM_BWRAP, os.X_OK):
                pytest.skip(NO_SYSTEM_BWRAP)
            return []
        return ["-c", f'system_bwrap="{ABSENT_BWRAP}"']

    def run(self, workspace: Path, command: Sequence[str], *, timeout: float = 60,
            **kwargs: object) -> subprocess.CompletedProcess[str]:
        argv = [*self.prefix(), "run", "--config", str(self.config), "--cwd", str(workspace),
                *self.bwrap_options(), "--", *command]
        # root's runtime directory is not the unprivileged user's: each uses its own default.
        env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                              env=env, **kwargs)  # type: ignore[call-overload]


RUNNERS = [(u, b) for u in ("root", "nobody") for b in ("system", "vendored")]
KERNEL_DIRS = tuple(Path(__file__).parent / d for d in ("enforcement", "adversary", "workloads"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Every system-bwrap variant skipped on a machine without /usr/bin/bwrap is reported under
    one line (one location), wherever the test met it."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.skipped and isinstance(report.longrepr, tuple) and \
            report.longrepr[2].endswith(NO_SYSTEM_BWRAP):
        code = Runner.bwrap_options.__code__
        report.longrepr = (code.co_filename, code.co_firstlineno, report.longrepr[2])


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test under the kernel directories `kernel`: `-m kernel` selects them,
    `-m "not kernel"` the unit and TUI tests."""
    for item in items:
        if any(item.path.is_relative_to(d) for d in KERNEL_DIRS):
            item.add_marker(pytest.mark.kernel)


@pytest.fixture(scope="session")
def shared_dir() -> Iterator[Path]:
    """A world-readable scratch directory (pytest's tmp_path is 0700, closed to `nobody`)."""
    d = Path(tempfile.mkdtemp(prefix="sandboxtui-test-"))
    d.chmod(0o755)
    config = d / "config.toml"
    config.write_text("# intentionally empty: tests set everything with -c\n")
    config.chmod(0o644)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(params=RUNNERS, ids=lambda p: "-".join(p))
def runner(request: pytest.FixtureRequest, shared_dir: Path) -> Runner:
    user, bwrap = request.param
    return Runner(user, bwrap, shared_dir / "config.toml")


def chown_tree(root: Path, user: str) -> None:
    if user == "root":
        return
    subprocess.run(["chown", "-R", f"{user}:", str(root)], check=True)


def git(ws: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid",
                    "-c", "init.defaultBranch=main", *args], cwd=ws, check=True,
                   capture_output=True)


def git_config(git_dir: Path) -> str:
    """Every setting of one repository's own config file, as git lists it."""
    return subprocess.run(["git", "config", "--file", str(git_dir / "config"), "--list"],
                          capture_output=True, text=True, check=True, cwd="/").stdout


def make_workspace(base: Path, name: str = "ws") -> Path:
    """A git repo with `.env` (holding CANARY), a nested `.env.local`, `.codex`, a hook and a
    symlink to `.env`: every protected and sensitive kind the sandbox must handle."""
    ws = base / name
    ws.mkdir()
    (ws / "README.md").write_text("hello\n")
    (ws / ".env").write_text(f"API_TOKEN={CANARY}\n")
    (ws / "sub").mkdir()
    (ws / "sub" / ".env.local").write_text(f"NESTED={CANARY}\n")
    (ws / ".codex").mkdir()
    (ws / ".codex" / "config.toml").write_text("model = 'x'\n")
    (ws / "link-to-env").symlink_to(".env")
    git(ws, "init", "-q")
    git(ws, "add", "README.md")
    git(ws, "commit", "-q", "-m", "init")
    hook = ws / ".git" / "hooks" / "pre-commit"
    hook.write_text("#!/bin/sh\nexit 0\n")
    hook.chmod(0o755)
    (ws / "README.md").write_text("hello\nchanged\n")  # something for `git diff`
    return ws


@pytest.fixture
def workspace(shared_dir: Path) -> Path:
    """A fresh workspace (owned by root; chown it for an unprivileged runner)."""
    base = Path(tempfile.mkdtemp(dir=shared_dir))
    base.chmod(0o755)
    return make_workspace(base)


def plan_for(ws: Path, *overrides: str, config: str | None = "",
             env: Mapping[str, str] | None = None, mount_proc: bool = True,
             bounds: ScanBounds | None = None) -> MountPlan:
    """The plan for workspace `ws` under the `-c` `overrides` and a config file holding `config`
    (written beside `ws`; None: no config file at all), in the environment `env` (empty by
    default: no TMPDIR or HOME of the machine running the tests leaks into the plan), with the
    default scan bounds unless `bounds` are given."""
    config_path = None
    if config is not None:
        config_path = ws.parent / "config.toml"
        config_path.write_text(config)
    policy = resolve(config_path=config_path, overrides=overrides, env={})
    return build_plan(policy, str(ws), {} if env is None else env, mount_proc=mount_proc,
                      bounds=ScanBounds() if bounds is None else bounds)
