"""The warnings panel on a machine with Ubuntu's user-namespace restriction: the probe's real
test launch of a bwrap that fails as Ubuntu's does, and the panel names AppArmor, the sysctl
and the remedies; launches are refused (Pilot, 80x24 too)."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console
from textual.widgets import Static
from tui_support import demo_at, make_app

from sandboxtui.core.diagnostics import probe
from sandboxtui.core.userns import RESTRICT_SYSCTL
from sandboxtui.widgets.warnings import WarningsPanel

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("size", [(160, 50), (80, 24)])
async def test_warnings_name_the_apparmor_restriction(tmp_path: Path,
                                                      size: tuple[int, int]) -> None:
    standin = tmp_path / "bwrap"
    standin.write_text("#!/bin/sh\necho 'bwrap: setting up uid map: Permission denied' >&2\n"
                       "exit 1\n")
    standin.chmod(0o755)
    ws, config = demo_at(tmp_path / "demo")
    app = make_app(ws, config, tmp_path, caps=probe(str(standin)))
    async with app.run_test(size=size) as pilot:
        await pilot.press("4")
        assert not app.workspace.can_launch
        body = app.query_one(WarningsPanel).query_one("#warnings-body", Static)
        console = Console(width=size[0], record=True, color_system=None)
        console.print(body.content)
        text = console.export_text()
        assert "REFUSED" in text and "AppArmor" in text and "userns" in text
        first = app.workspace.diagnostics[0]  # the most severe first
        assert first.code == "userns-apparmor" and RESTRICT_SYSCTL in first.cause
        assert "(1) an AppArmor profile" in first.remedy and "(4) last" in first.remedy
