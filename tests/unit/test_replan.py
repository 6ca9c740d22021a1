"""Re-planning reuses the last scan's listings for the directories whose key (device, inode,
mtime, ctime) is unchanged, and makes exactly the plan a full scan makes, after every kind of
change to the workspace (issue 16 item 4). Planning runs as `nobody` when the tests run as
root, so that a directory made unreadable is unreadable to the scan."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sandboxtui.core import plan as plan_module
from sandboxtui.core.config import resolve
from sandboxtui.core.plan import Access, MountPlan, build_plan

SETTLE = 0.2  # seconds: the tests' stand-in for the real two-second settling time


@pytest.fixture(autouse=True)
def quick_settle(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plan_module, "_SETTLE_NS", int(SETTLE * 1e9))


@contextlib.contextmanager
def as_planner() -> Iterator[None]:
    """Plan as `nobody` when root (root's scan lists a directory whatever its mode)."""
    if os.geteuid() != 0:
        yield
        return
    os.seteuid(65534)
    try:
        yield
    finally:
        os.seteuid(0)


def plan(ws: Path, reuse: MountPlan | None = None) -> MountPlan:
    with as_planner():
        return build_plan(resolve(overrides=(), env={}), str(ws), {}, reuse=reuse)


def same(a: MountPlan, b: MountPlan) -> None:
    """The plans agree in everything a full scan decides (the scan's duration aside)."""
    assert a.rules == b.rules
    assert a.ops == b.ops
    assert a.diagnostics == b.diagnostics
    assert a.scan is not None and b.scan is not None
    assert {**vars(a.scan), "seconds": 0} == {**vars(b.scan), "seconds": 0}
    assert (a.walked, a.repos) == (b.walked, b.repos)


def decided(plan: MountPlan, path: str) -> Access:
    """The access of `path` itself (not of a symlink's target)."""
    rule = next((r for r in plan.rules if r.path == path), None)
    return plan.explain(path).access if rule is None else rule.access


@pytest.fixture
def ws() -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(prefix="sandboxtui-replan-"))
    base.chmod(0o755)
    ws = base / "ws"
    for d in ("src/pkg/mod/deep", "conf", "other/dir", "vendor/lib"):
        (ws / d).mkdir(parents=True)
    for f in ("README.md", "src/pkg/mod/a.py", "src/pkg/mod/deep/x.txt", "other/dir/f.txt",
              "vendor/lib/g.txt"):
        (ws / f).write_text("x\n")
    (ws / "conf" / ".env.local").write_text("SECRET=1\n")
    os.link(ws / "other/dir/f.txt", ws / "other/dir/f-link.txt")
    if os.geteuid() == 0:
        shutil.chown(base, "nobody")
        for path in [ws, *ws.rglob("*")]:
            os.chown(path, 65534, 65534, follow_symlinks=False)
    yield ws
    for path in [ws, *ws.rglob("*")]:
        if path.is_dir() and not path.is_symlink():
            path.chmod(0o755)
    shutil.rmtree(base)


def _utime_back(ws: Path) -> None:
    """A new .env, then the directory's mtime set back to what it was (ctime moves on)."""
    deep = ws / "src/pkg/mod/deep"
    before = deep.stat()
    (deep / ".env").write_text("SECRET=2\n")
    os.utime(deep, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert deep.stat().st_mtime_ns == before.st_mtime_ns


def _replace_in_place(ws: Path) -> None:
    (ws / "src/pkg/mod/a.py").write_text("changed\n")  # same inode, the directory untouched
    (ws / "other/dir/tmp").write_text("y\n")
    os.replace(ws / "other/dir/tmp", ws / "other/dir/f.txt")


def _dir_to_symlink(ws: Path) -> None:
    os.rename(ws / "src/pkg/mod", ws / "src/pkg/mod.old")
    (ws / "src/pkg/mod").symlink_to(ws / "conf")  # not followed: nothing found through it


def _hard_link_renamed_to_env(ws: Path) -> None:
    """f.txt and f-link.txt are one file: renaming one name to .env makes the other (in an
    unchanged directory) another name of a sensitive file."""
    os.rename(ws / "other/dir/f-link.txt", ws / "conf/.env")


# Each change, and what the re-plan must then show (beyond equalling a full plan).
CHANGES: dict[str, tuple[Callable[[Path], object], str | None, Access | None]] = {
    "new file at depth": (lambda ws: (ws / "src/pkg/mod/deep/new.txt").write_text("n\n"),
                          None, None),
    "new .env at depth": (lambda ws: (ws / "src/pkg/mod/deep/.env").write_text("S=1\n"),
                          "src/pkg/mod/deep/.env", Access.NONE),
    "delete .env": (lambda ws: (ws / "conf/.env.local").unlink(), "conf/.env.local", Access.RW),
    "rename a directory holding .env": (lambda ws: (ws / "conf").rename(ws / "other/conf2"),
                                        "other/conf2/.env.local", Access.NONE),
    "rename a file to .env": (lambda ws: (ws / "src/pkg/mod/a.py").rename(
        ws / "src/pkg/mod/.env"), "src/pkg/mod/.env", Access.NONE),
    "new directory holding .env": (lambda ws: (
        (ws / "src/pkg/new/inner").mkdir(parents=True),
        (ws / "src/pkg/new/inner/.env.prod").write_text("S=1\n")),
        "src/pkg/new/inner/.env.prod", Access.NONE),
    "delete a subtree": (lambda ws: shutil.rmtree(ws / "src/pkg"), None, None),
    "new nested .git": (lambda ws: (ws / "vendor/lib/.git").mkdir(), "vendor/lib/.git",
                        Access.RO),
    "symlink named .env": (lambda ws: (ws / "other/dir/.env").symlink_to(
        "../../vendor/lib/g.txt"), "vendor/lib/g.txt", Access.NONE),  # its target is hidden
    "directory swapped for a symlink": (_dir_to_symlink, "src/pkg/mod.old/a.py", Access.RW),
    "mtime set back with os.utime": (_utime_back, "src/pkg/mod/deep/.env", Access.NONE),
    "file replaced in place": (_replace_in_place, "other/dir/f.txt", Access.RW),
    "hard link renamed to .env": (_hard_link_renamed_to_env, "other/dir/f.txt", Access.NONE),
    "directory made unreadable": (lambda ws: (ws / "other/dir").chmod(0o000), "other/dir",
                                  Access.NONE),
    "parent made unsearchable": (lambda ws: (ws / "other").chmod(0o600), "other/dir",
                                 Access.NONE),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_replan_equals_a_full_plan_after_each_change(ws: Path, change: str) -> None:
    time.sleep(SETTLE + 0.05)
    first = plan(ws)
    reusable = {d for listings in first.scan_memo.values() for d in listings}
    assert f"{ws}/vendor/lib" in reusable and f"{ws}/src/pkg/mod/deep" in reusable
    apply, path, access = CHANGES[change]
    apply(ws)
    again = plan(ws, reuse=first)
    same(again, plan(ws))
    if path is not None:
        assert decided(again, f"{ws}/{path}") is access
    # the unchanged directories were not listed again
    reused = [d for memo in again.scan_memo.values() for d, listing in memo.items()
              if any(listing is old.get(d) for old in first.scan_memo.values())]
    assert f"{ws}/src" in reused or change == "delete a subtree"


def test_a_directory_changed_within_the_settling_time_is_listed_again(ws: Path) -> None:
    """A change in the same clock tick as the listing may leave the ctime unchanged: a
    directory whose ctime is that recent is not kept for reuse."""
    (ws / "conf/new.txt").write_text("n\n")
    first = plan(ws)
    assert all(f"{ws}/conf" not in memo for memo in first.scan_memo.values())
    time.sleep(SETTLE + 0.05)
    assert any(f"{ws}/conf" in memo for memo in plan(ws, reuse=first).scan_memo.values())


def test_a_changed_policy_does_not_reuse_another_patterns_listings(ws: Path) -> None:
    time.sleep(SETTLE + 0.05)
    first = plan(ws)
    with as_planner():
        policy = resolve(overrides=('sensitive_paths=["*.txt"]',), env={})
        again = build_plan(policy, str(ws), {}, reuse=first)
        full = build_plan(policy, str(ws), {})
    same(again, full)
    assert again.explain(f"{ws}/vendor/lib/g.txt").access is Access.NONE
