"""The sensitive-path precheck: does a command line *mention* a sensitive or denied path?

This is a naive, deliberately over-eager matcher that runs before launch. The sandbox
itself masks sensitive files the plan found; the precheck exists so a human sees, before the
command runs, that it names one — and so paths the sandbox cannot mask are flagged too.

What is a mention. Every argument is examined as written, and also tokenized as shell words
(`shlex`, with redirection operators split off) because interpreters and wrappers pass strings
through: `sh -c 'cat <.env'`, `bash -lc`, `env sh -c`, `ssh host 'cat .env'`, `python -c
"open('.env')"`. Each word is further split on `= : , ;` and quotes (so `--file=.env`,
`FOO=.env`, `host:.env` are seen), a leading `@` is dropped (`curl -d @.env`), `~`, `$HOME` and
`$PWD` are expanded, and relative words are resolved against the command's cwd.

A word is a hit when
- one of its path components (as written, or after resolving symlinks) matches a
  `sensitive_paths` glob by name (`fnmatch`, case-sensitive), or a glob containing `/` matches it
  as the plan does (relative to the workspace, or absolute; gitignore's semantics). Name globs
  match *anywhere*, also outside the workspace
  (`~/.env`, `/srv/app/.env.prod`): the sandbox only masks sensitive files inside the workspace
  and writable roots, so outside them the precheck is the only guard, and a command naming such a
  file deserves a question. Such hits are marked `enforced=False`.
- or the plan denies it (`plan.explain(word).access` is `none` by a sensitive, filesystem-entry
  or other explicit rule — not merely because restricted read starts from an empty root). This
  catches symlinks to sensitive files and `[permissions]` `none` entries.

Not caught (the OS-level denial still applies): paths computed at run time (`cat $(ls -a | grep
env)`), directory recursion (`grep -r SECRET .`), globs (`cat .e*`).
"""

from __future__ import annotations

import fnmatch
import os
import re
import shlex
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from sandboxtui.core.globs import GlobError, compile_glob
from sandboxtui.core.paths import is_beneath, is_within
from sandboxtui.core.plan import MountPlan, RuleKind, resolve_host_path
from sandboxtui.core.policy import Access, PrecheckMode
from sandboxtui.core.terminal import inert

# Pieces of a word that can each be a path: `--file=.env`, `host:.env`, `a,.env`, `x;.env`.
_PIECE_SPLIT = re.compile(r"""[=:,;`'"()<>|&\s]+""")
_VAR = re.compile(r"\$(?:\{(HOME|PWD)\}|(HOME|PWD)\b)")
_MAX_SHELL_DEPTH = 4
_MAX_WORD = 4096  # longer pieces cannot be a path (PATH_MAX) and are only tokenized further


@dataclass(frozen=True)
class PrecheckHit:
    """One mention of a sensitive or denied path in the command line."""

    word: str  # the piece of the command line as it was written
    path: str  # absolute host path it names (symlinks resolved)
    rule: str  # what made it sensitive: the glob, or the plan rule's reason
    provenance: str  # where that rule came from (default, file:line, profile, -c)
    enforced: bool  # the sandbox denies this path too (False: only the precheck guards it)

    def to_json(self) -> dict[str, object]:
        return {"word": self.word, "path": self.path, "rule": self.rule,
                "provenance": self.provenance, "enforced": self.enforced}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> PrecheckHit:
        return cls(str(data["word"]), str(data["path"]), str(data["rule"]),
                   str(data["provenance"]), bool(data["enforced"]))


@dataclass(frozen=True)
class PrecheckResult:
    """The precheck's answer for one command line under one mode."""

    mode: PrecheckMode
    hits: tuple[PrecheckHit, ...]

    @property
    def skipped(self) -> bool:
        return self.mode is PrecheckMode.OFF

    @property
    def matched(self) -> bool:
        return bool(self.hits)

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(h.path for h in self.hits))

    def describe(self) -> str:
        """One line per distinct path: what matched and why."""
        seen: dict[str, PrecheckHit] = {}
        for h in self.hits:
            seen.setdefault(h.path, h)
        return "\n".join(
            inert(f"{h.path} (written {h.word!r}): {h.rule} [{h.provenance}]")
            + ("" if h.enforced else "; outside the sandbox's masked set")
            for h in seen.values())


def precheck(argv: Sequence[str], plan: MountPlan, cwd: str | None = None) -> PrecheckResult:
    """Check `argv` against the plan's policy; with mode `off`, nothing is checked."""
    mode = plan.policy.precheck_mode
    if mode is PrecheckMode.OFF:
        return PrecheckResult(mode, ())
    cwd = plan.cwd if cwd is None else resolve_host_path(cwd, "/")
    hits: dict[tuple[str, str], PrecheckHit] = {}
    for word in candidate_words(argv):
        hit = match_path(word, plan, cwd)
        if hit is not None:
            hits.setdefault((hit.word, hit.path), hit)
    return PrecheckResult(mode, tuple(hits.values()))


def candidate_words(argv: Sequence[str]) -> Iterator[str]:
    """Every piece of the command line that could name a path, each at most once."""
    seen: set[str] = set()
    for arg in argv:
        for piece in _pieces(arg, 0):
            if piece not in seen:
                seen.add(piece)
                yield piece


def _pieces(text: str, depth: int) -> Iterator[str]:
    if len(text) <= _MAX_WORD:
        yield text
    for piece in _PIECE_SPLIT.split(text):
        piece = piece.lstrip("@")
        if piece and piece != text and len(piece) <= _MAX_WORD:
            yield piece
    if depth >= _MAX_SHELL_DEPTH:
        return
    for word in _shell_words(text):
        if word != text:
            yield from _pieces(word, depth + 1)


def _shell_words(text: str) -> list[str]:
    """`text` as a POSIX shell would split it into words, redirections split off."""
    lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        return list(lexer)
    except ValueError:  # unbalanced quotes: fall back to whitespace and quote characters
        return [w for w in re.split(r"""[\s'"]+""", text) if w]


def _expand(word: str, cwd: str) -> str:
    word = _VAR.sub(lambda m: "~" if (m.group(1) or m.group(2)) == "HOME" else cwd, word)
    return os.path.expanduser(word)


def match_path(word: str, plan: MountPlan, cwd: str | None = None) -> PrecheckHit | None:
    """Is `word`, read as a path relative to `cwd`, sensitive or denied? Also used by patch."""
    cwd = plan.cwd if cwd is None else cwd
    if not word or "\0" in word:
        return None
    expanded = _expand(word, cwd)
    lexical = os.path.normpath(os.path.join(cwd, expanded))
    resolved = resolve_host_path(lexical, cwd)  # never raises: /proc/1/root, loops
    globs = plan.policy.sensitive_paths
    prov = str(plan.policy.source("sensitive_paths"))
    rule = plan.rule_for(resolved)
    # A hidden /proc (--no-proc) or host kernel file, and a protected name kept from being
    # created, hold nothing worth an approval: only real denials (and sensitive names) are.
    denied = rule.access is Access.NONE \
        and rule.kind not in (RuleKind.BASE, RuleKind.PROC, RuleKind.KERNEL) \
        and not (rule.missing and rule.kind is RuleKind.PROTECTED)
    for spelled in dict.fromkeys((os.path.normpath(expanded), lexical, resolved)):
        glob = _glob_hit(spelled, cwd, plan.cwd, globs)
        if glob is not None:
            return PrecheckHit(word, resolved, f"sensitive_paths glob {glob!r}", prov, denied)
    if denied:
        return PrecheckHit(word, resolved, rule.reason, str(rule.provenance), True)
    return None


def _glob_hit(path: str, cwd: str, workspace: str, globs: Sequence[str]) -> str | None:
    """The first glob that matches a component of `path` (or, with `/`, its workspace path).

    For an absolute path inside the cwd, only the components below the cwd are examined, so a
    workspace that itself lives under, say, `/srv/.env.d/` does not flag every argument.
    """
    names = path.split("/")
    if os.path.isabs(path):
        base = cwd if is_within(path, cwd) else "/"
        names = os.path.relpath(path, base).split("/") if path != base else []
    for glob in globs:
        if "/" in glob:  # gitignore's semantics, as the plan applies them (core/globs.py)
            try:
                compiled = compile_glob(glob, os.environ.get("HOME"))
            except GlobError:
                continue  # refused by the config already
            base = compiled.base or workspace
            if is_beneath(path, base) and compiled.matches(
                    os.path.relpath(path, base), os.path.isdir(path)):
                return glob
        elif any(fnmatch.fnmatchcase(n, glob) for n in names if n not in ("", ".", "..")):
            return glob
    return None
