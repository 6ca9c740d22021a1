"""Deny globs (`sensitive_paths`, glob filesystem entries) with gitignore's semantics.

- A glob without a slash (`.env.*`) matches a name at any depth.
- A relative glob with a slash (`config/*.key`) is anchored at each scanned root (the workspace
  and the configured writable roots). `**/x` matches `x` at any depth, depth zero included;
  `a/**/b` matches `a/b`, `a/x/b`, ...; `a/**` everything inside `a`.
- `*`, `?` and `[...]` never match `/`. A trailing `/` matches directories only.
- An absolute glob (`/srv/keys/*.pem`) or a `~` glob (`~/.ssh/id_*`, expanded against HOME)
  is matched against absolute paths: the walk starts at its fixed prefix (`/srv/keys`), which
  must be a directory other than `/`.

Anything else (`..` components, an empty glob, `~user` that does not expand, an absolute glob
whose fixed part is `/`) is a config error: no glob is ever accepted and inert.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from sandboxtui.core.outcome import ExitCode, SandboxtuiError

_MAGIC = re.compile(r"[*?\[]")


class GlobError(SandboxtuiError, ValueError):
    """A glob that cannot be given a meaning: a config error (exit 2)."""

    exit_code = ExitCode.USAGE


@dataclass(frozen=True)
class CompiledGlob:
    glob: str  # as configured
    base: str | None  # absolute fixed prefix to walk, or None: relative to every scanned root
    regex: re.Pattern[str]  # matched against the path relative to the base (or a scanned root)
    dir_only: bool
    name: str | None = None  # a name-only glob (`x`, `**/x`): this regex of the name alone

    def matches(self, rel: str, is_dir: bool) -> bool:
        return (is_dir or not self.dir_only) and self.regex.fullmatch(rel) is not None


def _segment(seg: str) -> str:
    """One path component's glob as a regex that never crosses `/`."""
    out: list[str] = []
    i = 0
    while i < len(seg):
        c = seg[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            # a `]` first in the set (after any `!`) is a member, as in fnmatch and gitignore
            first = i + 2 if seg[i + 1:i + 2] in ("!", "^") else i + 1
            j = seg.find("]", first + 1)
            if j < 0:
                out.append(re.escape(c))
            else:
                body = seg[i + 1:j]
                if body[:1] in ("!", "^"):
                    body = "^" + body[1:]
                out.append("(?!/)[" + body.replace("\\", "\\\\") + "]")
                i = j
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


def _regex(parts: list[str]) -> str:
    out = ""
    for n, part in enumerate(parts):
        last = n == len(parts) - 1
        if part == "**":
            out += ".*" if last else "(?:[^/]+/)*"
        else:
            out += _segment(part) + ("" if last else "/")
    return out


def compile_glob(glob: str, home: str | None = None) -> CompiledGlob:
    """Give `glob` its one meaning, or raise GlobError saying why it has none."""
    if not glob or "\0" in glob:
        raise GlobError(f"invalid glob {glob!r}")
    text = glob
    if text.startswith("~"):
        head, _, rest = text.partition("/")
        if head == "~":
            if not home or not os.path.isabs(home):
                raise GlobError(f"glob {glob!r} starts with ~ but HOME is not an absolute path")
            text = os.path.join(home, rest)
        else:
            expanded = os.path.expanduser(head)
            if expanded == head:
                raise GlobError(f"glob {glob!r}: unknown user in {head!r}")
            text = os.path.join(expanded, rest)
    dir_only = text.endswith("/") and text.strip("/") != ""
    parts = [p for p in text.rstrip("/").split("/") if p not in ("", ".")]
    if ".." in parts:
        raise GlobError(f"glob {glob!r} contains '..': write the path it means")
    if not parts:
        raise GlobError(f"glob {glob!r} matches nothing")
    if any("**" in p and p != "**" for p in parts):
        raise GlobError(f"glob {glob!r}: '**' must be a whole path component")
    if not text.startswith("/"):
        if len(parts) == 1:
            parts = ["**", *parts]  # no slash: a name at any depth
        name = _segment(parts[1]) if len(parts) == 2 and parts[0] == "**" else None
        return CompiledGlob(glob, None, _compile(glob, parts), dir_only, name)
    fixed: list[str] = []
    for part in parts:
        if _MAGIC.search(part):
            break
        fixed.append(part)
    if not fixed:
        raise GlobError(f"glob {glob!r} would search the whole filesystem: give it a fixed "
                        "directory prefix (e.g. /srv/keys/*.pem)")
    if len(fixed) == len(parts):
        fixed.pop()  # a plain path: walk its parent, match its name
    rest = parts[len(fixed):]
    return CompiledGlob(glob, "/" + "/".join(fixed), _compile(glob, rest), dir_only)


def _compile(glob: str, parts: list[str]) -> re.Pattern[str]:
    try:
        return re.compile(_regex(parts))
    except re.error as exc:  # a set no translation makes valid: an error, never a traceback
        raise GlobError(f"glob {glob!r} is not valid: {exc}") from None


def check_glob(glob: str) -> None:
    """Config-time validation (HOME from this process's environment)."""
    compile_glob(glob, os.environ.get("HOME") or os.path.expanduser("~"))
