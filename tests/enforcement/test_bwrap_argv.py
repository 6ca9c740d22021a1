"""The plan -> bwrap argv translation, and the launches that prove it does what it says."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from conftest import plan_for

from sandboxtui.core.bwrap import LaunchFiles, bwrap_options, encode_args
from sandboxtui.core.launch import LaunchError, LaunchSpec, RunResult, prepare, start
from sandboxtui.core.mask_stage import split_ops
from sandboxtui.core.paths import runtime_dir
from sandboxtui.core.plan import OpKind
from sandboxtui.core.policy import Access

FILES = LaunchFiles("/run/x", "/run/x/launch-1/empty", 7, 8)


def run(spec: LaunchSpec) -> tuple[RunResult, str, str]:
    running = start(spec, capture=True)
    out: dict[str, bytes] = {"stdout": b"", "stderr": b""}
    for event in running.events():
        out[event.stream] += event.data
    return running.wait(), out["stdout"].decode(), out["stderr"].decode()


def sh(ws: Path, script: str, *overrides: str) -> tuple[RunResult, str, str]:
    return run(prepare(plan_for(ws, *overrides, config=None), ["sh", "-c", script]))


def pairs(args: list[str], flag: str) -> list[str]:
    return [args[i + 2] for i, a in enumerate(args) if a == flag and i + 2 < len(args)]


def test_always_on_flags_and_network(tmp_path: Path) -> None:
    args = bwrap_options(plan_for(tmp_path, config=None), FILES, str(tmp_path))
    assert args[:7] == ["--new-session", "--die-with-parent", "--unshare-user",
                        "--unshare-pid", "--unshare-ipc", "--unshare-net", "--cap-drop"]
    assert args[7] == "ALL"
    assert args[11:13] == ["--dev", "/dev"] and args[13:15] == ["--proc", "/proc"]
    at = args.index("/proc/sys")
    assert args[at - 1:at + 2] == ["--ro-bind", "/proc/sys", "/proc/sys"] and at > 13
    assert args[-4:] == ["--seccomp", "7", "--json-status-fd", "8"]
    on = bwrap_options(plan_for(tmp_path, "sandbox_workspace_write.network_access=true",
                                config=None), FILES, str(tmp_path))
    assert "--unshare-net" not in on
    no_proc = bwrap_options(plan_for(tmp_path, config=None, mount_proc=False), FILES, str(tmp_path))
    assert "--proc" not in no_proc and "/proc/sys" not in no_proc
    assert no_proc[no_proc.index("/proc") - 3:no_proc.index("/proc")] == ["--perms", "000",
                                                                          "--tmpfs"]


def test_every_op_kind_maps_to_its_arguments(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    (ws / ".git" / "hooks").mkdir(parents=True)
    (ws / ".git" / "hooks" / "pre-commit").write_text("#!/bin/sh\n")
    (ws / ".env").write_text("x")
    (ws / "secrets").mkdir()
    plan = plan_for(ws, 'sensitive_paths=[".env", "secrets"]',
                    "sandbox_workspace_write.exclude_slash_tmp=true",
                    'protect_git="config-and-hooks"', config=None)
    args = bwrap_options(plan, FILES, str(ws))
    kinds = {op.kind for op in plan.ops}
    assert {OpKind.BIND, OpKind.RO_BIND, OpKind.DENY_FILE, OpKind.DENY_DIR,
            OpKind.BLOCK_MISSING, OpKind.BLOCK_MISSING_DIR, OpKind.REMOUNT_RO} <= kinds
    assert args[args.index(str(ws)) - 1:][:3] == ["--bind", str(ws), str(ws)]
    assert pairs(args, "--ro-bind").count(f"{ws}/.git/hooks") == 1
    empties = [args[i + 2] for i, a in enumerate(args)
               if a == "--ro-bind" and args[i + 1] == FILES.empty_file]
    # Denied files and missing protected files (a git directory's config) get the mode-000
    # file (a denied file beyond the first is bound by the mask stage, as the same op says);
    # a missing protected directory name an empty tmpfs, remounted read-only below.
    staged = {op.dest: op.describe() for op in split_ops(plan).staged}
    assert staged[f"{ws}/.env"] == f"--ro-bind <empty file, mode 000> {ws}/.env"
    assert f"{ws}/.env" not in args and f"{ws}/.git/config" in empties
    for name in (".agents", ".codex", ".git/info"):
        i = args.index(f"{ws}/{name}")
        assert args[i - 3:i] == ["--perms", "0555", "--tmpfs"]
        assert f"{ws}/{name}" not in empties
    i = args.index(f"{ws}/secrets")
    assert args[i - 3:i] == ["--perms", "000", "--tmpfs"]
    # Read-only remounts come after every mount; the runtime directory, a plan rule like any
    # other denial, is hidden.
    runtime = runtime_dir()
    tail = args[args.index("--remount-ro"):]
    remounts = {tail[i + 1] for i in range(0, len(tail) - 1, 2) if tail[i] == "--remount-ro"}
    assert {f"{ws}/secrets", runtime, f"{ws}/.agents", f"{ws}/.git/info"} <= remounts
    assert tail[:2 * len(remounts)] == [a for d in sorted(remounts, key=tail.index)
                                        for a in ("--remount-ro", d)]
    assert args[args.index(runtime) - 3:args.index(runtime)] == ["--perms", "000", "--tmpfs"]
    assert plan.explain(f"{runtime}/launch-x/empty").access is Access.NONE


def test_dry_run_argv_is_the_launched_argv(tmp_path: Path) -> None:
    spec = prepare(plan_for(tmp_path, config=None), ["true"])
    running = start(spec, capture=True)
    assert running.wait().exit_code == 0
    shown, launched = spec.argv(), running.argv
    assert len(shown) == len(launched)
    differ = [(a, b) for a, b in zip(shown, launched, strict=True) if a != b]
    # Only per-launch values differ: the launch directory and the fd numbers.
    for a, b in differ:
        assert "launch-" in a and "launch-" in b or a.isdigit() and b.isdigit(), (a, b)


def test_odd_paths_and_a_huge_plan_go_through_the_args_fd(tmp_path: Path) -> None:
    """More than 2 MiB of arguments (a plain argv's limit) and a path with a newline.

    Deep paths rather than many directories: bwrap's cost grows with the square of the mount
    count. Denied directories, since denied files are mounted by the mask stage instead.
    """
    ws = tmp_path / "ws"
    many = ws.joinpath(*(f"{d}{'d' * 249}" for d in range(14)))
    many.mkdir(parents=True)
    odd = tmp_path / "-dash\nnew line"
    odd.mkdir()
    n = 560
    for i in range(n):
        (many / f".env.{i:04d}{'x' * 240}").mkdir()
        (many / f".env.{i:04d}{'x' * 240}" / "s").write_text("secret")
    root = str(odd).replace("\n", "\\n")
    plan = plan_for(ws, f'sandbox_workspace_write.writable_roots=["{root}"]', config=None)
    assert sum(op.kind is OpKind.DENY_DIR and op.dest.startswith(str(many))
               for op in plan.ops) == n
    spec = prepare(plan, ["sh", "-c", 'echo in > "$1/f"; cat "$2"', "sh", str(odd),
                          str(next(many.iterdir()) / "s")])
    assert len(encode_args(spec.enforcer.options(spec))) > 2 * 1024 * 1024
    result, out, err = run(spec)
    assert result.exit_code == 1, err
    assert "Permission denied" in err and "secret" not in out
    assert (odd / "f").read_text() == "in\n"


def test_a_plan_beyond_bwraps_argument_limit_is_refused(tmp_path: Path) -> None:
    for i in range(1600):  # denied directories: six bwrap arguments each
        (tmp_path / f".env.{i}").mkdir()
    with pytest.raises(LaunchError) as exc:
        prepare(plan_for(tmp_path, config=None), ["true"])
    assert exc.value.exit_code == 4
    assert "at most 9000" in exc.value.message


def test_restricted_read_starts_from_an_empty_read_only_root(tmp_path: Path) -> None:
    result, out, err = sh(tmp_path, "ls /root /home 2>&1; cat /usr/bin/env >/dev/null && "
                          "echo usr-ok; touch /new 2>&1; echo ws > ws.txt && echo ws-ok",
                          'read_access={mode="restricted"}')
    assert result.exit_code == 0, err
    assert "No such file or directory" in out
    assert "usr-ok" in out and "ws-ok" in out
    assert "Read-only file system" in out


def test_runtime_directory_is_hidden_inside(tmp_path: Path) -> None:
    spec = prepare(plan_for(tmp_path, config=None), ["sh", "-c", 'ls "$1"', "sh", runtime_dir()])
    result, _, err = run(spec)
    assert result.exit_code != 0 and "Permission denied" in err


def test_no_host_descriptors_leak_from_the_launcher(tmp_path: Path) -> None:
    before = sorted(os.listdir("/proc/self/fd"))
    result, out, _ = sh(tmp_path, "ls /proc/self/fd")
    assert result.exit_code == 0
    assert sorted(out.split()) == ["0", "1", "2", "3"]  # 3: the directory ls is reading
    assert sorted(os.listdir("/proc/self/fd")) == before


def test_placeholders_are_removed_by_the_last_launch_out(tmp_path: Path) -> None:
    plan = plan_for(tmp_path, config=None)
    agents = tmp_path / ".agents"
    first = start(prepare(plan, ["sleep", "0.2"]))
    second = start(prepare(plan, ["sh", "-c", "sleep 0.6; mkdir .agents; echo rc=$?"]),
                   capture=True)
    assert first.wait().exit_code == 0
    assert agents.exists()  # still blocking creation inside the second sandbox
    out = b"".join(e.data for e in second.events()).decode()
    assert second.wait().exit_code == 0
    assert "rc=1" in out
    assert not os.path.lexists(agents)
    assert sorted(os.listdir(tmp_path)) == []


@pytest.mark.parametrize("name", [".git", ".codex"])
def test_a_real_empty_file_is_never_removed(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_text("")  # the user's own empty file: protected, kept
    result, _, _ = sh(tmp_path, f"echo x > {name}")
    assert result.exit_code != 0
    assert (tmp_path / name).read_text() == ""


def test_python_can_run_in_the_sandbox(tmp_path: Path) -> None:
    result, out, err = run(prepare(plan_for(tmp_path, config=None),
                                   [sys.executable, "-c", "print(6*7)"]))
    assert (result.exit_code, out) == (0, "42\n"), err


def test_a_placeholder_that_vanishes_between_plan_and_launch_is_recreated(
        tmp_path: Path) -> None:
    agents = tmp_path / ".agents"
    agents.write_text("")  # another launch's placeholder, seen by this plan...
    agents.chmod(0o444)
    spec = prepare(plan_for(tmp_path, config=None), ["sh", "-c", "mkdir .agents; echo rc=$?"])
    agents.unlink()  # ...and removed by that launch before this one starts
    result, out, err = run(spec)
    assert result.exit_code == 0, err
    assert "rc=1" in out
    assert not os.path.lexists(agents)
