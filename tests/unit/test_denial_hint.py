"""The hint an untraced failed run gets (issue 14, item 5): one line naming a refused path's
access and rule, taken from `explain()`; nothing when no output line names a path the plan
restricts (no guessing)."""

from __future__ import annotations

from pathlib import Path

from conftest import plan_for

from sandboxtui.core.trace import denial_hint


def test_a_refusal_line_naming_a_restricted_path_is_explained(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / ".env").write_text("TOKEN=x\n")
    plan = plan_for(ws)
    cases = {
        "sh: 1: cannot create /etc/sbx: Read-only file system": ("/etc/sbx is ro", "read-only"),
        "cat: .env: Permission denied": (f"{ws}/.env is none", "sensitive path .env"),
        "PermissionError: [Errno 13] Permission denied: '.env'": (f"{ws}/.env is none",
                                                                 "sensitive"),
    }
    for output, (start, rule) in cases.items():
        hint = denial_hint(plan, f"building...\n{output}\nmake: *** [all] Error 1\n")
        assert hint is not None and hint.startswith(start) and rule in hint, (output, hint)
        assert "sandboxtui trace" in hint


def test_no_hint_without_a_path_the_plan_restricts(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    plan = plan_for(ws)
    for output in ("make: *** [all] Error 1",
                   f"cannot create {ws}/out: Read-only file system",  # the plan allows it
                   "ls: cannot open directory '/root': Permission denied",  # read: host modes
                   "Permission denied (publickey)."):
        assert denial_hint(plan, output) is None, output
