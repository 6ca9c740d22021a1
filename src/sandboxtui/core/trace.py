"""Denials explained: what a traced run was refused, why, and the narrowest change that would
allow it.

`sandboxtui trace` runs a command exactly as `run` does, with `strace` in front of the sandbox
(outside it: the tracer follows bwrap and every process of the sandbox, and writes to a pipe only
the launcher holds). After the run, `analyse()` reads the failed calls and keeps the real
denials:

- a file operation that failed with EACCES, EPERM or EROFS on a path the plan restricts for that
  operation (`explain()` gives the access and the deciding rule with its provenance); the same
  failure where the plan allows the operation is the host's own permissions, reported apart;
- a network call refused by the seccomp filter, by the Unix-socket gate, or an address outside
  the sandbox's own network namespace (ENETUNREACH);
- another syscall the filter refuses (the keyring, ptrace, io_uring).

ENOENT is never a denial (programs probe for files), and neither are `access()`/`stat()` probes:
they are not traced. Relative paths are resolved against each process's cwd, followed through
`chdir`, `fchdir` and forks.

Each denial carries a suggestion in the user's config vocabulary (`-c` flag and TOML line): a
`writable_roots` entry for the nearest directory, a filesystem entry's new access, or
`network_access`, never `danger-full-access`. Every suggestion is checked by re-planning with it:
the operation must become allowed and every sensitive or protected rule must stay as it was;
otherwise (and for sensitive files, `.git`, sandboxtui's own files, the host kernel's, and the
places in the home directory that control the host: `HOST_CONTROL`, ~/.ssh, ~/.local/bin, ...)
it is None, and `widens` says why. What the tracer cannot see: static binaries that make raw
syscalls are traced too (ptrace sees every syscall), but io_uring (refused anyway) and operations
a process performs through a descriptor it already held are not tied to a path; a path can
change between the call and the report (races).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import shlex
import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from sandboxtui.core.outcome import ExitCode, LaunchError, SandboxtuiError
from sandboxtui.core.paths import is_beneath, is_within
from sandboxtui.core.plan import MountPlan, RuleKind
from sandboxtui.core.policy import Access

if TYPE_CHECKING:
    from sandboxtui.core.launch import LaunchSpec

# The calls that act on a path (or an address), and what each one does to it.
_FILE_OPS = {
    "open": "open", "openat": "open", "creat": "write", "mkdir": "create",
    "mkdirat": "create", "mknod": "create", "mknodat": "create", "unlink": "delete",
    "unlinkat": "delete", "rmdir": "delete", "rename": "rename", "renameat": "rename",
    "renameat2": "rename", "link": "create", "linkat": "create", "symlink": "create",
    "symlinkat": "create", "truncate": "write", "chmod": "metadata", "fchmodat": "metadata",
    "chown": "metadata", "lchown": "metadata", "fchownat": "metadata", "utimensat": "metadata",
    "execve": "execute", "execveat": "execute",
}
_NET_OPS = ("socket", "socketpair", "connect", "bind", "listen", "sendto", "sendmsg")
_OTHER = ("keyctl", "add_key", "request_key", "ptrace", "io_uring_setup", "process_vm_readv",
          "process_vm_writev")
_CWD = ("chdir", "fchdir", "clone", "clone3", "fork", "vfork")
TRACED = (*_FILE_OPS, *_NET_OPS, *_OTHER, *_CWD)
_DENIED_ERRNOS = {"EACCES", "EPERM", "EROFS"}
MAX_ANALYSED = 200  # distinct refusals explained (each may re-plan); the rest are counted
MAX_TRACE_LINES = 2_000_000  # tracer lines kept: only failures and cwd changes are
_LAST_PATH = {"rename", "renameat", "renameat2", "link", "linkat", "symlink", "symlinkat"}
_WRITES = ("write", "create", "delete", "rename", "metadata")

_KEEP = re.compile(rb"= -1 E|unfinished|resumed|^\d+ +(chdir|fchdir|clone|clone3|fork|vfork)\(")
_LINE = re.compile(r"^(\d+) +(?:<\.\.\. (\w+) resumed>|(\w+)\()(.*)$")
# The result at the very end of the line (a quoted argument may hold ") = -1 EROFS (..."):
# `= 3</path>` with -y, or `= -1 EACCES (Permission denied)`.
_RESULT = re.compile(r"\) += (-?\d+|\?)(?:<(?:[^>\\]|\\.)*>)?(?: (E[A-Z0-9]+) \([^()]*\))?$")
# The arguments as tokens, in order: a descriptor with its path (`-y`), AT_FDCWD, a string.
_TOKEN = re.compile(r'AT_FDCWD|-?\d+<((?:[^>\\]|\\.)*)>|"((?:[^"\\]|\\.)*)"')
_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"')


class TraceError(SandboxtuiError):
    """The tracer is missing or unusable: `trace` refuses (exit 4), never runs untraced."""

    exit_code = ExitCode.UNENFORCEABLE


def tracer() -> str:
    """The strace binary, or TraceError naming the remedy."""
    found = shutil.which("strace", path="/usr/bin:/bin:/usr/local/bin")
    if found is None:
        raise TraceError("trace needs strace, which is not installed: nothing ran (remedy: "
                         "apt-get install strace)", remedy="apt-get install strace")
    return found


@dataclass(frozen=True)
class Suggestion:
    flag: str | None  # the -c option (shell-quoted) that allows the operation
    toml: str | None  # the same change as a config line
    widens: str  # what else the change opens; or why nothing is suggested


@dataclass(frozen=True)
class Denial:
    op: str
    path: str  # a path, a socket address, or "-"
    errno: str
    syscall: str
    access: str
    rule: str
    provenance: str
    count: int
    suggestion: Suggestion | None
    host: bool = False  # the host's own permissions refused it, not the plan

    def line(self) -> str:
        where = f"{self.access}: {self.rule} [{self.provenance}]"
        change = ("no change suggested" if self.suggestion is None else
                  self.suggestion.widens if self.suggestion.flag is None else
                  f"allow with {self.suggestion.flag} (widens: {self.suggestion.widens})")
        if self.host:
            change = "host permissions: the plan allows it; the host's file modes refuse it"
        return (f"{self.op:<8} {self.path}  {self.errno} (x{self.count}, {self.syscall})  "
                f"{where}  -> {change}")


@dataclass(frozen=True)
class TraceReport:
    exit: int
    denials: tuple[Denial, ...]  # what the plan refused
    host: tuple[Denial, ...] = ()  # what the host's own file modes refused (the plan allows it)
    not_analysed: int = 0  # distinct refusals beyond MAX_ANALYSED (the least frequent)

    def to_json(self) -> dict[str, Any]:
        def items(denials: tuple[Denial, ...]) -> list[dict[str, Any]]:
            out = []
            for d in denials:
                item = asdict(d)
                del item["host"]
                item["suggestion"] = asdict(d.suggestion) if d.suggestion else None
                out.append(item)
            return out

        return {"exit": self.exit, "denials": items(self.denials),
                "host_permissions": items(self.host), "not_analysed": self.not_analysed}


class TraceLog:
    """The tracer's output pipe: only the launcher holds it (the tracer opens it through
    /proc/LAUNCHER/fd, which no sandbox can reach), read on a thread while the run lasts."""

    def __init__(self) -> None:
        self._tracer = tracer()  # first: without one, nothing is opened and nothing runs
        self._r, self._w = os.pipe2(os.O_CLOEXEC)
        self._lines: list[bytes] = []
        self._grew = threading.Event()  # lines were kept, or the output ended
        self._ended = False  # the output ended: set before the last `_grew`
        self._thread = threading.Thread(target=self._read, name="sandboxtui-trace",
                                        daemon=True)
        self._thread.start()

    def argv(self) -> list[str]:
        return [self._tracer, "-f", "-qq", "-s", "4096", "-y", "-o",
                f"/proc/{os.getpid()}/fd/{self._w}", "-e", f"trace={','.join(TRACED)}", "--"]

    def _read(self) -> None:
        """Keep what analysis reads (failed calls, cwd changes, the halves of interrupted
        calls), at most MAX_TRACE_LINES: the rest of a busy command's trace is dropped."""
        rest = b""
        while chunk := os.read(self._r, 1 << 16):
            *lines, rest = (rest + chunk).split(b"\n")
            kept = len(self._lines)
            self._lines.extend(line for line in lines if _KEEP.search(line)
                               and len(self._lines) < MAX_TRACE_LINES)
            if len(self._lines) > kept:
                self._grew.set()
        os.close(self._r)
        self._ended = True
        self._grew.set()

    def growing(self, pace: float = 0.3) -> Iterator[str]:
        """While the run lasts (until `close()`): what analysis reads so far, each time the
        tracer added to it, at most once per `pace` seconds (the TUI's live Denials view).
        The end is read after the wake-up is taken: a reader that ends in between (its thread
        still alive a moment longer) cannot leave this waiting for a wake-up already taken."""
        while True:
            self._grew.wait()
            self._grew.clear()
            ended = self._ended
            yield b"\n".join(self._lines[:len(self._lines)]).decode(errors="replace")
            if ended:
                return
            time.sleep(pace)

    def close(self) -> str:
        """What the tracer wrote that analysis reads (call once the traced process exited)."""
        with contextlib.suppress(OSError):
            os.close(self._w)
        self._thread.join(10)
        return b"\n".join(self._lines).decode(errors="replace")


@dataclass(frozen=True)
class _Call:
    pid: int
    syscall: str
    args: str
    result: str
    errno: str | None


def _calls(text: str) -> list[_Call]:
    """strace -f lines, with `<unfinished ...>` halves joined to their `resumed` ends."""
    pending: dict[int, tuple[str, str]] = {}
    calls = []
    for line in text.splitlines():
        m = _LINE.match(line)
        if m is None:
            continue
        pid, resumed, name, rest = int(m[1]), m[2], m[3], m[4]
        if rest.endswith("<unfinished ...>"):
            pending[pid] = (name or resumed, rest[: -len("<unfinished ...>")])
            continue
        if resumed:
            name, head = pending.pop(pid, (resumed, ""))
            rest = head + rest
        result = _RESULT.search(rest)
        if result is None:
            continue
        calls.append(_Call(pid, name, rest[: result.start()], result[1], result[2]))
    return calls


def _unescape(s: str) -> str:
    return bytes(s, "utf-8").decode("unicode_escape").encode("latin-1").decode(
        "utf-8", errors="replace")


def _strings(args: str) -> list[str]:
    return [_unescape(m) for m in _STRING.findall(args)]


def _fd_path(args: str) -> str | None:
    """`-y` prints a descriptor as 3</path>: the path of the one the arguments start with."""
    m = _TOKEN.match(args.lstrip())
    return _unescape(m[1]) if m and m[1] is not None else None


def _paths(args: str) -> list[tuple[str, str | None]]:
    """Each string argument with the directory it is relative to: the descriptor (or
    AT_FDCWD: None) just before it, for the *at calls."""
    out: list[tuple[str, str | None]] = []
    base: str | None = None
    for m in _TOKEN.finditer(args):
        if m[2] is not None:
            out.append((_unescape(m[2]), base))
        else:
            base = _unescape(m[1]) if m[1] is not None else None
    return out


def _resolve(path: str, base: str | None, cwd: str) -> str:
    if path.startswith("/"):
        return os.path.normpath(path)
    return os.path.normpath(os.path.join(base or cwd, path))


@dataclass
class _Seen:
    op: str
    path: str
    errno: str
    syscall: str


def _events(calls: Sequence[_Call], start_cwd: str) -> list[_Seen]:
    """The failed calls that may be denials, with absolute paths."""
    cwd: dict[int, str] = {}
    seen: list[_Seen] = []
    for c in calls:
        here = cwd.get(c.pid, start_cwd)
        if c.syscall in ("clone", "clone3", "fork", "vfork") and c.result.isdigit():
            cwd[int(c.result)] = here
            continue
        if c.syscall == "chdir" and c.result == "0":
            strings = _strings(c.args)
            if strings:
                cwd[c.pid] = _resolve(strings[0], None, here)
            continue
        if c.syscall == "fchdir" and c.result == "0":
            target = _fd_path(c.args)
            if target:
                cwd[c.pid] = target
            continue
        if c.errno is None or c.errno == "ENOENT":
            continue
        if c.syscall in _FILE_OPS and c.errno in _DENIED_ERRNOS:
            paths = _paths(c.args)
            if not paths:
                continue
            # the path acted on: a new link's name, a rename's destination, else the first
            name, base = paths[-1] if c.syscall in _LAST_PATH else paths[0]
            path = _resolve(name, base, here)
            if path.startswith(("/newroot", "/oldroot")):
                continue  # bwrap setting the sandbox up
            op = _FILE_OPS[c.syscall]
            if op == "open":
                op = "write" if re.search(r"O_(WRONLY|RDWR|CREAT|TRUNC)", c.args) else "read"
            seen.append(_Seen(op, path, c.errno, c.syscall))
        elif c.syscall in _NET_OPS and c.errno in ("EPERM", "EACCES", "ENETUNREACH"):
            address = _strings(c.args)
            m = re.search(r"sin6?_addr=[^)]*?\"?([0-9a-f.:]+)\"?\)", c.args)
            seen.append(_Seen("connect" if c.syscall == "connect" else c.syscall,
                              address[0] if address else (m[1] if m else "-"), c.errno,
                              c.syscall))
        elif c.syscall in _OTHER and c.errno == "EPERM":
            seen.append(_Seen(c.syscall, "-", c.errno, c.syscall))
    return seen


def allowed_now(denial: Denial, plan: MountPlan) -> bool:
    """Would `plan` (made after a config change) allow the refused operation? Never for a
    refusal of the host's own permissions or of the filter in every sandbox."""
    if denial.syscall in _NET_OPS:
        return plan.policy.network.value == "on"
    if denial.host or not denial.path.startswith("/"):
        return False
    return not _restricts(plan.explain(denial.path).access, denial.op)


def require_traceable(spec: LaunchSpec) -> None:
    """`trace` runs only where the tracer's output is out of the command's reach."""
    if not spec.enforcer.traceable:
        raise LaunchError(ExitCode.UNENFORCEABLE, f"trace cannot run on the "
                          f"{spec.pipeline.value} pipeline: the command shares the "
                          "launcher's PID namespace and could write into the tracer's "
                          "output; nothing ran (remedy: use the bubblewrap pipeline)")


def _restricts(access: Access, op: str) -> bool:
    """Does the plan refuse `op` where it gives `access`?"""
    if access is Access.NONE:
        return True
    return access is Access.RO and op in _WRITES


_NOTHING_TO_SUGGEST = {
    RuleKind.SENSITIVE: "a sensitive file: its content never enters the sandbox",
    RuleKind.PROTECTED: "a protected path (.git, .codex, .agents): a command writing there "
                        "could run code on the host",
    RuleKind.RUNTIME: "sandboxtui's own launch files",
    RuleKind.KERNEL: "a host-wide kernel setting",
    RuleKind.DEVICE: "the sandbox's private /dev",
    RuleKind.PROC: "the sandbox's own /proc",
}


def analyse(text: str, plan: MountPlan, exit_code: int, replan: Callable[[str], MountPlan],
            network_on: bool) -> TraceReport:
    """The denials in the tracer's output, grouped and counted, with verified suggestions.
    `replan(override)` builds the plan again with one more `-c` override."""
    counted = Counter((e.op, e.path, e.errno, e.syscall)
                      for e in _events(_calls(text), plan.cwd))
    replan = functools.cache(replan)  # many refusals share one suggestion
    denials = []
    for (op, path, errno, syscall), count in counted.most_common(MAX_ANALYSED):
        if path.startswith("/") and syscall not in _NET_OPS:
            ex = plan.explain(path)
            rule = ex.rule
            host = not _restricts(ex.access, op)
            suggestion = None if host else _file_suggestion(plan, op, ex.resolved, rule.kind,
                                                           replan)
            denials.append(Denial(op, path, errno, syscall, ex.access.value, rule.reason,
                                  str(rule.provenance), count, suggestion, host))
        elif syscall in _NET_OPS:
            denials.append(Denial(op, path, errno, syscall, plan.policy.network.value,
                                  "the network is off: only the sandbox's own loopback and its "
                                  "own Unix listeners are reachable",
                                  str(plan.policy.source(
                                      "sandbox_workspace_write.network_access")),
                                  count, None if network_on else _network_suggestion(plan,
                                                                                    replan)))
        else:
            denials.append(Denial(op, path, errno, syscall, "-", "refused by the seccomp "
                                  "filter in every sandbox", "built-in", count,
                                  Suggestion(None, None, "always refused: no setting allows it")))
    denials.sort(key=lambda d: (-d.count, d.path))
    return TraceReport(exit_code, tuple(d for d in denials if not d.host),
                       tuple(d for d in denials if d.host),
                       max(len(counted) - MAX_ANALYSED, 0))


def _network_suggestion(plan: MountPlan, replan: Callable[[str], MountPlan]
                        ) -> Suggestion | None:
    override = "sandbox_workspace_write.network_access=true"
    wider = replan(override)
    if wider.policy.network.value != "on" or not _keeps_protection(plan, wider):
        return Suggestion(None, None, "nothing is suggested: the network cannot be switched on "
                          "in this policy (read-only mode has no network setting)")
    return Suggestion(f"-c {override}", "sandbox_workspace_write.network_access = true",
                      "the whole network: the internet, the host's loopback services and its "
                      "Unix sockets")


def _file_suggestion(plan: MountPlan, op: str, path: str, kind: RuleKind,
                     replan: Callable[[str], MountPlan]) -> Suggestion:
    why_not = _NOTHING_TO_SUGGEST.get(kind)
    if why_not is not None:
        return Suggestion(None, None, f"nothing is suggested: {why_not}")
    if kind is RuleKind.ENTRY:
        candidates = [_entry_override(plan, path, "write" if op in _WRITES else "read")]
    elif op in _WRITES:
        directory = path if op == "create" and os.path.isdir(path) else os.path.dirname(path)
        too_wide = _too_wide(plan, directory)
        if too_wide is not None:
            return Suggestion(None, None, f"nothing is suggested: making {directory} writable "
                              f"would open {too_wide}; choose a narrower directory for the "
                              "command's output")
        candidates = [_writable_root_override(plan, directory)]
    else:
        directory = os.path.dirname(path)
        opened = _host_control(directory, reading=True)
        if opened is not None:
            return Suggestion(None, None, f"nothing is suggested: making {directory} readable "
                              f"would open {opened}")
        candidates = [_readable_root_override(plan, directory)]
    for override, toml, widens in (c for c in candidates if c is not None):
        try:
            wider = replan(override)
        except SandboxtuiError:
            continue
        if _restricts(wider.explain(path).access, op) or not _keeps_protection(plan, wider):
            continue
        return Suggestion(f"-c {shlex.quote(override)}", toml, widens)
    return Suggestion(None, None, "nothing is suggested: no narrow change allows it without "
                      "opening a protected path")


_SYSTEM = ("/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/boot",
           "/sys", "/proc", "/dev", "/var/lib", "/var/cache", "/var/log", "/var/spool", "/opt",
           "/snap", "/nix")


def _too_wide(plan: MountPlan, directory: str) -> str | None:
    """What a writable root at `directory` would open beyond the refused operation, when that
    is more than a suggestion should ever offer: the root or a top-level directory, system
    files, the home directory itself (its shell profile, ssh keys) or a HOST_CONTROL place
    in it, a parent of the workspace. None: narrow enough."""
    home = os.path.realpath(os.path.expanduser("~"))
    if home == directory or home.startswith(directory.rstrip("/") + "/"):
        return "your home directory (shell start-up files, ssh keys)"
    opened = _host_control(directory, reading=False)
    if opened is not None:
        return opened
    if directory.count("/") <= 1:
        return "a whole top-level directory"
    if any(directory == s or directory.startswith(s + "/") for s in _SYSTEM):
        return "system files"
    if plan.cwd.startswith(directory.rstrip("/") + "/"):
        return "every directory around the workspace"
    return None


# Places in the home directory that no suggestion opens: writing there runs code on the host or
# reaches its credentials, and reading the `secret` ones gives the credentials away.
HOST_CONTROL: tuple[tuple[str, str, bool], ...] = (  # (path under home, what it holds, secret)
    (".ssh", "ssh keys and the hosts ssh trusts", True),
    (".gnupg", "gpg keys", True),
    (".aws", "cloud credentials", True),
    (".kube", "cluster credentials", True),
    (".docker", "registry credentials", True),
    (".config/git", "git's configuration: hooks and credential helpers", True),
    (".local/bin", "programs your shell finds on PATH", False),
    ("bin", "programs your shell finds on PATH", False),
    (".config/autostart", "programs your session starts", False),
    (".config/systemd", "your systemd user services", False),
    (".config/environment.d", "your session's environment", False),
    (".bashrc.d", "shell start-up files", False),
    (".profile.d", "shell start-up files", False),
    (".zshrc.d", "shell start-up files", False),
    (".config/fish", "shell start-up files", False),
)


def _host_control(directory: str, reading: bool) -> str | None:
    """Which HOST_CONTROL place a root at `directory` would open (for writing; for reading,
    only the secret ones): the place, or a directory holding it. None: none."""
    home = os.path.realpath(os.path.expanduser("~"))
    for name, what, secret in HOST_CONTROL:
        place = os.path.join(home, name)
        if (secret or not reading) and (is_within(directory, place)
                                        or is_beneath(place, directory)):
            return f"{place} ({what})"
    return None


def _keeps_protection(before: MountPlan, after: MountPlan) -> bool:
    """Every sensitive and protected rule of `before` is still there, as strict."""
    kept = {(r.path, r.access) for r in after.rules}
    return all((r.path, r.access) in kept for r in before.rules
               if r.kind in (RuleKind.SENSITIVE, RuleKind.PROTECTED, RuleKind.RUNTIME))


def _toml_list(items: Sequence[str]) -> str:
    return "[" + ", ".join(json.dumps(i) for i in items) + "]"


def _writable_root_override(plan: MountPlan, directory: str) -> tuple[str, str, str]:
    roots = [*plan.policy.writable_roots, directory]
    value = _toml_list(roots)
    return (f"sandbox_workspace_write.writable_roots={value}",
            f"sandbox_workspace_write.writable_roots = {value}",
            f"every file beneath {directory} becomes writable (its .git, .codex, .agents and "
            "sensitive files stay protected)")


def _readable_root_override(plan: MountPlan, directory: str) -> tuple[str, str, str] | None:
    if plan.policy.read_access.mode.value != "restricted":
        return None
    roots = [*plan.policy.read_access.readable_roots, directory]
    value = _toml_list(roots)
    return (f"read_access.readable_roots={value}", f"read_access.readable_roots = {value}",
            f"every file beneath {directory} becomes readable")


def _entry_override(plan: MountPlan, path: str, access: str) -> tuple[str, str, str] | None:
    """The split entry that decides `path`, given `access` instead: its key as the config
    writes it (a new key for the same path would tie, and `none` wins a tie)."""
    name = plan.policy.default_permissions
    rule = plan.rule_for(path)
    entry = next((e for e in plan.policy.fs_entries
                  if str(e.provenance) == str(rule.provenance)), None)
    if name is None or entry is None:
        return None
    key = f"permissions.{name}.filesystem.{json.dumps(entry.path)}"
    return (f"{key}={json.dumps(access)}", f"{key} = {json.dumps(access)}",
            f"{rule.path} and everything beneath it becomes "
            f"{'readable' if access == 'read' else 'writable'} instead of denied")


# What tools print when the kernel refuses a path: "cannot create /x: Read-only file system",
# "cat: .env: Permission denied", Python's "[Errno 30] Read-only file system: '/x'".
_DENIAL_LINE = re.compile(r"(Read-only file system|Permission denied|Operation not permitted)")
_PATHS = re.compile(r"'([^']+)'|\"([^\"]+)\"|(?:^|[\s:])([./~][^\s:'\"]*|[\w.-]+/[^\s:'\"]*)")


TRACE_ADVICE = ("re-run with `sandboxtui trace` for every refused operation and the change "
                "that would allow it")


def denial_hint(plan: MountPlan, output: str, advice: str = TRACE_ADVICE) -> str | None:
    """For an untraced run that failed: the first output line that reads like a refusal and
    names a path the plan restricts, explained (access, rule, provenance), with `advice`: the
    way to the full list (the CLI's, or the TUI's trace toggle). None when no such line names
    such a path: nothing is guessed."""
    for line in output.splitlines():
        if not _DENIAL_LINE.search(line):
            continue
        writing = "Read-only" in line
        for m in _PATHS.finditer(line):
            candidate = next(g for g in m.groups() if g)
            path = os.path.expanduser(candidate)
            ex = plan.explain(path)
            if _restricts(ex.access, "write" if writing else "read"):
                return (f"{ex.resolved} is {ex.access.value} in this sandbox: {ex.rule.reason} "
                        f"[{ex.rule.provenance}]; {advice}")
    return None
