"""Settings in the user's own terms (issue 15, item 8): `plan --json` gives real JSON types,
the Settings panel TOML text, and filesystem entries keep their permission set's name and the
config's words (`read`, not `ro`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from sandboxtui.core.config import toml_text


def test_plan_json_settings_have_real_types_and_the_users_keys(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    (ws / "docs").mkdir(parents=True)
    config = tmp_path / "config.toml"
    config.write_text(f'default_permissions = "dev"\n[permissions.dev.filesystem]\n'
                      f'":workspace_roots" = "write"\n"{ws}/docs" = "read"\n')
    done = subprocess.run([sys.executable, "-m", "sandboxtui", "plan", "--json", "--config",
                           str(config), "--cwd", str(ws)], capture_output=True, text=True,
                          timeout=60, check=True)
    rows = {r["key"]: r["value"] for r in json.loads(done.stdout)["settings"]}
    assert rows["sandbox_workspace_write.network_access"] is False
    assert rows["sandbox_workspace_write.writable_roots"] == []
    assert rows["sensitive_paths"] == [".env", ".env.*"]
    assert rows["profile"] is None and rows["default_permissions"] == "dev"
    assert rows[f'permissions.dev.filesystem."{ws}/docs"'] == "read"
    assert rows['permissions.dev.filesystem.":workspace_roots"'] == "write"


def test_toml_text_writes_what_a_config_file_would() -> None:
    assert [toml_text(v) for v in (None, False, True, 3, "x", [".env", ".env.*"],
                                   {"mode": "full", "n": 1})] == [
        "(not set)", "false", "true", "3", "x", '[".env", ".env.*"]', '{ mode = "full", n = 1 }']
