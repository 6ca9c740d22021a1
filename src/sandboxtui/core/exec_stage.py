"""The exec stage: a fresh, single-threaded process that restricts itself, then execs.

Run as `python -I -m sandboxtui.core.exec_stage SPEC_FD`. The spec (JSON, read from SPEC_FD)
names resource limits, an optional Landlock ruleset, an optional fd holding a compiled seccomp
BPF program, and the argv to exec. Restrictions are applied here rather than in a `preexec_fn`
because the parent (the TUI) is threaded. Imports are kept minimal: this runs on every launch
that needs it.

Exit codes before exec: 4 when a restriction cannot be applied (nothing runs), 126/127 when the
command is not executable / not found.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import sys
from typing import Any

PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2

RLIMITS = {
    "cpu_seconds": resource.RLIMIT_CPU,
    "address_space": resource.RLIMIT_AS,
    "open_files": resource.RLIMIT_NOFILE,
    "processes": resource.RLIMIT_NPROC,
    "file_size": resource.RLIMIT_FSIZE,
}


class StageError(Exception):
    pass


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def no_new_privs() -> None:
    libc = _libc()
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise StageError(f"prctl(NO_NEW_PRIVS): {os.strerror(ctypes.get_errno())}")


def apply_limits(limits: dict[str, int]) -> None:
    for name, value in limits.items():
        try:
            resource.setrlimit(RLIMITS[name], (value, value))
        except (ValueError, OSError) as exc:
            raise StageError(f"setrlimit {name}={value}: {exc}") from None


def apply_landlock(read: list[str], write: list[str]) -> int:
    """Read+execute beneath `read`, everything beneath `write`; returns the ABI used."""
    from landlock import FSAccess, LandlockError, Ruleset, landlock_abi_version

    try:
        abi = landlock_abi_version()
        everything = FSAccess.all()
        read_rights = FSAccess.EXECUTE | FSAccess.READ_FILE | FSAccess.READ_DIR
        ruleset = Ruleset(restrict_rules=everything)
        for paths, rights in ((read, read_rights), (write, everything)):
            for path in paths:
                if not os.path.exists(path):
                    continue
                # a file may only carry file rights
                ruleset.allow(path, rules=rights if os.path.isdir(path)
                              else rights & FSAccess.all_file())
        ruleset.apply()  # sets no-new-privs first
    except (LandlockError, OSError) as exc:
        raise StageError(f"Landlock: {exc}") from None
    return abi


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def apply_seccomp(bpf: bytes) -> None:
    if len(bpf) % 8 or not bpf:
        raise StageError("seccomp program is not a whole number of BPF instructions")
    buf = ctypes.create_string_buffer(bpf, len(bpf))
    prog = _SockFprog(len(bpf) // 8, ctypes.cast(buf, ctypes.c_void_p))
    no_new_privs()
    libc = _libc()
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) != 0:
        raise StageError(f"prctl(SECCOMP): {os.strerror(ctypes.get_errno())}")


def _read_fd(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks)


def run(spec: dict[str, Any]) -> None:
    apply_limits(spec.get("limits", {}))
    bpf = _read_fd(spec["seccomp_fd"]) if spec.get("seccomp_fd") is not None else None
    if spec.get("landlock") is not None:
        apply_landlock(spec["landlock"]["read"], spec["landlock"]["write"])
    if bpf is not None:
        apply_seccomp(bpf)
    if spec.get("no_new_privs", True):
        no_new_privs()
    argv = spec["argv"]
    os.execvp(argv[0], argv)


def main() -> int:
    try:
        spec = json.loads(_read_fd(int(sys.argv[1])))
    except (IndexError, ValueError, OSError) as exc:
        print(f"sandboxtui exec stage: bad spec: {exc}", file=sys.stderr)
        return 4
    try:
        run(spec)
    except StageError as exc:
        print(f"sandboxtui: cannot enforce the sandbox: {exc}", file=sys.stderr)
        return 4
    except FileNotFoundError:
        print(f"sandboxtui: {spec['argv'][0]}: command not found", file=sys.stderr)
        return 127
    except PermissionError:
        print(f"sandboxtui: {spec['argv'][0]}: permission denied (not executable, or "
              "not allowed by the sandbox)", file=sys.stderr)
        return 126
    except OSError as exc:
        print(f"sandboxtui: cannot exec {spec['argv'][0]}: {exc.strerror}", file=sys.stderr)
        return 126
    return 0  # unreachable: execvp does not return


if __name__ == "__main__":
    sys.exit(main())
