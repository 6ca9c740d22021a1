"""The compiled seccomp program is cached in the state directory: attacker-reachable state. A
planted, corrupted, symlinked or foreign cache file is never loaded (the launch compiles the
filter again, rewrites the file, and the filter stays whole: a netlink socket, which only the
weaker host-safety filter allows, is still refused). Real launches, root and nobody. Each plant
carries the seal a launcher sets (an extended attribute over kind, key and payload), so each
case is stopped by its own check; a sandbox that rewrites the entry cannot set the seal."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import Runner, chown_tree

from sandboxtui.core import state_cache
from sandboxtui.core.seccomp import HOST_FILTER, bpf_cache_key, compile_bpf

NETLINK = ("import socket\ntry:\n    socket.socket(socket.AF_NETLINK, socket.SOCK_RAW).close()\n"
           "    print('NETLINK-OPEN')\nexcept PermissionError:\n    print('NETLINK-REFUSED')\n")


def _launch(runner: Runner, ws: Path, state: Path, code: str = NETLINK
            ) -> subprocess.CompletedProcess[str]:
    prefix = runner.prefix()
    env = {k: v for k, v in os.environ.items() if k not in ("XDG_RUNTIME_DIR", "XDG_STATE_HOME")}
    if "env" in prefix:
        prefix.insert(prefix.index("env") + 1, f"XDG_STATE_HOME={state}")
    else:
        env["XDG_STATE_HOME"] = str(state)
    argv = [*prefix, "run", "--config", str(runner.config), "--cwd", str(ws),
            *runner.bwrap_options(), "--", "/usr/bin/python3", "-c", code]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)


def _entry(state: Path) -> Path:
    """The one cache entry the launch wrote (the network-off filter's program)."""
    entries = list((state / "sandboxtui" / "cache").glob("seccomp-bpf-*"))
    assert len(entries) == 1, entries
    return entries[0]


def _header(key: str, body: bytes) -> bytes:
    import hashlib

    return b"sandboxtui-cache 1 %s %s %d\n" % (key.encode(), hashlib.sha256(body).hexdigest()
                                               .encode(), len(body))


def _sealed(path: Path, key: str, body: bytes) -> None:
    """Write an entry as a launcher does: header, payload, and the seal on kind, key and
    payload."""
    path.write_bytes(_header(key, body) + body)
    os.setxattr(path, state_cache.SEAL, state_cache.seal("seccomp-bpf", key, body))


def _weak(entry: Path, at: Path | None = None) -> None:
    """The host-safety program (netlink allowed) under the entry's own key, header and seal
    correct, written at `at` (default: the entry itself)."""
    _sealed(at or entry, entry.name.removeprefix("seccomp-bpf-"), compile_bpf(HOST_FILTER))


def _other_user(runner: Runner) -> str:
    return "root" if runner.user == "nobody" else "nobody"


def _foreign_owner(entry: Path, runner: Runner) -> None:
    _weak(entry)
    shutil.chown(entry, _other_user(runner), _other_user(runner) if runner.user == "nobody"
                 else "nogroup")


def _symlink(entry: Path, runner: Runner) -> None:
    target = entry.with_name("planted")
    _weak(entry, target)
    chown_tree(target, runner.user)
    entry.unlink()
    entry.symlink_to(target)


def _corrupt(entry: Path, runner: Runner) -> None:
    data = bytearray(entry.read_bytes())
    data[-3] ^= 0xFF  # rewritten in place (the seal stays): the SHA-256 no longer matches
    entry.write_bytes(bytes(data))


def _foreign_key(entry: Path, runner: Runner) -> None:
    """A genuine entry of another filter, copied under this filter's name."""
    host_key = bpf_cache_key(HOST_FILTER)
    assert host_key is not None
    _sealed(entry, host_key, compile_bpf(HOST_FILTER))


def _writable_by_others(entry: Path, runner: Runner) -> None:
    _weak(entry)
    entry.chmod(0o666)


def _hard_link(entry: Path, runner: Runner) -> None:
    _weak(entry)
    os.link(entry, entry.with_name("second-name"))


def _directory_of_another_user(entry: Path, runner: Runner) -> None:
    _weak(entry)
    other = _other_user(runner)
    shutil.chown(entry.parent, other)


PLANTS: dict[str, Callable[[Path, Runner], None]] = {
    "owned-by-another-user": _foreign_owner,
    "symlink": _symlink,
    "corrupted": _corrupt,
    "another-filters-entry": _foreign_key,
    "writable-by-others": _writable_by_others,
    "hard-link": _hard_link,
    "directory-of-another-user": _directory_of_another_user,
}


@pytest.mark.parametrize("plant", PLANTS, ids=list(PLANTS))
def test_a_planted_cache_entry_is_not_loaded(runner: Runner, workspace: Path, shared_dir: Path,
                                             plant: str) -> None:
    state = shared_dir / f"state-{os.urandom(4).hex()}"
    state.mkdir()
    chown_tree(state, runner.user)
    chown_tree(workspace, runner.user)
    first = _launch(runner, workspace, state)
    assert first.returncode == 0, first.stderr
    assert "NETLINK-REFUSED" in first.stdout, first.stdout
    entry = _entry(state)
    genuine = entry.read_bytes()
    PLANTS[plant](entry, runner)
    second = _launch(runner, workspace, state)
    assert second.returncode == 0, second.stderr
    assert "NETLINK-REFUSED" in second.stdout, (plant, second.stdout)
    if plant != "directory-of-another-user":  # the directory is not ours: left alone
        assert not entry.is_symlink()
        assert entry.read_bytes() == genuine  # compiled again and rewritten
        assert entry.stat().st_mode & 0o077 == 0


def test_a_genuine_entry_is_loaded_not_rewritten(runner: Runner, workspace: Path,
                                                 shared_dir: Path) -> None:
    state = shared_dir / f"state-{os.urandom(4).hex()}"
    state.mkdir()
    chown_tree(state, runner.user)
    chown_tree(workspace, runner.user)
    assert _launch(runner, workspace, state).returncode == 0
    entry = _entry(state)
    before = entry.stat()
    again = _launch(runner, workspace, state)
    assert "NETLINK-REFUSED" in again.stdout, again.stdout
    after = entry.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


REWRITE = ("import glob, os, sys\nfor path in glob.glob(sys.argv[1] + '/*'):\n    try:\n"
           "        open(path, 'wb').close()\n        print('REWROTE', path)\n"
           "    except OSError as exc:\n        print('REFUSED', exc.errno)\n")


def test_a_sandbox_cannot_rewrite_the_cache_in_its_own_workspace(runner: Runner,
                                                                 workspace: Path) -> None:
    """The state directory inside the writable workspace is still read-only inside."""
    state = workspace / "state"
    state.mkdir()
    chown_tree(workspace, runner.user)
    assert _launch(runner, workspace, state).returncode == 0
    entry = _entry(state)
    genuine = entry.read_bytes()
    cache = entry.parent
    done = _launch(runner, workspace, state, REWRITE.replace("sys.argv[1]", repr(str(cache))))
    assert "REFUSED" in done.stdout and "REWROTE" not in done.stdout, done.stdout
    assert entry.read_bytes() == genuine


FORGE = ("import os, shutil, sys\nentry, weak = sys.argv[1:3]\n"
         "shutil.copyfile(weak, entry)  # in place: same file, its seal kept\n"
         "print('REWROTE')\ntry:\n    os.setxattr(entry, 'user.sandboxtui.sha256', b'x')\n"
         "    print('SEALED')\nexcept OSError as exc:\n    print('NOT-SEALED', exc.errno)\n")


def test_a_legacy_sandbox_that_can_write_the_cache_cannot_forge_an_entry(
        workspace: Path, shared_dir: Path) -> None:
    """Legacy Landlock cannot make the state directory read-only inside a writable root (the
    launch warns that the command can write it): the command rewrites the entry with a weaker
    program and a correct header, but cannot seal it, and the next launch compiles again. (Only
    `nobody`: a root launcher never runs on the legacy pipeline.)"""
    bwrap = Runner("nobody", "system", shared_dir / "config.toml")
    legacy = Runner("nobody", "system", shared_dir / "config.toml", pipeline="legacy")
    state = workspace / "state"
    state.mkdir()
    chown_tree(workspace, "nobody")
    assert _launch(bwrap, workspace, state).returncode == 0
    entry = _entry(state)
    genuine = entry.read_bytes()
    weak = workspace / "weak"
    _weak(entry, weak)
    chown_tree(weak, "nobody")
    forge = FORGE.replace("sys.argv[1:3]", repr([str(entry), str(weak)]))
    done = _launch(legacy, workspace, state, forge)
    assert "REWROTE" in done.stdout and "SEALED" not in done.stdout.split(), done.stdout
    assert entry.read_bytes() != genuine  # the forgery is in place ...
    again = _launch(bwrap, workspace, state)
    assert "NETLINK-REFUSED" in again.stdout, again.stdout  # ... and not loaded
    assert entry.read_bytes() == genuine


def test_the_key_names_the_filter_and_the_machine() -> None:
    from sandboxtui.core.seccomp import NETWORK_FILTER, NETWORK_FILTER_NO_GATE

    keys = {bpf_cache_key(f) for f in (HOST_FILTER, NETWORK_FILTER, NETWORK_FILTER_NO_GATE)}
    assert len(keys) == 3 and None not in keys
    assert state_cache.cache_path("seccomp-bpf", "k").endswith("/sandboxtui/cache/seccomp-bpf-k")
