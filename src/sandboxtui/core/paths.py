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


def state_dir(env: Mapping[str, str] | None = None) -> str:
    """sandboxtui's state directory (the audit log, which warnings were shown): under
    `$XDG_STATE_HOME`, default `~/.local/state`; a relative XDG value is ignored, as the XDG
    spec says. Read-only inside every sandbox (a plan rule)."""
    state = (os.environ if env is None else env).get("XDG_STATE_HOME", "")
    if not os.path.isabs(state):
        state = os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(state, "sandboxtui")


def runtime_dir(env: Mapping[str, str] | None = None) -> str:
    """The per-user runtime directory, the one definition: launch files, proxy bridges and the
    approvals socket live there, and every sandbox gets it hidden (an empty tmpfs with no
    permissions). Never `$TMPDIR`, which a sandbox may write."""
    xdg = (os.environ if env is None else env).get("XDG_RUNTIME_DIR")
    if xdg and os.path.isabs(xdg) and os.path.isdir(xdg):
        return os.path.join(xdg, "sandboxtui")
    return f"/tmp/sandboxtui-{os.getuid()}"
