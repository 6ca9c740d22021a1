"""Ways past the post-run neutraliser that an attack review reproduced, each one a command that
leaves code for the host's next `git` (or for the launcher itself) to run: a `git` planted on
the launcher's PATH, the workspace turned into a bare repository, a planted `commondir`, and a
`.git` file naming a git directory outside the writable roots. Real launches, root and nobody,
both bwraps; afterwards the host's git runs in the workspace and nothing planted may run."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from conftest import Runner, chown_tree

G = "git -c user.name=t -c user.email=t@example.invalid"


def _setup(shared_dir: Path, runner: Runner) -> tuple[Path, str]:
    base = Path(tempfile.mkdtemp(dir=shared_dir))
    base.chmod(0o755)
    ws = base / "ws"
    ws.mkdir()
    (ws / "a.txt").write_text("hi\n")
    chown_tree(base, runner.user)
    return ws, f"/tmp/pwned-{os.urandom(4).hex()}"


def _run(runner: Runner, ws: Path, script: str, *extra: str,
         path: str | None = None) -> subprocess.CompletedProcess[str]:
    argv = [*runner.prefix(), "run", "--config", str(runner.config), "--cwd", str(ws),
            *runner.bwrap_options(), *extra, "--", "sh", "-c", script]
    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
    env |= {"HOME": "/tmp", "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null"}
    if path is not None:
        env["PATH"] = path
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)


def _host_git(runner: Runner, directory: Path) -> None:
    as_user = [] if runner.user == "root" else ["runuser", "-u", runner.user, "--"]
    subprocess.run([*as_user, "env", "HOME=/tmp", "GIT_CONFIG_GLOBAL=/dev/null", "git",
                    "-c", "safe.directory=*", "status"], cwd=directory, capture_output=True,
                   timeout=30)


def _ran(mark: str) -> list[str]:
    return [p for p in os.listdir("/tmp") if p.startswith(os.path.basename(mark))]


def test_a_git_planted_on_the_launchers_path_never_runs(runner: Runner,
                                                         shared_dir: Path) -> None:
    ws, mark = _setup(shared_dir, runner)
    # The planted git marks only a run outside any sandbox (no seccomp filter): inside, the
    # command itself runs it, which is allowed.
    (ws / "bin").mkdir()
    (ws / "bin" / "git").write_text(
        "#!/bin/sh\ngrep -q '^Seccomp:[[:space:]]*0' /proc/self/status && "
        f"touch {mark}-launcher\nexec /usr/bin/git \"$@\"\n")
    (ws / "bin" / "git").chmod(0o755)
    chown_tree(ws, runner.user)
    script = f"{G} init -q new && {G} -C new commit -q --allow-empty -m x && echo RAN"
    r = _run(runner, ws, script, path=f"{ws}/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    assert "RAN" in r.stdout, r.stderr
    assert _ran(mark) == [], "the launcher ran a git from its PATH"


def test_a_workspace_turned_into_a_bare_repository_is_neutralised(runner: Runner,
                                                                  shared_dir: Path) -> None:
    ws, mark = _setup(shared_dir, runner)
    script = (f"export GIT_DIR=$PWD GIT_WORK_TREE=$PWD; git init -q && {G} commit -q "
              "--allow-empty -m x && git config core.bare false && git config core.worktree "
              f"$PWD && git config core.fsmonitor 'touch {mark}-bare; false' && echo RAN")
    r = _run(runner, ws, script)
    assert "RAN" in r.stdout, r.stderr
    assert "removed core.fsmonitor" in r.stderr, r.stderr
    _host_git(runner, ws)
    assert _ran(mark) == []


def test_a_planted_commondir_is_moved_aside(runner: Runner, shared_dir: Path) -> None:
    ws, mark = _setup(shared_dir, runner)
    subprocess.run(["git", "init", "-q", str(ws)], check=True)
    chown_tree(ws, runner.user)
    evil = f"/tmp/evil-{os.urandom(4).hex()}"
    script = (f"mkdir -p {evil} && git init -q --bare {evil} && git --git-dir={evil} config "
              f"core.fsmonitor 'touch {mark}-commondir; false' && echo {evil} > .git/commondir "
              "&& echo RAN")
    try:
        r = _run(runner, ws, script, "-c", 'protect_git="config-and-hooks"')
        assert "RAN" in r.stdout, r.stderr
        assert not (ws / ".git" / "commondir").exists()
        assert (ws / ".git" / "commondir.sandboxtui-disabled").exists()
        _host_git(runner, ws)
        assert _ran(mark) == []
    finally:
        subprocess.run(["rm", "-rf", evil], check=False)


def test_a_git_file_naming_a_directory_outside_is_moved_aside(runner: Runner,
                                                              shared_dir: Path) -> None:
    ws, mark = _setup(shared_dir, runner)
    outside = f"/tmp/sepgd-{os.urandom(4).hex()}"
    script = (f"mkdir sub && cd sub && git init -q --separate-git-dir={outside} && git config "
              f"core.fsmonitor 'touch {mark}-sep; false' && echo RAN")
    try:
        r = _run(runner, ws, script)
        assert "RAN" in r.stdout, r.stderr
        assert not (ws / "sub" / ".git").exists(), r.stderr
        _host_git(runner, ws / "sub")
        assert _ran(mark) == []
    finally:
        subprocess.run(["rm", "-rf", outside], check=False)


def test_a_linked_git_dir_with_only_head_and_commondir_is_neutralised(runner: Runner,
                                                                      shared_dir: Path) -> None:
    """`D/HEAD` + `D/commondir -> x/.git/evil` is a git directory to git (its objects and refs
    are the common directory's): a host `git log` in D ran the pager planted there."""
    ws, mark = _setup(shared_dir, runner)
    script = (f"{G} init -q x && git init -q --bare x/.git/evil && git --git-dir=x/.git/evil "
              f"config core.pager 'touch {mark}-linked; cat' && mkdir D && "
              "echo 'ref: refs/heads/main' > D/HEAD && echo ../x/.git/evil > D/commondir "
              "&& echo RAN")
    r = _run(runner, ws, script)
    assert "RAN" in r.stdout, r.stderr
    assert "pager" not in (ws / "x/.git/evil/config").read_text(), r.stderr
    _host_git(runner, ws / "D")
    assert _ran(mark) == []


def test_keys_that_run_code_through_gpg_protocols_and_urls_are_removed(
        runner: Runner, shared_dir: Path) -> None:
    ws, mark = _setup(shared_dir, runner)
    script = (f"{G} init -q s && cd s && git config commit.gpgsign true && git config "
              "gpg.format ssh && git config gpg.ssh.defaultKeyCommand "
              f"\"sh -c 'touch {mark}-key'\" && git config protocol.ext.allow always && "
              f"git config remote.origin.url 'ext::sh -c touch% {mark}-ext' && git config "
              "url.ext::sh.insteadOf evil: && echo RAN")
    r = _run(runner, ws, script)
    assert "RAN" in r.stdout, r.stderr
    config = (ws / "s/.git/config").read_text()
    for key in ("defaultKeyCommand", "[protocol", "insteadOf"):
        assert key not in config, config


def test_new_hooks_under_the_users_own_hooks_path_are_disabled(runner: Runner,
                                                               shared_dir: Path) -> None:
    """husky and others set core.hooksPath to a directory of the working tree: a hook the
    command adds there runs on the host's next `git commit`."""
    ws, _mark = _setup(shared_dir, runner)
    subprocess.run(["git", "init", "-q", str(ws)], check=True)
    subprocess.run(["git", "-c", "safe.directory=*", "-C", str(ws), "config", "core.hooksPath",
                    ".githooks"], check=True)
    (ws / ".githooks").mkdir()
    own = ws / ".githooks" / "pre-push"
    own.write_text("#!/bin/sh\nexit 0\n")
    own.chmod(0o755)
    chown_tree(ws, runner.user)
    r = _run(runner, ws, "printf '#!/bin/sh\\nexit 0\\n' > .githooks/pre-commit && chmod +x "
             ".githooks/pre-commit && echo RAN")
    assert "RAN" in r.stdout, r.stderr
    assert not (ws / ".githooks" / "pre-commit").exists(), r.stderr
    assert (ws / ".githooks" / "pre-commit.sandboxtui-disabled").exists()
    assert own.exists()  # the user's own hook stays
