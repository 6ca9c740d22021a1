"""Path meanings the core relies on, each defined once.

Containment here is lexical: it compares spellings and follows no symlink, so callers that
need the containment of what a path reaches resolve it first (`plan.resolve_host_path`) and
test the result. Both arguments are absolute and normalised (no `..`, no trailing `/`).
"""

from __future__ import annotations

import atexit
import contextlib
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


def shared_runtime_dir(env: Mapping[str, str] | None = None) -> str:
    """The per-user runtime directory every process of the user finds by name, the one
    definition: `$XDG_RUNTIME_DIR/sandboxtui`, else `/tmp/sandboxtui-UID`. The approvals socket
    lives there (a headless run looks for the TUI's there). Never `$TMPDIR`, which a sandbox
    may write."""
    xdg = (os.environ if env is None else env).get("XDG_RUNTIME_DIR")
    if xdg and os.path.isabs(xdg) and os.path.isdir(xdg):
        return os.path.join(xdg, "sandboxtui")
    return f"/tmp/sandboxtui-{os.getuid()}"


_OWN_RUNTIME: dict[str, str] = {}  # a shared runtime directory another user holds -> ours


def runtime_dir(env: Mapping[str, str] | None = None) -> str:
    """Where this process keeps its launches' host files (launch files, proxy bridges, git's
    scratch copies), hidden in every sandbox (an empty tmpfs with no permissions): the shared
    runtime directory, claimed (made 0700) at the first call. When another user holds that
    name (anyone may create `/tmp/sandboxtui-UID` first), a fresh private directory of this
    process instead (mkdtemp, 0700, removed at exit): a squatter cannot stop launches.
    Approvals never move there: a headless run would not find them."""
    shared = shared_runtime_dir(env)
    with contextlib.suppress(OSError):
        os.mkdir(shared, 0o700)
    try:
        ours = os.lstat(shared).st_uid == os.getuid()
    except OSError:
        ours = True  # missing and cannot be made: the launch says why
    if ours:
        return shared  # (the launch checks it is a private directory)
    if shared not in _OWN_RUNTIME:
        import tempfile  # only when squatted: not on every launch's path

        if not _OWN_RUNTIME:
            atexit.register(remove_own_runtime_dirs, os.getpid())
        _OWN_RUNTIME[shared] = tempfile.mkdtemp(prefix=f"sandboxtui-{os.getuid()}-", dir="/tmp")
    return _OWN_RUNTIME[shared]


def remove_own_runtime_dirs(pid: int | None = None) -> None:
    """Remove the runtime directories this process made for itself (`runtime_dir`), at exit:
    also called where the CLI exits without the interpreter's teardown. Not in a forked child
    (`pid`: the process that made them)."""
    if not _OWN_RUNTIME or (pid is not None and pid != os.getpid()):
        return
    import shutil

    while _OWN_RUNTIME:
        shutil.rmtree(_OWN_RUNTIME.popitem()[1], ignore_errors=True)
