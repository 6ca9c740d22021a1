"""Reading an agent's config files with provenance: each leaf value keeps its `file:line`.

Shared by the Codex reader (TOML layers) and the Claude Code reader (JSON layers): a layer is
a flat map from a key path to (value, provenance), merged the way both agents merge (a later
layer replaces a leaf, and a table or object it replaces goes with everything beneath it).
"""

from __future__ import annotations

import json
import os
import re
import stat
import tomllib
from collections.abc import Mapping
from typing import Any

from sandboxtui.core.config import ConfigError, dotted, key_lines
from sandboxtui.core.policy import Provenance

Key = tuple[str, ...]
Layer = dict[Key, tuple[Any, Provenance]]


# The largest agent config read: a project's file is anyone's, and a huge one must not stall
# or exhaust the planner (real ones are a few KB).
MAX_CONFIG_BYTES = 1 << 20


def read_text(path: str) -> str:
    try:  # non-blocking: a FIFO planted in a project must not hang the planner
        with open(os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC), "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                raise ConfigError("config is not a regular file: not read", origin=path)
            data = fh.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read config: {exc.strerror}", origin=path) from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"config is larger than {MAX_CONFIG_BYTES >> 20} MiB: not read",
                          origin=path)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError("config is not valid UTF-8", origin=path) from None


def toml_layer(path: str, leaf: Any = None) -> Layer:
    """A TOML file as a flat layer; `leaf(key, value)` says which tables are values."""
    source = read_text(path)
    try:
        tree = tomllib.loads(source)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"\(at line (\d+)", str(exc))
        raise ConfigError(f"invalid TOML: {exc}",
                          origin=f"{path}:{m.group(1)}" if m else path) from None
    lines = key_lines(source)

    def origin(key: Key) -> Provenance:
        for n in range(len(key), 0, -1):
            if key[:n] in lines:
                return Provenance("file", f"{path}:{lines[key[:n]]}")
        return Provenance("file", path)

    return {k: (v, origin(k)) for k, v in flatten(tree, leaf).items()}


def json_layer(path: str) -> Layer:
    """A JSON file as a flat layer; a key's line is the first line that names it in order."""
    source = read_text(path)
    try:
        tree = json.loads(source)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"invalid JSON: {exc.msg}", origin=f"{path}:{exc.lineno}") from None
    if not isinstance(tree, dict):
        raise ConfigError("expected a JSON object", origin=f"{path}:1")
    flat = flatten(tree)
    lines = source.splitlines()
    layer: Layer = {}
    for key, value in flat.items():
        line, at = 0, 0
        for part in key:  # each part's first mention after its parent's line
            needle = json.dumps(part) + ":"
            for n in range(at, len(lines)):
                if needle in lines[n].replace('" :', '":'):
                    line, at = n + 1, n + 1
                    break
        layer[key] = (value, Provenance("file", f"{path}:{line}" if line else path))
    return layer


def flatten(tree: Mapping[str, Any], leaf: Any = None, prefix: Key = ()) -> dict[Key, Any]:
    out: dict[Key, Any] = {}
    for k, v in tree.items():
        key = (*prefix, k)
        if isinstance(v, dict) and v and not (leaf and leaf(key, v)):
            out.update(flatten(v, leaf, key))
        else:
            out[key] = v
    return out


def merge(layers: list[Layer]) -> Layer:
    """Later layers win; a leaf replaces whatever lay beneath or above its key."""
    merged: Layer = {}
    for layer in layers:
        for key, entry in layer.items():
            for old in [k for k in merged if k[:len(key)] == key or key[:len(k)] == k]:
                del merged[old]
            merged[key] = entry
    return merged


def under(layer: Layer, prefix: Key) -> Layer:
    """The keys beneath `prefix`, relative to it."""
    return {k[len(prefix):]: v for k, v in layer.items() if k[:len(prefix)] == prefix
            and len(k) > len(prefix)}


def fail(message: str, key: Key, layer: Layer, prefix: Key = ()) -> ConfigError:
    """A config error at `key`'s file:line (or the nearest key above it)."""
    full = (*prefix, *key)
    for n in range(len(full), 0, -1):
        found = [p for k, (_, p) in layer.items() if k[:n] == full[:n]]
        if found:
            return ConfigError(message, origin=str(found[0]), key=dotted(full))
    return ConfigError(message, key=dotted(full))
