"""`--claude`: Claude Code's sandbox settings (user, project, local; or an srt --settings file)
become sandboxtui policies (core/agents/claude.py), errors naming file:line and key."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from sandboxtui.core.agents import resolve_policy
from sandboxtui.core.agents.claude import MANAGED_VARIABLE
from sandboxtui.core.config import ConfigError
from sandboxtui.core.plan import build_plan
from sandboxtui.core.policy import NetworkMode, SandboxMode


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    for d in ("secrets", "vendor", ".claude", "out", "sub/.git"):
        (ws / d).mkdir(parents=True)
    (ws / ".env").write_text("K=1\n")
    (ws / ".bashrc").write_text("alias x=y\n")
    home = tmp_path / "home" / ".claude"
    home.mkdir(parents=True)
    (home / "settings.json").write_text(json.dumps({
        "model": "opus", "permissions": {"allow": ["Bash(ls:*)"]},
        "sandbox": {"enabled": True, "filesystem": {"denyRead": [str(ws / "secrets")]}},
    }, indent=2))
    (ws / ".claude" / "settings.json").write_text(json.dumps({
        "sandbox": {"filesystem": {"denyWrite": ["vendor"]},
                    "network": {"allowedDomains": ["github.com"]}},
    }, indent=2))
    (ws / ".claude" / "settings.local.json").write_text(json.dumps({
        "sandbox": {"filesystem": {"allowWrite": [str(tmp_path / "out2")],
                                   "denyRead": ["./out"]},
                    "autoAllowBashIfSandboxed": True},
    }, indent=2))
    (tmp_path / "out2").mkdir()
    return ws


def claude(ws: Path, settings: str = "", **kw: object):
    env = {"HOME": str(ws.parent / "home")}
    return resolve_policy(cwd=str(ws), claude=settings, env=env, **kw)  # type: ignore[arg-type]


def test_three_files_merged_lists_joined(ws: Path) -> None:
    policy = claude(ws)
    plan = build_plan(policy, str(ws), {})
    assert policy.mode is SandboxMode.WORKSPACE_WRITE
    assert plan.explain(str(ws / "secrets" / "k")).access.value == "none"  # user
    assert plan.explain(str(ws / "out" / "k")).access.value == "none"  # local, joined
    assert plan.explain(str(ws / "vendor" / "k")).access.value == "ro"  # project
    assert plan.explain(str(ws.parent / "out2" / "k")).access.value == "rw"
    assert plan.explain(str(ws / "x")).access.value == "rw"
    assert plan.explain(str(ws / ".env")).access.value == "rw"  # Claude masks nothing
    assert plan.explain(str(ws / ".claude" / "settings.json")).access.value == "ro"
    assert plan.explain(str(ws / ".bashrc")).access.value == "ro"
    entry = next(e for e in policy.fs_entries if e.path.endswith("secrets"))
    assert str(entry.provenance) == f"{ws.parent / 'home' / '.claude' / 'settings.json'}:11"
    ignored = dict(policy.agent.ignored)
    assert {"model", "permissions.allow", "sandbox.autoAllowBashIfSandboxed"} <= set(ignored)


def test_allowed_domains_map_to_proxy_mode_and_are_named(ws: Path) -> None:
    policy = claude(ws)
    assert policy.network is NetworkMode.PROXY
    assert any("github.com" in d.line("Claude Code") and "NOT enforced" in
               d.line("Claude Code") for d in policy.agent.differences)


def test_strict_masks_env(ws: Path) -> None:
    policy = claude(ws, strict=True)
    assert build_plan(policy, str(ws), {}).explain(str(ws / ".env")).access.value == "none"


def test_srt_settings_file(ws: Path) -> None:
    srt = ws.parent / "srt.json"
    srt.write_text(json.dumps({"filesystem": {"denyRead": ["~/.ssh"], "allowWrite": ["."],
                                              "denyWrite": [".git/hooks"]},
                               "network": {"allowedDomains": [],
                                           "allowUnixSockets": ["/var/run/docker.sock"]}}))
    policy = claude(ws, str(srt))
    assert policy.mode is SandboxMode.WORKSPACE_WRITE and policy.network is NetworkMode.OFF
    assert any("docker.sock" in d.line("Claude Code") for d in policy.agent.differences)


def test_sandbox_disabled_runs_unsandboxed(ws: Path) -> None:
    settings = ws.parent / "off.json"
    settings.write_text(json.dumps({"sandbox": {"enabled": False}}))
    assert claude(ws, str(settings)).mode is SandboxMode.DANGER_FULL_ACCESS


@pytest.mark.parametrize(("text", "line", "key", "message"), [
    ('{\n  "sandbox": {\n    "enabled": true,\n    "filesystem": {\n'
     '      "allowWrite": "out"\n    }\n  }\n}\n', 5, "sandbox.filesystem.allowWrite",
     "expected a list"),
    ('{\n  "sandbox": {\n    "filesystem": {\n      "allowWrite": ["out/*"]\n    }\n  }\n}\n',
     4, "sandbox.filesystem.allowWrite", "not globs"),
    ('{\n  "sandbox": {,\n}\n', 2, "", "invalid JSON"),
])
def test_errors_name_file_line_and_key(ws: Path, text: str, line: int, key: str,
                                       message: str) -> None:
    settings = ws.parent / "bad.json"
    settings.write_text(text)
    with pytest.raises(ConfigError) as err:
        claude(ws, str(settings))
    assert err.value.origin == f"{settings}:{line}"
    assert err.value.key == key
    assert message in err.value.message


def test_claude_and_codex_exclude_each_other(ws: Path) -> None:
    with pytest.raises(ConfigError, match="exclude each other"):
        resolve_policy(cwd=str(ws), claude="", codex="", env={})


def test_no_settings_found_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no Claude Code settings found"):
        resolve_policy(cwd=str(tmp_path), claude="", env={"HOME": str(tmp_path)})


def test_managed_settings_win(ws: Path, tmp_path: Path) -> None:
    """/etc/claude-code/managed-settings.json (moved by the variable for the test) has the
    highest precedence, its lists joined with the others."""
    managed = tmp_path / "managed.json"
    managed.write_text(json.dumps({"sandbox": {"filesystem": {"denyRead": ["./vendor"]}}}))
    env = {"HOME": str(ws.parent / "home"), MANAGED_VARIABLE: str(managed)}
    policy = resolve_policy(cwd=str(ws), claude="", env=env)
    assert policy.agent.files[-1] == str(managed)
    plan = build_plan(policy, str(ws), {})
    assert plan.explain(str(ws / "vendor" / "k")).access.value == "none"  # project's: ro
    assert plan.explain(str(ws / "secrets" / "k")).access.value == "none"  # user's, joined
    managed.write_text(json.dumps({"sandbox": {"enabled": False}}))
    admin = resolve_policy(cwd=str(ws), claude="", env=env)
    assert admin.mode is SandboxMode.DANGER_FULL_ACCESS and not admin.agent.unsandboxed_by


def test_project_file_turning_the_sandbox_off_is_named(ws: Path) -> None:
    """The project's `enabled: false` against the user's `true` is named (its plan refuses
    launches); the user's own `false` is not."""
    local = ws / ".claude" / "settings.local.json"
    local.write_text(json.dumps({"sandbox": {"enabled": False}}))
    policy = claude(ws)
    assert policy.mode is SandboxMode.DANGER_FULL_ACCESS
    assert policy.agent.unsandboxed_by == f"{local}:1"
    refusal = next(d for d in build_plan(policy, str(ws), {}).diagnostics
                   if d.code == "agent-project-unsandboxed")
    assert str(local) in refusal.cause and refusal.severity.value == "error"
    local.write_text(json.dumps({"sandbox": "off"}))  # replaces the user's whole sandbox
    assert claude(ws).agent.unsandboxed_by == f"{ws / '.claude' / 'settings.json'}, {local}"
    local.unlink()
    home = ws.parent / "home" / ".claude" / "settings.json"
    home.write_text(json.dumps({"sandbox": {"enabled": False}}))
    mine = claude(ws)
    assert mine.mode is SandboxMode.DANGER_FULL_ACCESS and not mine.agent.unsandboxed_by
    assert build_plan(mine, str(ws), {}).enforceable


def test_a_fifo_settings_file_never_blocks(ws: Path) -> None:
    local = ws / ".claude" / "settings.local.json"
    local.unlink()
    os.mkfifo(local)
    with pytest.raises(ConfigError) as err:
        claude(ws)
    assert err.value.origin == str(local) and "not a regular file" in err.value.message
