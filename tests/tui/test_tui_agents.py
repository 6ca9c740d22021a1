"""The TUI on a Codex config (`sandboxtui --codex`): the Settings panel shows the Codex file,
each "Codex would … / sandboxtui adds …" line and, once, the ignored non-sandbox keys; the
palette's Strict command re-plans with sandboxtui's defaults on top."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from textual.widgets import DataTable
from tui_support import FIXED_CAPS, SIZE

from sandboxtui.app import SandboxApp
from sandboxtui.model import Options, load_workspace

pytestmark = pytest.mark.anyio

CODEX_CONFIG = """\
model = "gpt-5-codex"
approval_policy = "on-request"
sandbox_mode = "workspace-write"

[mcp_servers.docs]
command = "npx"
"""


def _rows(table: DataTable) -> list[list[str]]:
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


def _differences(rows: list[list[str]]) -> str:
    """The difference rows' text, continuation rows joined."""
    start = next(i for i, r in enumerate(rows) if r[0] == "(difference)")
    text = []
    for key, value, _ in rows[start:]:
        if key not in ("", "(difference)"):
            break
        text.append(value)
    return " ".join(text)


async def test_settings_show_codex_differences_and_strict(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    subprocess.run(["git", "init", "-q", str(ws)], check=True)
    (ws / ".env").write_text("K=1\n")
    config = tmp_path / "codex.toml"
    config.write_text(CODEX_CONFIG)
    workspace = load_workspace(Options(cwd=str(ws), codex=str(config)), FIXED_CAPS, {})
    app = SandboxApp(workspace, watch=False, socket_dir=None,
                     audit_path=str(tmp_path / "audit.jsonl"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("5")
        rows = _rows(app.query_one("#settings-table", DataTable))
        keys = [r[0] for r in rows]
        assert ["(Codex config)", str(config)] == rows[keys.index("(Codex config)")][:2]
        assert "Codex would let commands read and write .env and .env.* files (it masks " \
            "nothing by default) sandboxtui adds: denies them (sensitive_paths = " \
            '[".env", ".env.*"]) (not applied: --strict applies it)' in _differences(rows)
        start = keys.index("(not sandbox settings (ignored))")
        ignored = [r[1] for r in rows[start:] if r[0] in ("", "(not sandbox settings "
                                                                "(ignored))")]
        assert ignored == ["model", "approval_policy", "mcp_servers.docs.command"]
        assert rows[start][2] == f"{config}:1"
        assert app.workspace.plan.explain(str(ws / ".env")).access.value == "rw"

        strict = next(c for c in app.get_system_commands(app.screen)
                      if c.title == "Strict: on")
        strict.callback()
        await pilot.pause()
        assert app.workspace.options.strict
        assert app.workspace.plan.explain(str(ws / ".env")).access.value == "none"
        rows = _rows(app.query_one("#settings-table", DataTable))
        assert '".env.*"]) (applied)' in _differences(rows)
