"""The compiled seccomp program is cached in the state directory: attacker-reachable state. A
planted, corrupted, symlinked or foreign cache file is never loaded (the launch compiles the
filter again, rewrites the file, and the filter stays whole: a netlink socket, which only the
weaker host-safety filter allows, is still refused). Real launches, root and nobody."""

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


def _weak(entry: Path) -> bytes:
    """The host-safety program (netlink allowed) under the entry's own key, header correct."""
    key = entry.name.removeprefix("seccomp-bpf-")
    body = compile_bpf(HOST_FILTER)
    return _header(key, body) + body


def _other_user(runner: Runner) -> str:
    return "root" if runner.user == "nobody" else "nobody"


def _foreign_owner(entry: Path, runner: Runner) -> None:
    entry.write_bytes(_weak(entry))
    shutil.chown(entry, _other_user(runner), _other_user(runner) if runner.user == "nobody"
                 else "nogroup")


def _symlink(entry: Path, runner: Runner) -> None:
    target = entry.with_name("planted")
    target.write_bytes(_weak(entry))
    chown_tree(target, runner.user)
    entry.unlink()
    entry.symlink_to(target)


def _corrupt(entry: Path, runner: Runner) -> None:
    data = bytearray(entry.read_bytes())
    data[-3] ^= 0xFF  # one flipped bit pattern in the program: the SHA-256 no longer matches
    entry.write_bytes(bytes(data))


def _foreign_key(entry: Path, runner: Runner) -> None:
    """A genuine entry of another filter, copied under this filter's name."""
    host_key = bpf_cache_key(HOST_FILTER)
    assert host_key is not None
    body = compile_bpf(HOST_FILTER)
    entry.write_bytes(_header(host_key, body) + body)


def _writable_by_others(entry: Path, runner: Runner) -> None:
    entry.write_bytes(_weak(entry))
    entry.chmod(0o666)


def _hard_link(entry: Path, runner: Runner) -> None:
    entry.write_bytes(_weak(entry))
    os.link(entry, entry.with_name("second-name"))


def _directory_of_another_user(entry: Path, runner: Runner) -> None:
    entry.write_bytes(_weak(entry))
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


def test_the_key_names_the_filter_and_the_machine() -> None:
    from sandboxtui.core.seccomp import NETWORK_FILTER, NETWORK_FILTER_NO_GATE

    keys = {bpf_cache_key(f) for f in (HOST_FILTER, NETWORK_FILTER, NETWORK_FILTER_NO_GATE)}
    assert len(keys) == 3 and None not in keys
    assert state_cache.cache_path("seccomp-bpf", "k").endswith("/sandboxtui/cache/seccomp-bpf-k")
