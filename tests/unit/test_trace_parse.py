"""Reading the tracer's output (issue 14): each call is read at the path it acts on (the *at
calls' descriptors, a rename's destination, the cwd through chdir), and many refusals are
counted, not all analysed. Synthetic strace lines over a real plan; the hostile cases are in
tests/adversary/test_adv_trace.py."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import plan_for

from sandboxtui.core import trace
from sandboxtui.core.plan import MountPlan


def _analyse(ws: Path, text: str) -> trace.TraceReport:
    plan = plan_for(ws)
    return trace.analyse(text, plan, 0, lambda override: plan_for(ws, override),
                         network_on=False)


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


@pytest.fixture
def var_tmp() -> Iterator[Path]:
    """A directory outside /tmp, which every plan makes writable."""
    base = Path(tempfile.mkdtemp(dir="/var/tmp"))
    yield base
    shutil.rmtree(base)


def test_no_suggestion_opens_a_place_that_controls_the_host(var_tmp: Path,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    """A writable root under ~/.ssh, ~/.local/bin, ~/.config/autostart (or ~/.config, which
    holds them) would let the command run code on the host or take its keys; a readable root
    at ~/.aws gives the credentials away: none is offered, and `widens` says why."""
    home = var_tmp / "home"
    for place in (".ssh", ".local/bin", ".config/autostart", ".aws"):
        (home / place).mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    ws = var_tmp / "ws"
    ws.mkdir()
    refused = {f"{home}/.ssh/authorized_keys": ".ssh", f"{home}/.local/bin/ls": ".local/bin",
               f"{home}/.config/autostart/x.desktop": ".config/autostart",
               f"{home}/.config/new": ".config/git"}
    text = "".join(f'{i} openat(AT_FDCWD, "{p}", O_WRONLY|O_CREAT, 0666) = -1 EROFS '
                   "(Read-only file system)\n" for i, p in enumerate(refused, 1))
    suggestions = {d.path: d.suggestion for d in _analyse(ws, text).denials}
    for path, place in refused.items():
        suggestion = suggestions[path]
        assert suggestion is not None and suggestion.flag is None, (path, suggestion)
        assert f"would open {home}/{place} (" in suggestion.widens, suggestion.widens
    plan = plan_for(ws, 'read_access={mode="restricted", readable_roots=[]}')
    read = f'1 openat(AT_FDCWD, "{home}/.aws/credentials", O_RDONLY) = -1 EACCES (Permission ' \
           'denied)\n'
    (denial,) = trace.analyse(read, plan, 0, lambda o: plan_for(ws, o), network_on=False).denials
    assert denial.suggestion is not None and denial.suggestion.flag is None
    assert f"readable would open {home}/.aws (cloud credentials)" in denial.suggestion.widens
