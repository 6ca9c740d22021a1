"""Nested repositories (issue 11, item 13): a command must not plant code that the user's next
host `git` runs. An existing `.git` at any depth is read-only inside; a repository the command
creates works inside, and its code-running settings are neutralised after the run, with a
report (stderr, audit log, `RunResult.git_neutralised`)."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

import pytest
from conftest import RUNNERS, Runner, chown_tree, git, git_config, make_workspace

LEGACY = [("nobody", "system", "legacy")]  # a root launcher stays on bubblewrap
BOTH = [(u, b, "bwrap") for u, b in RUNNERS] + LEGACY


def _runner(shared_dir: Path, user: str, bwrap: str, pipeline: str) -> Runner:
    return Runner(user, bwrap, shared_dir / "config.toml", pipeline)


def _run(runner: Runner, ws: Path, script: str, state: Path) -> subprocess.CompletedProcess[str]:
    argv = [*runner.prefix(), "run", "--config", str(runner.config), "--cwd", str(ws),
            *runner.bwrap_options(), "--", "sh", "-c", script]
    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"} | {
        "XDG_STATE_HOME": str(state), "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": "/dev/null"}
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)


def _fresh(shared_dir: Path, user: str) -> tuple[Path, Path]:
    base = Path(tempfile.mkdtemp(dir=shared_dir))
    base.chmod(0o755)
    ws = make_workspace(base)
    (ws / "sub").mkdir(exist_ok=True)
    git(ws / "sub", "init", "-q")
    git(ws / "sub", "commit", "-q", "--allow-empty", "-m", "s")
    (ws / "vendor" / "lib").mkdir(parents=True)
    git(ws / "vendor" / "lib", "init", "-q", "--separate-git-dir", str(ws / "vendor" / "lib.git"))
    state = base / "state"
    state.mkdir()
    chown_tree(base, user)
    return ws, state


@pytest.mark.parametrize(("user", "bwrap"), RUNNERS, ids=lambda p: str(p))
def test_an_existing_nested_repository_is_read_only_inside(shared_dir: Path, user: str,
                                                            bwrap: str) -> None:
    runner = _runner(shared_dir, user, bwrap, "bwrap")
    ws, state = _fresh(shared_dir, user)
    before = {d: git_config(ws / d) for d in ("sub/.git", "vendor/lib.git")}
    script = ("git -C sub config core.fsmonitor 'touch /tmp/pwned' && echo WROTE-CONFIG; "
              "echo '#!/bin/sh' > sub/.git/hooks/post-checkout && echo WROTE-HOOK; "
              "mkdir sub/.git/info/x 2>/dev/null && echo WROTE-INFO; "
              "git -C vendor/lib config core.hooksPath /tmp && echo WROTE-GITDIR; true")
    r = _run(runner, ws, script, state)
    assert r.returncode == 0, r.stderr
    assert "WROTE" not in r.stdout, r.stdout
    assert {d: git_config(ws / d) for d in before} == before
    assert not (ws / "sub/.git/hooks/post-checkout").exists()


@pytest.mark.parametrize(("user", "bwrap", "pipeline"), BOTH, ids=lambda p: str(p))
def test_a_repository_created_inside_works_and_is_neutralised_after(
        shared_dir: Path, user: str, bwrap: str, pipeline: str) -> None:
    runner = _runner(shared_dir, user, bwrap, pipeline)
    ws, state = _fresh(shared_dir, user)
    g = "git -c user.name=t -c user.email=t@example.invalid"
    # A marker of this test alone: other work on the machine may leave its own in /tmp.
    mark = f"/tmp/pwned-{os.urandom(4).hex()}"
    script = (f"set -e; {g} init -q new; {g} -C new commit -q --allow-empty -m one; "
              f"{g} clone -q sub cloned; {g} -C cloned commit -q --allow-empty -m two; "
              f"git -C new config core.fsmonitor 'touch {mark}-fsmonitor'; "
              f"git -C new config core.hooksPath ../hooks; "
              f"git -C new config alias.st '!touch {mark}-alias'; "
              f"git -C new config alias.co checkout; "
              f"git -C new config filter.x.clean 'touch {mark}-filter'; "
              f"git -C cloned config core.pager 'touch {mark}-pager'; "
              f"printf '#!/bin/sh\\ntouch {mark}-hook\\n' > new/.git/hooks/post-checkout; "
              "chmod +x new/.git/hooks/post-checkout; echo RAN")
    r = _run(runner, ws, script, state)
    assert r.returncode == 0 and "RAN" in r.stdout, r.stderr
    new, cloned = git_config(ws / "new/.git"), git_config(ws / "cloned/.git")
    for key in ("core.fsmonitor", "core.hookspath", "alias.st", "filter.x.clean"):
        assert key not in new, new
    assert "alias.co=checkout" in new  # harmless settings stay
    assert "core.pager" not in cloned
    hooks = sorted(os.listdir(ws / "new/.git/hooks"))
    assert "post-checkout" not in hooks and "post-checkout.sandboxtui-disabled" in hooks
    assert "removed core.fsmonitor" in r.stderr and "post-checkout" in r.stderr
    audit = [json.loads(line) for line in
             (state / "sandboxtui" / "audit.jsonl").read_text().splitlines()]
    assert any(rec["kind"] == "git-neutralised" for rec in audit)
    # Both repositories still work on the host, and running git there runs nothing planted.
    as_user = [] if user == "root" else ["runuser", "-u", user, "--"]
    for repo in ("new", "cloned"):
        out = subprocess.run([*as_user, "git", "-C", str(ws / repo), "log", "--oneline"],
                             capture_output=True, text=True)
        assert out.returncode == 0 and out.stdout.strip(), out.stderr
    subprocess.run([*as_user, "git", "-C", str(ws / "new"), "status"], capture_output=True)
    assert not [p for p in os.listdir("/tmp") if p.startswith(os.path.basename(mark))]


def test_an_unchanged_repository_is_left_alone(shared_dir: Path) -> None:
    """Only repositories whose config or hooks changed during the run are touched."""
    runner = _runner(shared_dir, "root", "system", "bwrap")
    ws, state = _fresh(shared_dir, "root")
    before = git_config(ws / ".git")
    r = _run(runner, ws, "true", state)
    assert r.returncode == 0 and "git repository" not in r.stderr, r.stderr
    assert git_config(ws / ".git") == before
    assert (ws / ".git/hooks/pre-commit").exists()


def test_the_audit_views_show_what_was_neutralised() -> None:
    from sandboxtui.cli import render_audit_record
    from sandboxtui.core.audit import parse_record
    from sandboxtui.widgets.approvals_queue import audit_row

    record = parse_record({"kind": "git-neutralised", "time": 0, "cwd": "/w",
                           "argv": ["git", "init", "x"],
                           "actions": ["removed core.fsmonitor from /w/x/.git/config"]})
    assert audit_row(record)[1:] == ("git-neutralised", "git init x",
                                     "removed core.fsmonitor from /w/x/.git/config")
    assert "removed core.fsmonitor" in render_audit_record(record)


@pytest.mark.parametrize("sensitive", ['[".env"]', "[]"])
def test_nested_repositories_are_found_with_or_without_sensitive_patterns(
        tmp_path: Path, sensitive: str) -> None:
    """The sensitive scan's walk finds them; with no pattern, a walk of their own does."""
    from sandboxtui.core.config import resolve
    from sandboxtui.core.plan import build_plan

    ws = tmp_path / "ws"
    (ws / "a" / "b").mkdir(parents=True)
    git(ws / "a" / "b", "init", "-q")
    plan = build_plan(resolve(overrides=[f"sensitive_paths={sensitive}"]), str(ws), {})
    assert plan.explain(str(ws / "a/b/.git/config")).access.value == "ro"
    assert plan.explain(str(ws / "a/b/file")).access.value == "rw"
    assert plan.repos == (str(ws / "a" / "b"),) and plan.walked == (str(ws),)


@pytest.mark.parametrize("user", ["nobody"])  # a root launcher stays on bubblewrap
def test_only_what_the_command_added_is_removed(shared_dir: Path, user: str) -> None:
    """The legacy pipeline cannot keep `.git` read-only: a command adds `core.fsmonitor` to the
    workspace's own repository. It goes; the user's own `core.pager` and hook stay."""
    runner = _runner(shared_dir, user, "system", "legacy")
    base = Path(tempfile.mkdtemp(dir=shared_dir))
    base.chmod(0o755)
    ws = make_workspace(base)
    git(ws, "config", "core.pager", "less -R")
    state = base / "state"
    state.mkdir()
    chown_tree(base, user)
    r = _run(runner, ws, "git config core.fsmonitor 'touch /tmp/pwned-legacy' && echo RAN", state)
    assert "RAN" in r.stdout, r.stderr
    config = git_config(ws / ".git")
    assert "core.fsmonitor" not in config and "core.pager=less -R" in config
    assert (ws / ".git/hooks/pre-commit").exists()
    assert "removed core.fsmonitor" in r.stderr and "pre-commit" not in r.stderr
