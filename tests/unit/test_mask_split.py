"""Which mount ops the mask stage takes from bwrap (core/mask_stage.split_ops), and that the
plan, explain() and `--dry-run` still show every mask whoever mounts it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import plan_for

from sandboxtui.core.launch import prepare
from sandboxtui.core.mask_stage import split_ops
from sandboxtui.core.plan import OpKind
from sandboxtui.core.policy import Access


def test_the_plan_and_the_dry_run_still_show_every_mask(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    for i in range(50):
        (ws / f"p{i}").mkdir(parents=True)
        (ws / f"p{i}" / ".env.example").write_text("x")
    plan = plan_for(ws, config=None)
    masks = [op for op in plan.ops if op.kind is OpKind.DENY_FILE and op.dest.startswith(str(ws))]
    assert len(masks) == 50
    split = split_ops(plan)
    # All but bwrap's one are staged; staged or not, explain() names the same op.
    assert split.source is not None
    assert {op.dest for op in masks} <= {op.dest for op in split.staged} | {split.source.dest}
    assert len(split.bwrap) < 40  # bwrap's share does not grow with the masks
    for op in masks:
        explained = plan.explain(op.dest)
        assert explained.access is Access.NONE and op in explained.ops
    spec = prepare(plan, ["true"])
    shown = "\n".join(spec.enforcer.describe(spec))
    assert "mounted by the mask stage" in shown
    assert all(f"--ro-bind <empty file, mode 000> {op.dest}" in shown for op in masks)
    planned = json.loads(subprocess.run(
        [sys.executable, "-m", "sandboxtui", "plan", "--json", "--config", "/dev/null", "--cwd",
         str(ws)],
        capture_output=True, text=True, check=True).stdout)
    assert sum(o["dest"].endswith("/.env.example") for o in planned["ops"]) == 50


def test_the_split_never_stages_above_a_bwrap_mount(tmp_path: Path) -> None:
    """A staged pin has no bwrap mount beneath it (it would cover it), and lies in a bind of
    the same path; nothing in /proc, /dev or a denied directory is staged."""
    ws = tmp_path / "ws"
    (ws / "a" / "b" / ".git").mkdir(parents=True)
    (ws / "a" / "b" / ".env").write_text("x")
    (ws / "a" / "c").mkdir()
    (ws / "a" / "c" / ".env").write_text("x")
    (ws / "d" / "secret").mkdir(parents=True)
    (ws / "d" / ".env.x").write_text("x")
    plan = plan_for(ws, 'sensitive_paths=[".env", ".env.*", "secret"]', config=None)
    split = split_ops(plan)
    bwrap_dests = [op.dest for op in split.bwrap]
    for op in split.staged:
        assert op.kind in (OpKind.DENY_FILE, OpKind.BIND)
        assert not any(d.startswith(op.dest + "/") for d in bwrap_dests), op
        assert not op.dest.startswith(("/proc/", "/dev/"))
    assert f"{ws}/a/c/.env" in {op.dest for op in split.staged}
    assert f"{ws}/a/b" not in {op.dest for op in split.staged}  # its .git is bwrap's
