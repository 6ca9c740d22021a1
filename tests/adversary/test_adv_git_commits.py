"""`protect_git = "config-and-hooks"` (issue 12, item 7): commits work inside, while everything
through which git runs code or reads configuration stays read-only, at the root's `.git` and a
nested repository's, and no `.git` can be renamed away and replaced. Real launches, as root and
as nobody, on both bwraps."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import pytest
from conftest import RUNNERS, Runner, chown_tree, git, git_config, make_workspace

MODE = ['-c', 'protect_git="config-and-hooks"']

# Every line that must fail prints nothing: "BROKE ..." appears only if the attack worked.
ATTACKS = r"""
G="git -c user.name=t -c user.email=t@example.invalid"
try() { name=$1; shift; if "$@" 2>/dev/null; then echo "BROKE $name"; fi; }
try config git config core.fsmonitor 'touch /tmp/pwned'
try worktree-config sh -c 'echo "[core] hooksPath = /tmp" >> .git/config.worktree'
try hook sh -c "printf '#!/bin/sh\ntouch /tmp/pwned\n' > .git/hooks/post-checkout"
try hook-edit sh -c 'echo x >> .git/hooks/pre-commit'
try hooks-dir sh -c 'mv .git/hooks .git/hooks-old'
try info sh -c 'echo "* filter=evil" > .git/info/attributes'
try modules mkdir -p .git/modules/x
try worktrees mkdir -p .git/worktrees/x
try rebase-merge mkdir .git/rebase-merge
try rebase-apply mkdir .git/rebase-apply
try rename-git sh -c 'mv .git .git-away'
try nested-config git -C sub config core.pager 'touch /tmp/pwned'
try nested-hook sh -c "printf '#!/bin/sh\n' > sub/.git/hooks/pre-commit"
echo changed > README.md
$G commit -qam inside && echo COMMITTED
$G -C sub commit -q --allow-empty -m nested && echo NESTED-COMMITTED
git log --oneline | wc -l
"""


@pytest.mark.parametrize(("user", "bwrap"), RUNNERS, ids=["-".join(p) for p in RUNNERS])
def test_commits_work_and_code_paths_stay_read_only(shared_dir: Path, user: str,
                                                    bwrap: str) -> None:
    runner = Runner(user, bwrap, shared_dir / "config.toml")
    base = Path(tempfile.mkdtemp(dir=shared_dir))
    base.chmod(0o755)
    ws = make_workspace(base)
    (ws / "sub").mkdir(exist_ok=True)
    git(ws / "sub", "init", "-q")
    git(ws / "sub", "commit", "-q", "--allow-empty", "-m", "s")
    chown_tree(base, user)
    before = {d: git_config(ws / d) for d in (".git", "sub/.git")}
    hook = (ws / ".git/hooks/pre-commit").read_bytes()
    argv = [*runner.prefix(), "run", "--config", str(runner.config), "--cwd", str(ws),
            *runner.bwrap_options(), *MODE, "--", "bash", "-c", ATTACKS]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "BROKE" not in r.stdout, r.stdout
    assert "COMMITTED" in r.stdout and "NESTED-COMMITTED" in r.stdout, r.stdout + r.stderr
    assert r.stdout.strip().endswith("2")  # the commit made inside is in the host's history
    assert {d: git_config(ws / d) for d in before} == before
    assert (ws / ".git/hooks/pre-commit").read_bytes() == hook
    for name in ("hooks/post-checkout", "modules", "worktrees", "commondir", "rebase-merge",
                 "rebase-apply"):
        assert not (ws / ".git" / name).exists(), name
    log = subprocess.run(["git", "-c", "safe.directory=*", "-C", str(ws), "log",
                          "--format=%s", "-1"], capture_output=True, text=True, check=True).stdout
    assert log.strip() == "inside"


def test_explain_names_the_mode(shared_dir: Path, tmp_path: Path) -> None:
    ws = make_workspace(tmp_path)
    for mode, objects, config in (("full", "ro", "ro"), ("config-and-hooks", "rw", "ro")):
        out = {}
        for name in ("objects", "config"):
            done = subprocess.run(
                [*Runner("root", "system", shared_dir / "config.toml").prefix(), "explain",
                 "--json", "--config", str(shared_dir / "config.toml"), "--cwd", str(ws), "-c",
                 f'protect_git="{mode}"', str(ws / ".git" / name)],
                capture_output=True, text=True, check=True)
            out[name] = done.stdout
        assert f'"access": "{objects}"' in out["objects"], out["objects"]
        assert f'"access": "{config}"' in out["config"]
        if mode == "config-and-hooks":
            assert "protect_git = config-and-hooks" in out["config"]
            assert "-c protect_git" in out["config"]  # the provenance of the mode
