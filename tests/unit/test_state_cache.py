"""The state directory's cache: an entry is read back only when every check passes (its seal
included: no sandbox can set one), and writing one never follows a planted link (with real
launches: tests/adversary/test_adv_cache_seccomp.py).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from sandboxtui.core import state_cache

KEY = "0123abcd" * 8


@pytest.fixture
def entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    state_cache.write("kind", KEY, b"program")
    path = Path(state_cache.cache_path("kind", KEY))
    assert path.parent == tmp_path / "sandboxtui" / "cache"
    return path


def test_an_entry_is_read_back(entry: Path) -> None:
    assert state_cache.read("kind", KEY) == b"program"
    assert entry.stat().st_mode & 0o777 == 0o600
    assert entry.parent.stat().st_mode & 0o777 == 0o700


def test_another_key_or_kind_misses(entry: Path) -> None:
    assert state_cache.read("kind", "f" * 64) is None
    assert state_cache.read("other", KEY) is None


def test_an_entry_under_another_keys_name_misses(entry: Path) -> None:
    os.rename(entry, state_cache.cache_path("kind", "f" * 64))
    assert state_cache.read("kind", "f" * 64) is None


@pytest.mark.parametrize("damage", ["payload", "header", "truncated", "appended"])
def test_a_damaged_entry_misses(entry: Path, damage: str) -> None:
    data = entry.read_bytes()
    header, _, payload = data.partition(b"\n")
    entry.write_bytes({"payload": header + b"\n" + b"PROGRAM",
                       "header": header.replace(b"cache 1", b"cache 2") + b"\n" + payload,
                       "truncated": data[:-1], "appended": data + b"x"}[damage])
    assert state_cache.read("kind", KEY) is None


def _forged(key: str, payload: bytes) -> bytes:
    """An entry with a correct header, as anyone who can write the file can make it."""
    digest = hashlib.sha256(payload).hexdigest()
    return f"sandboxtui-cache 1 {key} {digest} {len(payload)}\n".encode() + payload


def test_a_forged_entry_without_the_seal_misses(entry: Path) -> None:
    forged = entry.with_name("forged")
    forged.write_bytes(_forged(KEY, b"weaker"))
    os.replace(forged, entry)
    assert state_cache.read("kind", KEY) is None


def test_an_entry_rewritten_in_place_keeps_a_seal_that_no_longer_matches(entry: Path) -> None:
    entry.write_bytes(_forged(KEY, b"weaker"))  # same file: its attribute stays
    assert os.getxattr(entry, state_cache.SEAL)
    assert state_cache.read("kind", KEY) is None


def test_a_symlinked_entry_misses(entry: Path) -> None:
    target = entry.with_name("elsewhere")
    os.rename(entry, target)
    entry.symlink_to(target.name)
    assert state_cache.read("kind", KEY) is None


def test_a_shared_writable_or_linked_entry_misses(entry: Path) -> None:
    entry.chmod(0o620)
    assert state_cache.read("kind", KEY) is None
    entry.chmod(0o600)
    os.link(entry, entry.with_name("second-name"))
    assert state_cache.read("kind", KEY) is None


def test_a_shared_writable_or_symlinked_directory_misses(entry: Path, tmp_path: Path) -> None:
    entry.parent.chmod(0o770)
    assert state_cache.read("kind", KEY) is None
    entry.parent.chmod(0o700)
    os.rename(entry.parent, tmp_path / "real-cache")
    entry.parent.symlink_to(tmp_path / "real-cache")
    assert state_cache.read("kind", KEY) is None


def test_writing_replaces_a_planted_link_and_never_follows_it(entry: Path,
                                                              tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"untouched")
    entry.unlink()
    entry.symlink_to(victim)
    state_cache.write("kind", KEY, b"program")
    assert victim.read_bytes() == b"untouched"
    assert not entry.is_symlink()
    assert state_cache.read("kind", KEY) == b"program"
    assert [p.name for p in entry.parent.iterdir()] == [entry.name]  # no temporary left


def test_an_entry_relabelled_in_place_as_another_key_misses(entry: Path) -> None:
    """A legacy sandbox that can write the state directory (but set no attribute) rewrites an
    entry's header in place to name another key, then renames it to that key's name: the file
    keeps its seal and its single link, and would load a weaker filter under the other key."""
    other = "f" * 64
    state_cache.write("kind", other, b"stricter")
    relabelled = entry.read_bytes().replace(KEY.encode(), other.encode(), 1)
    with open(entry, "r+b") as f:  # same inode: the attribute stays
        f.write(relabelled)
    os.replace(entry, state_cache.cache_path("kind", other))
    assert state_cache.read("kind", other) is None
