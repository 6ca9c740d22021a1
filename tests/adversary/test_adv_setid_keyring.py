"""Set-id files and the session keyring (issue 11, items 2 and 3).

A sandbox started by root could leave a setuid-root binary in a writable root (`/tmp`, the
workspace) for any local user to run, and any sandbox could read or overwrite the keys of the
host's session keyring. Every pipeline (bubblewrap with the system and the vendored bwrap,
legacy Landlock, managed proxy mode), with the network off and on, launched as root and as
`nobody` (legacy Landlock as `nobody` only: a root launcher stays on bubblewrap, see
test_adv_legacy_metadata.py): each way of setting a set-id bit fails with the filter's errno
and the host file has none afterwards; `keyctl`, `add_key` and `request_key` fail, and a key
the launcher's own session keyring holds cannot be read inside. The allowed side: ordinary
modes, `git init` and `cp -p` still work (on legacy Landlock, modes without group or other
write: its filter refuses those everywhere, since Landlock cannot keep chmod to the writable
roots).
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import uuid
from pathlib import Path

import pytest
from conftest import CANARY, Runner, chown_tree, python_for

NET = "sandbox_workspace_write.network_access"
NETWORKS = {"off": f"{NET}=false", "on": f"{NET}=true", "proxy": f'{NET}="proxy"'}
SANDBOXES = [(u, b, "bwrap") for u in ("root", "nobody") for b in ("system", "vendored")] + [
    ("nobody", "system", "legacy")]  # a root launcher never runs on legacy Landlock
CASES = [(*s, n) for s in SANDBOXES for n in NETWORKS if not (s[2] == "legacy" and n == "proxy")]


@pytest.fixture(params=CASES, ids=lambda p: "-".join(p))
def case(request: pytest.FixtureRequest, shared_dir: Path) -> tuple[Runner, str]:
    """(runner, network): legacy + proxy is left out, it runs on bubblewrap by design."""
    user, bwrap, pipeline, network = request.param
    return Runner(user, bwrap, shared_dir / "config.toml", pipeline), network


def _launch(runner: Runner, network: str, ws: Path, command: list[str], *,
            wrapper: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    """`sandboxtui run` as the runner's user, or through `wrapper` (a Python program and its
    first arguments, run as that user; the `run` argv follows). Proxy mode gets a loopback
    proxy variable: nothing here connects to it."""
    run = ["run", "--config", str(runner.config), "--cwd", str(ws), *runner.bwrap_options(),
           "-c", NETWORKS[network], "-c", 'sensitive_path_precheck_mode="off"', "--", *command]
    prefix = runner.prefix()
    argv = [*prefix[:-2], "-c", *wrapper, *run] if wrapper else [*prefix, *run]
    env = {k: v for k, v in os.environ.items()
           if k != "XDG_RUNTIME_DIR" and not k.lower().endswith("_proxy")}
    if network == "proxy":
        env["HTTP_PROXY"] = "http://127.0.0.1:9"
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env)


def _json(done: subprocess.CompletedProcess[str]) -> dict[str, object]:
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


# --- set-id files -------------------------------------------------------------------------------

SETID_PROBE = r"""
import ctypes, errno, json, os, stat, subprocess, sys
d = sys.argv[1]
libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD = -100
out = {}

def attempt(name, fn):
    try:
        fn()
        out[name] = "ok"
    except OSError as e:
        out[name] = errno.errorcode[e.errno]

def sys_call(nr, *args):
    if libc.syscall(nr, *args) < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))

def tool(name, *argv):
    done = subprocess.run(argv, capture_output=True, text=True)
    out[name] = "ok" if done.returncode == 0 else done.stderr.strip()

target = os.path.join(d, "target")
p = lambda n: os.path.join(d, n).encode()
tool("chmod(1) 4755", "chmod", "4755", target)
tool("chmod(1) 2755", "chmod", "2755", target)
tool("chmod(1) u+s", "chmod", "u+s", target)
tool("chmod(1) g+s dir", "chmod", "g+s", d)
attempt("os.chmod 4755", lambda: os.chmod(target, 0o4755))
attempt("os.chmod 2755", lambda: os.chmod(target, 0o2755))
dfd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
attempt("fchmodat 6755", lambda: os.chmod("target", 0o6755, dir_fd=dfd))
attempt("fchmodat2 4755 AT_SYMLINK_NOFOLLOW",
        lambda: sys_call(452, AT_FDCWD, target.encode(), 0o4755, 0x100))
fd = os.open(target, os.O_RDONLY)
attempt("fchmod 4755", lambda: os.fchmod(fd, 0o4755))
attempt("fchmod 4755 high bits", lambda: sys_call(91, fd, ctypes.c_ulong(0o4755 | 1 << 40)))
attempt("open O_CREAT 4755", lambda: os.open(p("created"), os.O_CREAT | os.O_WRONLY, 0o4755))
attempt("open O_CREAT 2755", lambda: os.open(p("created-g"), os.O_CREAT | os.O_WRONLY, 0o2755))
attempt("open O_TMPFILE 4755", lambda: os.open(d, os.O_TMPFILE | os.O_WRONLY, 0o4755))
attempt("raw open O_CREAT 4755", lambda: sys_call(2, p("raw-open"), os.O_CREAT | os.O_WRONLY,
                                                  0o4755))
attempt("creat 4755", lambda: sys_call(85, p("creat"), 0o4755))
attempt("mknod S_IFREG|4755", lambda: os.mknod(p("mknod"), stat.S_IFREG | 0o4755))
attempt("raw mknod S_IFREG|2755", lambda: sys_call(133, p("raw-mknod"), stat.S_IFREG | 0o2755, 0))
how = (ctypes.c_uint64 * 3)(os.O_CREAT | os.O_WRONLY, 0o4755, 0)
attempt("openat2 O_CREAT 4755", lambda: sys_call(437, AT_FDCWD, p("openat2"), how, 24))
caps = b"\x00\x00\x00\x02" + b"\x80\x00\x00\x00" + b"\x00" * 12  # v2: CAP_SETUID permitted
attempt("setxattr security.capability",
        lambda: os.setxattr(target, "security.capability", caps))
setuid = [b for b in ("/usr/bin/su", "/usr/bin/passwd", "/bin/su")
          if os.path.exists(b) and os.stat(b).st_mode & stat.S_ISUID]
if setuid:  # a hard link would keep today's binary once an update fixes its bug
    attempt("link a set-uid binary", lambda: os.link(setuid[0], os.path.join(d, "link")))
pre = os.path.join(d, "preexisting")  # set-uid on the host already; chown must clear it
attempt("chown", lambda: os.chown(pre, os.getuid(), os.getgid()))
out["chown keeps set-id"] = oct(os.stat(pre).st_mode & 0o6000)
print(json.dumps(out))
"""

REFUSED = "Operation not permitted"


def test_no_set_id_file_can_be_made(case: tuple[Runner, str], workspace: Path) -> None:
    runner, network = case
    work = workspace / "work"
    work.mkdir()
    (work / "target").write_text("#!/bin/sh\nid\n")
    (work / "target").chmod(0o755)
    (work / "preexisting").write_text("not executable\n")
    chown_tree(workspace, runner.user)
    (work / "preexisting").chmod(0o4644)  # set-uid but not executable: harmless meanwhile
    out = _json(_launch(runner, network, workspace,
                        [python_for(runner.user), "-c", SETID_PROBE, str(work)]))
    tools = {k: v for k, v in out.items() if k.startswith("chmod(1)")}
    assert all(REFUSED in str(v) for v in tools.values()), tools
    calls = {k: v for k, v in out.items()
             if not k.startswith(("chmod(1)", "openat2", "setx", "chown", "link"))}
    assert calls == dict.fromkeys(calls, "EPERM")
    assert out["openat2 O_CREAT 4755"] == "ENOSYS"  # callers fall back to openat
    # Not the filter's: no capability is left inside, so CAP_SETFCAP is missing too (the
    # legacy filter refuses every xattr first, as a filesystem without them would).
    assert out["setxattr security.capability"] == (
        "ENOTSUP" if runner.pipeline == "legacy" else "EPERM")
    if runner.pipeline == "legacy":  # its filter refuses every chown: the host's bit stays
        assert out["chown"] == "EPERM" and out["chown keeps set-id"] == "0o4000"
    else:
        assert out["chown keeps set-id"] == "0o0"  # the kernel clears set-id bits on chown
    # Not the filter's either: another mount (bwrap), Landlock's refer rule, protected_hardlinks.
    assert out.get("link a set-uid binary", "EXDEV") in ("EXDEV", "EPERM")
    assert stat.S_IMODE((work / "target").stat().st_mode) == 0o755
    assert stat.S_IMODE(work.stat().st_mode) & 0o6000 == 0
    host_mode = 0o4644 if runner.pipeline == "legacy" else 0o644
    assert stat.S_IMODE((work / "preexisting").stat().st_mode) == host_mode
    made = sorted(p.name for p in work.iterdir())
    assert made == ["preexisting", "target"], made  # no file was created by a refused call
    assert "security.capability" not in os.listxattr(work / "target")


ALLOWED_PROBE = r"""
import errno, json, os, shutil, subprocess, sys
d, sticky = sys.argv[1], int(sys.argv[2], 8)
out = {}
def tool(name, *argv):
    done = subprocess.run(argv, capture_output=True, text=True, cwd=d)
    out[name] = "ok" if done.returncode == 0 else done.stderr.strip()
tool("chmod(1) 755", "chmod", "755", "plain")
tool("chmod(1) u+x,go-w", "chmod", "u+x,go-w", "plain")
os.chmod(os.path.join(d, "private"), 0o640)
os.close(os.open(os.path.join(d, "new"), os.O_CREAT | os.O_WRONLY, 0o644))
os.chmod(os.path.join(d, "new"), 0o600)
os.mkdir(os.path.join(d, "sticky"), 0o777)
os.chmod(os.path.join(d, "sticky"), sticky)
tool("cp -p", "cp", "-p", "private", "copy")
tool("git init", "git", "-c", "init.defaultBranch=main", "init", "-q", "repo")
tool("git commit", "git", "-C", "repo", "-c", "user.name=t", "-c", "user.email=t@t.invalid",
     "commit", "-q", "--allow-empty", "-m", "x")
shared = {}  # group/other write: allowed on bubblewrap, refused on legacy Landlock
for mode in (0o664, 0o646):
    try:
        os.chmod(os.path.join(d, "shared"), mode)
        shared[oct(mode)] = "ok"
    except OSError as e:
        shared[oct(mode)] = errno.errorcode[e.errno]
print(json.dumps({**out, "shared": shared}))
"""


def test_ordinary_modes_git_init_and_cp_p_still_work(case: tuple[Runner, str],
                                                      workspace: Path) -> None:
    runner, network = case
    work = workspace / "work"
    work.mkdir()
    for name in ("plain", "private", "shared"):
        (work / name).write_text("x\n")
        (work / name).chmod(0o644)
    chown_tree(workspace, runner.user)
    # Legacy Landlock cannot keep chmod to the writable roots, so its filter refuses group and
    # other write everywhere (a ~/.bashrc made world-writable); a sticky /tmp-like 1777 too.
    legacy = runner.pipeline == "legacy"
    sticky = 0o1755 if legacy else 0o1777
    out = _json(_launch(runner, network, workspace,
                        [python_for(runner.user), "-c", ALLOWED_PROBE, str(work), oct(sticky)]))
    shared = out.pop("shared")
    assert out == dict.fromkeys(out, "ok")
    assert shared == dict.fromkeys(("0o664", "0o646"), "EPERM" if legacy else "ok")
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in work.iterdir()}
    assert modes["plain"] == 0o755 and modes["private"] == 0o640 == modes["copy"]
    assert modes["new"] == 0o600 and modes["sticky"] == sticky
    assert modes["shared"] == (0o644 if legacy else 0o646)
    assert (work / "repo" / ".git" / "HEAD").is_file()


# --- the session keyring ------------------------------------------------------------------------

KEYCTL, ADD_KEY, REQUEST_KEY = 250, 248, 249
KEY_SPEC_SESSION_KEYRING = -3

# Run as the runner's user: a fresh session keyring of its own, one key in it, then the launch
# (which inherits that keyring), then the key is revoked and unlinked whatever happened.
KEY_WRAPPER = r"""
import ctypes, json, subprocess, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
SESSION = -3
assert libc.syscall(250, 1, None) > 0  # KEYCTL_JOIN_SESSION_KEYRING: a new anonymous one
desc, payload = sys.argv[1].encode(), sys.argv[2].encode()
key = libc.syscall(248, b"user", desc, payload, len(payload), SESSION)
assert key > 0, ctypes.get_errno()
buf = ctypes.create_string_buffer(256)
n = libc.syscall(250, 11, key, buf, 256)  # KEYCTL_READ: the launcher itself can read it
argv = [sys.executable, "-m", "sandboxtui", *sys.argv[3:]]
argv[argv.index("KEY")] = str(key)
try:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=100)
finally:
    revoked = libc.syscall(250, 3, key) == 0  # KEYCTL_REVOKE
    libc.syscall(250, 9, key, SESSION)  # KEYCTL_UNLINK
print(json.dumps({"host_read": buf.raw[:n].decode(), "rc": done.returncode,
                  "stdout": done.stdout, "stderr": done.stderr[-2000:], "revoked": revoked}))
"""

KEY_PROBE = r"""
import ctypes, errno, json, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
key = int(sys.argv[1])
buf = ctypes.create_string_buffer(256)
def call(*args):
    r = libc.syscall(*args)
    return f"ok {r} {buf.raw[:max(r, 0)]!r}" if r >= 0 else errno.errorcode[ctypes.get_errno()]
print(json.dumps({
    "session keyring id": call(250, 0, -3, 0),  # KEYCTL_GET_KEYRING_ID
    "read host key": call(250, 11, key, buf, 256),  # KEYCTL_READ
    "update host key": call(250, 2, key, b"overwritten", 11),  # KEYCTL_UPDATE
    "join new session": call(250, 1, None),
    "add_key": call(248, b"user", b"inside", b"x", 1, -3),
    "request_key": call(249, b"user", b"inside", None, -3),
}))
"""


def test_the_session_keyring_is_out_of_reach(case: tuple[Runner, str], workspace: Path) -> None:
    runner, network = case
    chown_tree(workspace, runner.user)
    desc = f"sandboxtui-test-{uuid.uuid4().hex[:8]}"
    done = _launch(runner, network, workspace,
                   [python_for(runner.user), "-c", KEY_PROBE, "KEY"],
                   wrapper=(KEY_WRAPPER, desc, CANARY))
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report["host_read"] == CANARY and report["revoked"]
    assert report["rc"] == 0, report["stderr"]
    inside = json.loads(report["stdout"].strip().splitlines()[-1])
    assert inside == dict.fromkeys(inside, "EPERM")
    assert CANARY not in report["stdout"]


# --- sandboxtui patch ---------------------------------------------------------------------------

CREATE = "diff --git a/{name} b/{name}\nnew file mode {mode}\n--- /dev/null\n+++ b/{name}\n" \
    "@@ -0,0 +1 @@\n+#!/bin/sh\n"
CHMOD = "diff --git a/tool b/tool\nold mode {old}\nnew mode {new}\n"
EDIT = "diff --git a/kept b/kept\n--- a/kept\n+++ b/kept\n@@ -1 +1 @@\n-old\n+new\n"


@pytest.mark.parametrize("diff", [
    CREATE.format(name="evil", mode="104755"), CREATE.format(name="evil", mode="102755"),
    CHMOD.format(old="100755", new="104755"), CHMOD.format(old="104755", new="106755"),
    CHMOD.format(old="104755", new="100755")], ids=["create-4755", "create-2755",
                                                    "chmod-4755", "chmod-6755", "old-4755"])
def test_patch_refuses_set_id_modes(runner: Runner, workspace: Path, diff: str) -> None:
    (workspace / "tool").write_text("#!/bin/sh\n")
    (workspace / "tool").chmod(0o755)
    chown_tree(workspace, runner.user)
    patch = workspace.parent / "setid.diff"
    patch.write_text(diff)
    patch.chmod(0o644)
    done = subprocess.run([*runner.prefix(), "patch", str(patch), "--cwd", str(workspace),
                           "--config", str(runner.config)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 3, done.stderr
    assert "set-uid or set-gid" in done.stderr and "nothing written" in done.stderr
    assert not (workspace / "evil").exists()
    assert stat.S_IMODE((workspace / "tool").stat().st_mode) == 0o755


def test_patch_drops_the_set_id_bits_of_a_file_it_rewrites(runner: Runner,
                                                           workspace: Path) -> None:
    """As a write by anyone without CAP_FSETID does (root has it: patch must do it itself)."""
    chown_tree(workspace, runner.user)
    kept = workspace / "kept"
    kept.write_text("old\n")
    chown_tree(kept, runner.user)
    kept.chmod(0o6644)  # set-id but not executable: harmless while the test runs
    patch = workspace.parent / "edit.diff"
    patch.write_text(EDIT)
    patch.chmod(0o644)
    done = subprocess.run([*runner.prefix(), "patch", str(patch), "--cwd", str(workspace),
                           "--config", str(runner.config)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert kept.read_text() == "new\n" and stat.S_IMODE(kept.stat().st_mode) == 0o644
