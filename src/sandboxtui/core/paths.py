"""Path meanings the core relies on, each defined once.

Containment here is lexical: it compares spellings and follows no symlink, so callers that
need the containment of what a path reaches resolve it first (`plan.resolve_host_path`) and
test the result. Both arguments are absolute and normalised (no `..`, no trailing `/`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping


def is_within(path: str, root: str) -> bool:
    """Is `path` `root` itself or beneath it (lexically)? `/` holds every path."""
    return root == "/" or path == root or path.startswith(root + "/")


def is_beneath(path: str, root: str) -> bool:
    """Is `path` strictly beneath `root` (lexically), never `root` itself?"""
    return path != root and is_within(path, root)


def _xdg_dir(var: str, default: tuple[str, ...], env: Mapping[str, str] | None) -> str:
    """sandboxtui's directory under an XDG base directory. A relative value (of the variable,
    or of HOME) is ignored, as the XDG spec says: it would name a cwd-relative, possibly
    sandbox-written, place."""
    env = os.environ if env is None else env
    base = env.get(var, "")
    if not os.path.isabs(base):
        home = env.get("HOME", "")
        base = os.path.join(home if os.path.isabs(home) else os.path.expanduser("~"), *default)
    return os.path.join(base, "sandboxtui")


def config_dir(env: Mapping[str, str] | None = None) -> str:
    """sandboxtui's configuration directory: `$XDG_CONFIG_HOME/sandboxtui`, default
    `~/.config/sandboxtui`. Read-only inside every sandbox (a plan rule)."""
    return _xdg_dir("XDG_CONFIG_HOME", (".config",), env)


def state_dir(env: Mapping[str, str] | None = None) -> str:
    """sandboxtui's state directory (the audit log, which warnings were shown):
    `$XDG_STATE_HOME/sandboxtui`, default `~/.local/state/sandboxtui`. Read-only inside every
    sandbox (a plan rule)."""
    return _xdg_dir("XDG_STATE_HOME", (".local", "state"), env)


def runtime_dir(env: Mapping[str, str] | None = None) -> str:
    """The per-user runtime directory, the one definition: launch files, proxy bridges and the
    approvals socket live there, and every sandbox gets it hidden (an empty tmpfs with no
    permissions). Never `$TMPDIR`, which a sandbox may write."""
    xdg = (os.environ if env is None else env).get("XDG_RUNTIME_DIR")
    if xdg and os.path.isabs(xdg) and os.path.isdir(xdg):
        return os.path.join(xdg, "sandboxtui")
    return f"/tmp/sandboxtui-{os.getuid()}"
