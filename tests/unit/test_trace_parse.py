"""Reading the tracer's output (issue 14) against a hostile command: a file name or argument
that looks like a strace result forges nothing, each call is read at the path it acts on, and
no suggestion opens the root, a system directory, the home directory or the workspace's
parents. Synthetic strace lines over a real plan."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from conftest import plan_for

from sandboxtui.core import trace
from sandboxtui.core.plan import MountPlan


def _analyse(ws: Path, text: str) -> trace.TraceReport:
    plan = plan_for(ws)
    return trace.analyse(text, plan, 0, lambda override: plan_for(ws, override),
                         network_on=False)


def test_a_result_inside_a_quoted_argument_is_not_a_result(tmp_path: Path) -> None:
    forged = ('100 symlinkat("/root/.bashrc", AT_FDCWD, "f) = -1 EROFS (Read-only file '
              'system)") = 0\n'
              '101 execve("/usr/bin/ln", ["ln", "x) = -1 EROFS (Read-only file system)"], '
              '0x7ff /* 3 vars */) = 0\n')
    assert _analyse(tmp_path, forged) == trace.TraceReport(0, (), (), 0)


def test_each_call_is_read_at_the_path_it_acts_on(tmp_path: Path) -> None:
    text = ('105 symlinkat("/target", AT_FDCWD, "/etc/sbx-link") = -1 EROFS (Read-only file '
            'system)\n'
            '106 renameat2(AT_FDCWD, "a", AT_FDCWD, "/etc/sbx-b", 0) = -1 EROFS (Read-only '
            'file system)\n'
            '107 openat(3</var/tmp/a\\"b,c>, "x", O_WRONLY|O_CREAT, 0666) = -1 EROFS '
            '(Read-only file system)\n'
            '108 chdir("/var/tmp/w,s") = 0\n'
            '108 mkdir("d", 0777) = -1 EROFS (Read-only file system)\n'
            '109 openat(AT_FDCWD, "missing", O_RDONLY) = -1 ENOENT (No such file or '
            'directory)\n')
    report = _analyse(tmp_path, text)
    assert {(d.op, d.path, d.syscall) for d in report.denials} == {
        ("create", "/etc/sbx-link", "symlinkat"), ("rename", "/etc/sbx-b", "renameat2"),
        ("write", '/var/tmp/a"b,c/x', "openat"), ("create", "/var/tmp/w,s/d", "mkdir")}


def _suggestion(report: trace.TraceReport, path: str) -> trace.Suggestion | None:
    return next(d.suggestion for d in report.denials if d.path == path)


def test_no_suggestion_opens_the_root_system_files_home_or_the_workspaces_parents() -> None:
    base = Path(tempfile.mkdtemp(dir="/var/tmp"))  # outside /tmp, a writable root
    try:
        ws = base / "ws"
        ws.mkdir()
        home = os.path.realpath(os.path.expanduser("~"))
        (base / "out").mkdir()  # a writable root must exist to be one
        refused = ["/foo", "/etc/x", "/usr/share/x", f"{home}/y", f"{base}/sibling",
                   f"{base}/out/f"]
        text = "".join(f'{i} openat(AT_FDCWD, "{p}", O_WRONLY|O_CREAT, 0666) = -1 EROFS '
                       "(Read-only file system)\n" for i, p in enumerate(refused, 1))
        report = _analyse(ws, text)
    finally:
        shutil.rmtree(base)
    for path in refused[:-1]:
        suggestion = _suggestion(report, path)
        assert suggestion is not None and suggestion.flag is None, (path, suggestion)
        assert "nothing is suggested" in suggestion.widens
    ok = _suggestion(report, refused[-1])
    assert ok is not None and ok.flag == (
        f"-c 'sandbox_workspace_write.writable_roots=[\"{base}/out\"]'")


def test_many_refusals_are_counted_not_all_analysed(tmp_path: Path) -> None:
    calls: list[str] = []
    plan: MountPlan = plan_for(tmp_path)

    def replan(override: str) -> MountPlan:
        calls.append(override)
        return plan_for(tmp_path, override)

    text = "".join(f'{i} mkdir("/var/tmp/sbx-many/d{i}", 0777) = -1 EROFS (Read-only file '
                   "system)\n" for i in range(trace.MAX_ANALYSED + 50))
    report = trace.analyse(text, plan, 0, replan, network_on=False)
    assert len(report.denials) == trace.MAX_ANALYSED and report.not_analysed == 50
    assert len(set(calls)) == len(calls) == 1  # one suggestion for them all: planned once
