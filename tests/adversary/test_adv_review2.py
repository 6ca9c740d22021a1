"""Findings of the second attack review (issue 11): what one launch plants must not reach the
host or hang the next launch.

Each test launches the real sandbox as root and as `nobody` and asserts the kernel's answer
and the host state after.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import pytest
from conftest import CANARY, SRC, Runner, chown_tree

USERS = ["root", "nobody"]


def launch(runner: Runner, cwd: Path, script: str, *options: str, bound: float = 60,
           env: dict[str, str] | None = None, prefix: list[str] | None = None
           ) -> subprocess.CompletedProcess[str]:
    """`sandboxtui run` as the runner's user, killed as a whole (its process group) after
    `bound` seconds: a launcher that hangs fails the test instead of outliving it. `env`
    reaches it (runuser resets HOME)."""
    prefix = list(prefix or runner.prefix())
    if "env" in prefix and env:
        at = prefix.index("env") + 1
        prefix[at:at] = [f"{k}={v}" for k, v in env.items()]
    argv = [*prefix, "run", "--config", str(runner.config), "--cwd", str(cwd),
            *runner.bwrap_options(), *options, "--", "sh", "-c", script]
    base = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env={**base, **(env or {})}, start_new_session=True) as proc:
        try:
            out, err = proc.communicate(timeout=bound)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            pytest.fail(f"the launch in {cwd} still ran after {bound:g} s: {script!r}")
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def new_base(shared_dir: Path, user: str) -> Path:
    base = Path(tempfile.mkdtemp(dir=shared_dir))
    base.chmod(0o755)
    chown_tree(base, user)
    return base


# --- a FIFO named `.git` ----------------------------------------------------------------------


@pytest.mark.parametrize("user", USERS)
def test_a_fifo_named_git_does_not_hang_later_launches(shared_dir: Path, user: str) -> None:
    runner = Runner(user, "system", shared_dir / "config.toml")
    ws = new_base(shared_dir, user) / "ws"
    ws.mkdir()
    chown_tree(ws, user)
    planted = launch(runner, ws, "mkdir sub && mkfifo sub/.git && echo PLANTED", bound=30)
    assert "PLANTED" in planted.stdout, planted.stderr
    assert (ws / "sub" / ".git").is_fifo()
    for cwd in (ws, ws / "sub"):  # the FIFO below the workspace, then at its top
        done = launch(runner, cwd, "echo RAN", bound=30)
        assert done.returncode == 0 and "RAN" in done.stdout, done.stderr
    assert "neither a directory nor a regular file" in done.stderr, done.stderr


@pytest.mark.parametrize("user", USERS)
def test_a_fifo_commondir_named_by_a_git_file_does_not_hang_the_launch(shared_dir: Path,
                                                                       user: str) -> None:
    """A `.git` file (say, from an unpacked archive) names a git directory outside the roots,
    whose `commondir` another local user made a FIFO: the plan reads it, without blocking."""
    runner = Runner(user, "system", shared_dir / "config.toml")
    base = new_base(shared_dir, user)
    (base / "elsewhere").mkdir()
    os.mkfifo(base / "elsewhere" / "commondir")
    ws = base / "ws"
    (ws / "sub").mkdir(parents=True)
    (ws / "sub" / ".git").write_text(f"gitdir: {base / 'elsewhere'}\n")
    chown_tree(ws, user)
    done = launch(runner, ws, "echo RAN", bound=30)
    assert done.returncode == 0 and "RAN" in done.stdout, done.stderr


# --- a planted sensitive symlink -----------------------------------------------------------

PRECHECK_OFF = ["-c", 'sensitive_path_precheck_mode="off"']  # the kernel's answer is tested


@pytest.mark.parametrize("user", USERS)
def test_a_secret_written_through_a_planted_sensitive_link_stays_masked(shared_dir: Path,
                                                                        user: str) -> None:
    runner = Runner(user, "system", shared_dir / "config.toml")
    ws = new_base(shared_dir, user) / "ws"
    ws.mkdir()
    chown_tree(ws, user)
    plant = "mkdir build other && ln -s build/cache.txt .env.local && ln -s other .env.d && " \
            "ln -s /etc/ssl .env.x && ln -s /etc/hostname .env.y && echo PLANTED"
    planted = launch(runner, ws, plant, *PRECHECK_OFF)
    assert "PLANTED" in planted.stdout, planted.stderr
    with open(ws / ".env.local", "a", encoding="utf-8") as fh:  # the user, through the link
        fh.write(f"API_KEY={CANARY}\n")
    (ws / "other" / "plain.txt").write_text("plain\n")
    chown_tree(ws, user)
    done = launch(runner, ws, "cat build/cache.txt; cat .env.local; ls /etc/ssl >/dev/null && "
                  "echo SSL-LISTED; cat /etc/hostname >/dev/null && echo HOSTNAME-READ; "
                  "cat .env.d/plain.txt", *PRECHECK_OFF)
    assert CANARY not in done.stdout, done.stdout
    assert "SSL-LISTED" in done.stdout and "HOSTNAME-READ" in done.stdout, done.stderr
    assert "plain" in done.stdout, done.stderr  # a directory target stays as it was
    assert (ws / "build" / "cache.txt").read_text() == f"API_KEY={CANARY}\n"
    explain = subprocess.run(
        [*runner.prefix(), "explain", "--config", str(runner.config), "--cwd", str(ws),
         str(ws / "build" / "cache.txt")], capture_output=True, text=True, check=True)
    assert "access:   none" in explain.stdout
    assert f"target of the sensitive symlink {ws / '.env.local'}" in explain.stdout


# --- the per-user site-packages of the launcher's Python ------------------------------------


def system_python() -> str:
    """The distribution's Python: unlike a venv's, it imports the per-user site-packages."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    found = shutil.which(version, path="/usr/local/bin:/usr/bin:/bin")
    if found is None:
        pytest.skip(f"no system {version}")
    return found


@pytest.mark.parametrize("user", USERS)
def test_run_1_cannot_plant_a_pth_in_the_user_site_of_the_next_launcher(shared_dir: Path,
                                                                        user: str) -> None:
    runner = Runner(user, "system", shared_dir / "config.toml")
    base = new_base(shared_dir, user)
    ws = base / "ws"  # also $HOME
    ws.mkdir()
    chown_tree(ws, user)
    python = system_python()
    probe = subprocess.run([python, "-c", "import site; print(site.ENABLE_USER_SITE)"],
                           capture_output=True, text=True, check=True)
    assert probe.stdout.strip() == "True"
    env = {"HOME": str(ws), "PYTHONPATH": f"{SRC}:{sysconfig.get_paths()['purelib']}"}
    prefix = [python, "-m", "sandboxtui"]
    if user != "root":
        prefix = ["runuser", "-u", user, "--", "env", *prefix]
    site_dir = sysconfig.get_path("purelib", "posix_user", vars={"userbase": f"{ws}/.local"})
    pwned = base / "pwned"
    plant = f"mkdir -p {site_dir} && echo 'import os; open(\"{pwned}\", \"w\").close()' > " \
            f"{site_dir}/zz.pth && echo PLANTED"
    first = launch(runner, ws, plant, env=env, prefix=prefix)
    assert "PLANTED" not in first.stdout
    assert "Read-only file system" in first.stderr, first.stderr
    assert not (Path(site_dir) / "zz.pth").exists()
    second = launch(runner, ws, "echo RAN", env=env, prefix=prefix)
    assert "RAN" in second.stdout, second.stderr
    assert not pwned.exists()  # the next launcher ran nothing of run 1
