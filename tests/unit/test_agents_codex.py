"""`--codex`: real-looking Codex config files become sandboxtui policies (core/agents/codex.py),
with file:line provenance, the non-sandbox keys listed, and errors naming file:line and key."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sandboxtui.core.agents import resolve_policy
from sandboxtui.core.agents.codex import codex_profiles
from sandboxtui.core.config import ConfigError
from sandboxtui.core.diagnostics import Capabilities
from sandboxtui.core.plan import build_plan
from sandboxtui.core.policy import NetworkMode, SandboxMode
from sandboxtui.model import Options, load_workspace

FIXED_CAPS = Capabilities(
    system_bwrap_path="/usr/bin/bwrap", system_bwrap=True, vendored_bwrap=None,
    bwrap_error=None, landlock_abi=4, seccomp=True)

USER_CONFIG = """\
model = "gpt-5-codex"
model_reasoning_effort = "high"
approval_policy = "on-request"
sandbox_mode = "workspace-write"

[sandbox_workspace_write]
writable_roots = ["{extra}"]
network_access = true
exclude_slash_tmp = true

[features]
use_legacy_landlock = false
web_search_request = true

[mcp_servers.docs]
command = "npx"
args = ["-y", "docs-server"]

[tui]
notifications = true

[projects."{ws}"]
trust_level = "trusted"
"""

PROFILE_CONFIG = """\
model = "o3"
default_permissions = "dev"

[permissions.base]
extends = ":workspace"

[permissions.base.network]
enabled = true

[permissions.base.network.domains]
"pypi.org" = "allow"

[permissions.dev]
extends = "base"
description = "edit the project, never the secrets"

[permissions.dev.filesystem]
glob_scan_max_depth = 3
"{ws}/secret" = "none"
"{ws}/secret/open" = "write"
":project_roots" = {{ "." = "write", "docs" = "read", "**/*.pem" = "deny" }}
"~/.ssh" = "none"
"""


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    for d in ("docs", "secret/open", "sub/.git", ".git", "extra"):
        (ws / d).mkdir(parents=True)
    (ws / ".env").write_text("K=1\n")
    (ws / "key.pem").write_text("k\n")
    return ws


def codex(ws: Path, text: str, *, env: dict[str, str] | None = None, **kw: object):
    home = ws.parent / "codex-home"
    home.mkdir(exist_ok=True)
    (home / "config.toml").write_text(text.format(ws=ws, extra=ws / "extra"))
    env = {"HOME": str(ws.parent), "CODEX_HOME": str(home), **(env or {})}
    return resolve_policy(cwd=str(ws), codex="", env=env, **kw)  # type: ignore[arg-type]


def access(policy, ws: Path, path: str) -> str:
    return build_plan(policy, str(ws), {}).explain(str(ws / path)).access.value


def test_legacy_settings_with_provenance_and_ignored_keys(ws: Path) -> None:
    policy = codex(ws, USER_CONFIG)
    config = ws.parent / "codex-home" / "config.toml"
    assert policy.mode is SandboxMode.WORKSPACE_WRITE
    assert policy.writable_roots == (str(ws / "extra"),)
    assert policy.network is NetworkMode.ON and policy.exclude_slash_tmp
    assert str(policy.source("sandbox_mode")) == f"{config}:4"
    assert str(policy.source("sandbox_workspace_write.network_access")) == f"{config}:8"
    ignored = dict(policy.agent.ignored)
    assert {"model", "approval_policy", "mcp_servers.docs.command", "tui.notifications",
            "features.web_search_request"} <= set(ignored)
    assert ignored["model"] == f"{config}:1"
    assert "sandbox_mode" not in ignored
    # Codex's semantics: .env readable and writable, nested .git writable, .aws protected
    assert access(policy, ws, ".env") == "rw"
    assert access(policy, ws, "sub/.git/config") == "rw"
    assert access(policy, ws, ".aws") == "ro"
    assert access(policy, ws, ".git/config") == "ro"


def test_strict_adds_sandboxtui_defaults(ws: Path) -> None:
    policy = codex(ws, USER_CONFIG, strict=True)
    assert access(policy, ws, ".env") == "none"
    assert access(policy, ws, "sub/.git/config") == "ro"
    lines = [d.line("Codex") for d in policy.agent.differences]
    assert any(line.startswith("Codex would let commands read and write .env") and
               "(applied)" in line for line in lines)
    relaxed = codex(ws, USER_CONFIG)
    assert any("not applied: --strict applies it" in d.line("Codex")
               for d in relaxed.agent.differences)


def test_permission_profile_extends_builtin_with_nested_entries(ws: Path) -> None:
    policy = codex(ws, PROFILE_CONFIG)
    assert policy.default_permissions == "dev"
    assert policy.network is NetworkMode.OFF  # `base`'s, with domain rules: see below
    assert access(policy, ws, "x") == "rw"
    assert access(policy, ws, "docs/a.md") == "ro"
    assert access(policy, ws, "secret/k") == "none"
    assert access(policy, ws, "secret/open/k") == "rw"
    assert access(policy, ws, "key.pem") == "none"
    plan = build_plan(policy, str(ws), {})
    assert plan.explain("/tmp/x").access.value == "rw"  # :workspace's :slash_tmp
    assert plan.explain(os.path.expanduser("~/.ssh/id")).access.value == "none"
    assert plan.explain("/etc/passwd").access.value == "ro"
    config = ws.parent / "codex-home" / "config.toml"
    entry = next(e for e in policy.fs_entries if e.path == str(ws / "secret"))
    assert str(entry.provenance) == f"{config}:19"
    late = next(d for d in plan.diagnostics if d.code == "sensitive-after-launch")
    assert f"({ws}/**/*.pem)" in late.cause  # Codex masks nothing else: its deny globs
    builtin = next(e for e in policy.fs_entries if e.path == ":slash_tmp")
    assert str(builtin.provenance) == "Codex built-in :workspace"
    # the domain allowlist is named, and never becomes a fully open network
    assert any("pypi.org" in d.line("Codex") and "network off" in d.line("Codex")
               and d.applied for d in policy.agent.differences)


@pytest.mark.parametrize("strict", [False, True])
@pytest.mark.parametrize(("proxy", "network"), [(False, NetworkMode.OFF),
                                                (True, NetworkMode.PROXY)])
def test_domain_rules_never_open_the_whole_network(ws: Path, proxy: bool, network: NetworkMode,
                                                   strict: bool) -> None:
    """A domain list sandboxtui cannot filter by: proxy mode when Codex's own proxy would
    enforce it (features.network_proxy), else no network; applied with or without --strict."""
    text = ('default_permissions = "p"\n[features]\n'
            f'network_proxy = {str(proxy).lower()}\n[permissions.p]\n'
            'extends = ":workspace"\n[permissions.p.network]\nenabled = true\n'
            'domains = {{ "example.com" = "allow" }}\n')
    policy = codex(ws, text, strict=strict)
    assert policy.network is network
    note = next(d for d in policy.agent.differences if "example.com" in d.agent_would)
    assert note.applied and "(applied)" in note.line("Codex")


@pytest.mark.parametrize(("builtin", "mode", "writable"), [
    (":read-only", SandboxMode.READ_ONLY, "ro"),
    (":workspace", SandboxMode.READ_ONLY, "rw"),  # writes from its entries
    (":danger-full-access", SandboxMode.DANGER_FULL_ACCESS, "rw"),
])
def test_builtin_profiles(ws: Path, builtin: str, mode: SandboxMode, writable: str) -> None:
    policy = codex(ws, f'default_permissions = "{builtin}"\n')
    assert policy.mode is mode
    assert access(policy, ws, "x") == writable


def test_restricted_read_without_root_entry(ws: Path) -> None:
    policy = codex(ws, 'default_permissions = "p"\n[permissions.p.filesystem]\n'
                       '":minimal" = "read"\n":project_roots" = "write"\n')
    # :minimal is the platform defaults, whose symlinks (/lib64 -> usr/lib64) an empty root
    # needs to run anything
    assert policy.read_access.include_platform_defaults
    assert not any(e.path == ":minimal" for e in policy.fs_entries)
    assert any("empty root" in d.agent_would for d in policy.agent.differences)
    plan = build_plan(policy, str(ws), {})
    assert plan.explain("/srv/x").access.value == "none"
    assert plan.explain("/usr/bin/env").access.value == "ro"
    assert plan.explain(str(ws / "x")).access.value == "rw"


def test_legacy_wins_over_default_permissions(ws: Path) -> None:
    policy = codex(ws, 'sandbox_mode = "read-only"\ndefault_permissions = ":workspace"\n')
    assert policy.mode is SandboxMode.READ_ONLY and not policy.fs_entries
    assert "default_permissions" in dict(policy.agent.ignored)


def test_layers_profile_file_overrides_and_sandbox_flag(ws: Path) -> None:
    home = ws.parent / "codex-home"
    home.mkdir()
    (home / "fast.config.toml").write_text('sandbox_mode = "workspace-write"\n')
    policy = codex(ws, 'sandbox_mode = "read-only"\n', profile="fast")
    assert policy.mode is SandboxMode.WORKSPACE_WRITE
    assert str(policy.source("sandbox_mode")) == f"{home / 'fast.config.toml'}:1"
    policy = codex(ws, 'sandbox_mode = "read-only"\n', profile="fast",
                   overrides=["sandbox_workspace_write.network_access=true", "model=o3-mini"])
    assert policy.network is NetworkMode.ON
    assert str(policy.source("sandbox_workspace_write.network_access")).startswith("-c ")
    policy = codex(ws, 'sandbox_mode = "workspace-write"\n', sandbox_mode="read-only")
    assert policy.mode is SandboxMode.READ_ONLY
    assert str(policy.source("sandbox_mode")) == "--sandbox read-only"


def test_profile_picker_lists_name_config_files(ws: Path) -> None:
    home = ws.parent / "codex-home"
    home.mkdir()
    for name in ("config.toml", "fast.config.toml", "review.config.toml", "notes.toml"):
        (home / name).write_text("")
    assert codex_profiles(home / "config.toml") == ("fast", "review")
    options = Options(cwd=str(ws), codex=str(home / "config.toml"))
    assert load_workspace(options, FIXED_CAPS, {}).profiles == ("fast", "review")


def test_project_config_only_when_trusted(ws: Path) -> None:
    (ws / ".codex").mkdir()
    (ws / ".codex" / "config.toml").write_text(
        'sandbox_mode = "read-only"\nmodel_provider = "evil"\n')
    untrusted = codex(ws, 'sandbox_mode = "workspace-write"\n')
    assert untrusted.mode is SandboxMode.WORKSPACE_WRITE
    assert any("trusted" in where for _, where in untrusted.agent.ignored)
    trusted = codex(ws, f'sandbox_mode = "workspace-write"\n[projects."{ws}"]\n'
                        'trust_level = "trusted"\n')
    assert trusted.mode is SandboxMode.READ_ONLY
    assert str(trusted.source("sandbox_mode")) == f"{ws / '.codex' / 'config.toml'}:1"
    where = dict(trusted.agent.ignored)["model_provider"]
    assert "ignored by Codex in a project config" in where


@pytest.mark.parametrize(("text", "line", "key", "message"), [
    ('model = "o3"\nsandbox_mode = "workspace-wrte"\n', 2, "sandbox_mode", "unknown variant"),
    ('[sandbox_workspace_write]\nnetwork_access = "yes"\n', 2,
     "sandbox_workspace_write.network_access", "expected true or false"),
    ('[sandbox_workspace_write]\nwritable_roots = ["rel/dir"]\n', 2,
     "sandbox_workspace_write.writable_roots", "absolute"),
    ('default_permissions = "nope"\n', 1, "default_permissions", "undefined profile `nope`"),
    ('default_permissions = ":danger-no-sandbox"\n', 1, "default_permissions",
     "unknown built-in profile"),
    ('default_permissions = "a"\n[permissions.a]\nextends = "b"\n[permissions.b]\n'
     'extends = "a"\n', 5, "permissions.b.extends", "cycle detected: a -> b -> a"),
    ('default_permissions = "a"\n[permissions.a.filesystem]\n"/srv" = "read-write"\n', 3,
     'permissions.a.filesystem."/srv"', "expected read, write, none or deny"),
    ('default_permissions = "a"\n[permissions.a.filesystem]\n"docs" = "read"\n', 3,
     "permissions.a.filesystem.docs", "absolute"),
    ('default_permissions = "a"\n[permissions.a]\nfilesytem = {}\n', 3,
     "permissions.a.filesytem", "unknown field"),
    *[('default_permissions = "a"\n[permissions.a.filesystem]\n'
       f'":project_roots" = {{ "." = "write", "{sub}" = "write" }}\n', 3,
       f'permissions.a.filesystem.":project_roots".{key}',
       f"subpath `{sub}` must be a descendant path")
      for sub, key in (("../outside", '"../outside"'), ("/etc/cron.d", '"/etc/cron.d"'),
                       ("", '""'), ("./x", '"./x"'))],
    ('default_permissions = 5\n', 1, "default_permissions", "expected a profile name"),
    ('default_permissions = "a"\n[permissions.a]\nextends = 5\n', 3, "permissions.a.extends",
     "expected a profile name"),
    ('profile = "fast"\n', 1, "profile", "no longer supported"),
    ('sandbox_mode = \n', 1, "", "invalid TOML"),
])
def test_errors_name_file_line_and_key(ws: Path, text: str, line: int, key: str,
                                       message: str) -> None:
    with pytest.raises(ConfigError) as err:
        codex(ws, text.replace("{", "{{").replace("}", "}}"))
    config = ws.parent / "codex-home" / "config.toml"
    assert err.value.origin == f"{config}:{line}"
    assert err.value.key == key
    assert message in err.value.message


def test_sandboxtui_own_keys_with_c(ws: Path) -> None:
    """Keys Codex does not have (limits, system_bwrap, ...) apply from -c, as in sandboxtui's
    config; Codex's own keys stay Codex's."""
    policy = codex(ws, 'sandbox_mode = "workspace-write"\n',
                   overrides=["limits.cpu_seconds=5", 'system_bwrap="/opt/bwrap"'])
    assert policy.limits.cpu_seconds == 5 and policy.system_bwrap == "/opt/bwrap"
    assert str(policy.source("limits.cpu_seconds")) == "-c limits.cpu_seconds=5"
    assert policy.mode is SandboxMode.WORKSPACE_WRITE
    with pytest.raises(ConfigError) as err:
        codex(ws, "", overrides=["limits.cpu_seconds=-1"])
    assert err.value.key == "limits.cpu_seconds"


def test_huge_project_config_is_a_config_error(ws: Path) -> None:
    """A project's file is anyone's: a huge one is refused, not read into memory."""
    trusted = f'sandbox_mode = "workspace-write"\n[projects."{ws}"]\ntrust_level = "trusted"\n'
    (ws / ".codex").mkdir()
    project = ws / ".codex" / "config.toml"
    project.write_text("# " + "x" * (2 << 20) + "\n")
    with pytest.raises(ConfigError) as err:
        codex(ws, trusted)
    assert err.value.origin == str(project) and "larger than" in err.value.message
