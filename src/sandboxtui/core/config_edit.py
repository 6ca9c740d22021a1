"""Applying a trace suggestion to the config file (issue 14): sandboxtui's one config writer.

A suggestion (core/trace.py) is one key and value, as a `-c` flag and as a TOML line.
`prepare_edit()` reads the config file, puts the key where the value that decides it now is
set (the top level, or the active profile when that is where it is set, or when a profile is
active and the key is set nowhere: the narrowest place), and edits the text with tomlkit, so
comments and layout stay. It is verified before it is offered: the policy resolved from the
edited file (with the same profile, `-s` and `-c`) must equal the policy resolved with the
suggestion's `-c` flag, setting for setting. A value set by `-c` cannot be changed by the file
(the command line wins): that is refused, saying so.

`write_edit()` writes atomically (a temporary file in the same directory, the file's mode,
fsync, rename) and refuses a config path that is a symbolic link, not a regular file, owned by
someone else or in a directory others may write, and a file that changed since it was read.
"""

from __future__ import annotations

import difflib
import os
import shlex
import stat
import tempfile
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import tomlkit
from tomlkit.items import Array

from sandboxtui.core.config import ConfigError, Key, dotted, flatten, resolve, settings_table
from sandboxtui.core.outcome import ExitCode, SandboxtuiError
from sandboxtui.core.policy import Policy, Provenance
from sandboxtui.core.trace import Suggestion

NEW_FILE_MODE = 0o600


class ConfigEditError(SandboxtuiError):
    """The suggestion cannot be written to the config file; the message says why."""

    exit_code = ExitCode.USAGE


@dataclass(frozen=True)
class Resolution:
    """What the policy is resolved from besides the file (`resolve()`'s other arguments)."""

    profile: str | None = None
    sandbox_mode: str | None = None
    overrides: tuple[str, ...] = ()
    env: Mapping[str, str] | None = None


@dataclass(frozen=True)
class _Read:
    text: str | None  # None: the file does not exist yet
    identity: tuple[int, int, int, int, int] | None  # dev, inode, size, mtime, mode


@dataclass(frozen=True)
class ConfigEdit:
    """One verified change to the config file, not yet written."""

    path: str
    key: str  # the key as the config writes it, e.g. sandbox_workspace_write.writable_roots
    where: str  # "the top level" or "[profiles.NAME]"
    before: str | None
    after: str
    widens: str  # what else the change opens (the suggestion's sentence)
    read: _Read

    def diff(self) -> str:
        """The exact change, as a unified diff of the file."""
        return "".join(difflib.unified_diff(
            (self.before or "").splitlines(keepends=True), self.after.splitlines(keepends=True),
            fromfile=self.path if self.before is not None else "/dev/null", tofile=self.path))


def prepare_edit(path: str | os.PathLike[str], suggestion: Suggestion,
                 resolution: Resolution = Resolution()) -> ConfigEdit:
    """The change that writes `suggestion` into the config file at `path`, verified; or
    ConfigEditError saying why it cannot be applied to the file."""
    if suggestion.flag is None or suggestion.toml is None:
        raise ConfigEditError(f"nothing to apply: {suggestion.widens}")
    path = os.path.abspath(os.fspath(path))
    override = shlex.split(suggestion.flag)[-1]
    key, value = _one_setting(suggestion.toml)
    read = _read(path)
    current = _resolve_text(read.text, resolution)
    name = dotted(key)
    provenance = _provenance(current, key)
    if provenance.source == "-c" or "(-c " in provenance.detail:
        raise ConfigEditError(
            f"{name} is set on the command line ({provenance}), which wins over the config "
            f"file: the file cannot change it; run with {suggestion.flag} instead")
    # where the deciding value is set; a key set nowhere goes into the active profile
    profile = current.profile if provenance.source in ("profile", "default") else None
    table = ("profiles", profile) if profile is not None else ()
    after = _edited(read.text or "", table, key, value)
    wanted = _resolve_text(read.text, Resolution(resolution.profile, resolution.sandbox_mode,
                                                 (*resolution.overrides, override),
                                                 resolution.env))
    got = _resolve_text(after, resolution)
    if _values(got) != _values(wanted):
        raise ConfigEditError(f"writing {name} to {path} would not have the effect of "
                              f"{suggestion.flag} (another layer decides it); run with the "
                              "flag instead")
    return ConfigEdit(path, name, f"[profiles.{profile}]" if profile else "the top level",
                      read.text, after, suggestion.widens, read)


def write_edit(edit: ConfigEdit) -> None:
    """Write the edit atomically, unless the file changed since it was read (then nothing is
    written: prepare the edit again from what is there now)."""
    directory = os.path.dirname(edit.path)
    if edit.read.text is None:
        os.makedirs(directory, mode=0o700, exist_ok=True)
    if _read(edit.path) != edit.read:
        raise ConfigEditError(f"{edit.path} changed since it was read: nothing was written; "
                              "look at the suggestion again")
    mode = stat.S_IMODE(edit.read.identity[4]) if edit.read.identity else NEW_FILE_MODE
    fd, temp = tempfile.mkstemp(dir=directory, prefix=".sandboxtui-config-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            os.fchmod(out.fileno(), mode)
            out.write(edit.after)
            out.flush()
            os.fsync(out.fileno())
        if _read(edit.path) != edit.read:  # changed while the temporary file was written
            raise ConfigEditError(f"{edit.path} changed while it was being written: nothing "
                                  "was written; look at the suggestion again")
        os.rename(temp, edit.path)
    except BaseException:
        os.unlink(temp)
        raise
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _one_setting(toml: str) -> tuple[Key, Any]:
    flat = flatten(tomllib.loads(toml))
    if len(flat) != 1:
        raise ConfigEditError(f"a suggestion is one setting, not {toml!r}")
    return next(iter(flat.items()))


def _read(path: str) -> _Read:
    """The file's text and identity, never through a symbolic link, and only a regular file
    of ours in a directory no one else may write."""
    directory = os.path.dirname(path)
    try:
        parent = os.stat(directory)
    except FileNotFoundError:
        return _Read(None, None)
    except OSError as exc:
        raise ConfigEditError(f"cannot read {directory}: {exc.strerror}") from None
    if parent.st_uid not in (os.geteuid(), 0):
        raise ConfigEditError(f"{directory} belongs to uid {parent.st_uid}, not to you: "
                              "sandboxtui does not write config files there")
    if parent.st_mode & stat.S_IWOTH and not parent.st_mode & stat.S_ISVTX:
        raise ConfigEditError(f"{directory} is writable by everyone: another user could swap "
                              "the config file; sandboxtui does not write there")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return _Read(None, None)
    except OSError as exc:
        why = "a symbolic link" if os.path.islink(path) else exc.strerror
        raise ConfigEditError(f"{path} is {why}: sandboxtui writes only a regular file of "
                              "yours; edit it by hand") from None
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise ConfigEditError(f"{path} is not a regular file: edit it by hand")
        if st.st_uid != os.geteuid():
            raise ConfigEditError(f"{path} belongs to uid {st.st_uid}, not to you: sandboxtui "
                                  "does not write it; edit it by hand")
        data = fh.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigEditError(f"{path} is not valid UTF-8") from None
    return _Read(text, (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_mode))


def _resolve_text(text: str | None, resolution: Resolution) -> Policy:
    """The policy `resolve()` makes from this config text (a missing file reads as empty)."""
    with tempfile.TemporaryDirectory(prefix="sandboxtui-edit-") as scratch:
        config = os.path.join(scratch, "config.toml")
        with open(config, "w", encoding="utf-8") as fh:
            fh.write(text or "")
        try:
            return resolve(config_path=config, profile=resolution.profile,
                           sandbox_mode=resolution.sandbox_mode,
                           overrides=resolution.overrides, env=resolution.env)
        except ConfigError as exc:
            raise ConfigEditError(f"the config does not load: {exc.message}") from None


def _provenance(policy: Policy, key: Key) -> Provenance:
    if len(key) == 4 and key[0] == "permissions":
        entry = next((e for e in policy.fs_entries if e.path == key[3]), None)
        return entry.provenance if entry is not None else Provenance("default")
    return policy.source(dotted(key))


def _values(policy: Policy) -> list[tuple[str, Any]]:
    return [(name, value) for name, value, _ in settings_table(policy)]


def _edited(text: str, table: Sequence[str], key: Key, value: Any) -> str:
    """`text` with `key` (under `table`) set to `value`, through tomlkit: a list that only
    grows keeps its items, their comments and its layout; a replaced value keeps its
    comment; missing tables are added."""
    doc = tomlkit.parse(text)
    container: Any = doc
    for part in (*table, *key[:-1]):
        if part not in container:
            container[part] = tomlkit.table()
        container = container[part]
    old = container.get(key[-1])
    if isinstance(old, Array) and isinstance(value, list) and value[:len(old)] == list(old):
        for item in value[len(old):]:
            old.append(item)
    else:
        container[key[-1]] = value
    return tomlkit.dumps(doc)
