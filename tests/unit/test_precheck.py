"""The sensitive-path precheck over real workspaces: every spelling, each mode, false positives."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import plan_for

from sandboxtui.core.config import resolve
from sandboxtui.core.plan import build_plan
from sandboxtui.core.policy import PrecheckMode
from sandboxtui.core.precheck import precheck


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    w = tmp_path / "ws"
    (w / "sub" / "dir").mkdir(parents=True)
    (w / ".env").write_text("TOKEN=1\n")
    (w / "sub" / "dir" / ".env").write_text("TOKEN=2\n")
    (w / ".env.local").write_text("TOKEN=3\n")
    (w / "environment.txt").write_text("not a secret\n")
    (w / ".envrc").write_text("use nix\n")
    (w / "README.md").write_text("hi\n")
    return w


SENSITIVE_SPELLINGS = [
    ["cat", ".env"],
    ["cat", "./.env"],
    ["cat", "sub/dir/.env"],
    ["cat", "sub/../.env"],
    ["cat", "{ws}/.env"],
    ["cat", "{ws}/sub/dir/.env"],
    ["cat", ".env.local"],
    ["cat", ".env.example"],  # `.env.*` matches it: a sensitive name even if absent
    ["cat", "~/.env"],
    ["cat", "$HOME/.env"],
    ["tool", "--file=.env"],
    ["tool", "--env-file", "sub/dir/.env"],
    ["curl", "-d", "@.env", "http://127.0.0.1/"],
    ["scp", "host:.env", "."],
    ["env", "FOO=.env", "true"],
    ["sh", "-c", "cat <.env"],
    ["sh", "-c", "echo x >>.env"],
    ["bash", "-c", "ls 2>./x/.env"],
    ["bash", "-lc", "cat '.e'nv | wc -c"],
    ["sh", "-c", "FOO=$(cat sub/dir/.env); echo $FOO"],
    ["sh", "-c", "sh -c 'cat \"./.env\"'"],
    ["sh", "-c", "cat `echo .env`"],
    ["python3", "-c", "print(open('.env').read())"],
    ["sh", "-c", "echo \"unterminated .env"],
]


@pytest.mark.parametrize("argv", SENSITIVE_SPELLINGS, ids=lambda a: " ".join(a))
def test_spellings_are_flagged(ws: Path, argv: list[str]) -> None:
    plan = plan_for(ws)
    result = precheck([a.replace("{ws}", str(ws)) for a in argv], plan)
    assert result.mode is PrecheckMode.ASK
    assert result.matched, argv
    assert any(os.path.basename(p).startswith(".env") for p in result.paths)
    hit = result.hits[0]
    assert "sensitive_paths glob" in hit.rule and hit.provenance == "default"


@pytest.mark.parametrize("argv", [
    ["cat", "environment.txt"],
    ["cat", ".envrc"],
    ["direnv", "allow", ".envrc"],
    ["cat", "README.md", "env"],
    ["printenv"],
    ["sh", "-c", "cat environment.txt > out.env_txt"],
    ["grep", "-r", "ENV", "."],
    ["cat", "my.env"],
    ["ls", "-la", ".env-example"],
], ids=lambda a: " ".join(a))
def test_false_positives_are_not_flagged(ws: Path, argv: list[str]) -> None:
    result = precheck(argv, plan_for(ws))
    assert not result.matched, result.describe()


def test_relative_spelling_resolves_against_cwd(ws: Path) -> None:
    plan = plan_for(ws)
    hit = precheck(["cat", "../../.env"], plan, cwd=str(ws / "sub" / "dir")).hits[0]
    assert hit.path == str(ws / ".env")
    assert hit.enforced  # the plan masks it too


def test_outside_workspace_is_flagged_but_marked_unenforced(ws: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / ".env").write_text("X=1\n")
    result = precheck(["cat", str(other / ".env")], plan_for(ws))
    assert result.paths == (str(other / ".env"),)
    assert not result.hits[0].enforced
    assert "outside the sandbox's masked set" in result.describe()


def test_symlink_to_sensitive_file_is_flagged_by_the_plan(ws: Path) -> None:
    os.symlink(".env", ws / "innocent")
    result = precheck(["cat", "innocent"], plan_for(ws))
    assert result.paths == (str(ws / ".env"),)
    assert result.hits[0].enforced


def test_plan_denied_entry_is_flagged_with_its_rule(ws: Path) -> None:
    (ws / "secrets").mkdir()
    (ws / "secrets" / "id_key").write_text("KEY\n")
    plan = plan_for(ws, config=f'default_permissions = "p"\n[permissions.p.filesystem]\n'
                              f'"{ws}/secrets" = "none"\n')
    hit = precheck(["cat", "secrets/id_key"], plan).hits[0]
    assert hit.path == str(ws / "secrets" / "id_key")
    assert "filesystem entry" in hit.rule and "config.toml" in hit.provenance


def test_restricted_read_root_is_not_a_hit(ws: Path) -> None:
    plan = plan_for(ws, 'read_access={mode="restricted"}')
    assert not precheck(["cat", "/srv/data.txt", "/home/x/notes"], plan).matched


def test_custom_glob_with_slash_and_provenance(ws: Path) -> None:
    (ws / "config").mkdir()
    plan = plan_for(ws, 'sensitive_paths=["config/*.json"]')
    assert precheck(["cat", "config/db.json"], plan).matched
    assert precheck(["cat", "./config/../config/db.json"], plan).hits[0].provenance.startswith("-c")
    assert not precheck(["cat", "db.json", ".env"], plan).matched  # .env no longer listed


def test_workspace_under_a_sensitive_named_directory(tmp_path: Path) -> None:
    ws = tmp_path / ".env.d" / "ws"
    ws.mkdir(parents=True)
    plan = plan_for(ws)
    assert not precheck(["cat", "README.md", str(ws / "README.md")], plan).matched
    assert precheck(["cat", ".env"], plan).matched


def test_block_mode_reports_the_path(ws: Path) -> None:
    result = precheck(["cat", ".env"], plan_for(ws, 'sensitive_path_precheck_mode="block"'))
    assert result.mode is PrecheckMode.BLOCK
    assert result.paths == (str(ws / ".env"),)


def test_off_mode_skips(ws: Path) -> None:
    result = precheck(["cat", ".env"], plan_for(ws, 'sensitive_path_precheck_mode="off"'))
    assert result.skipped and not result.matched


def test_profile_sets_the_mode(ws: Path) -> None:
    config = '[profiles.strict]\nsensitive_path_precheck_mode = "block"\n'
    cfg = ws.parent / "config.toml"
    cfg.write_text(config)
    plan = build_plan(resolve(config_path=cfg, profile="strict"), str(ws), {})
    assert precheck(["cat", ".env"], plan).mode is PrecheckMode.BLOCK


def test_globs_with_a_slash_match_as_the_plan_applies_them(ws: Path, tmp_path: Path) -> None:
    """Gitignore's semantics (core/globs.py): `**/x` at depth zero too, absolute globs against
    absolute paths, even for files that do not exist yet (so the plan cannot deny them)."""
    keys = tmp_path / "keys"
    plan = plan_for(ws, config=f'sensitive_paths = ["**/*.pem", "{keys}/*.key"]\n')
    for word in ("new.pem", "sub/new.pem", f"{keys}/new.key"):
        assert precheck(["cat", word], plan).paths, word
    for word in (f"{keys}/deeper/new.key", "new.key"):
        assert not precheck(["cat", word], plan).paths, word


def test_hidden_proc_kernel_files_and_blocked_names_ask_for_nothing(ws: Path) -> None:
    """Denied by the plan, but no secret of the user's: /proc under --no-proc, the masked
    host kernel files, a missing protected name (its placeholder). A sensitive file still asks."""
    plan = plan_for(ws)
    hidden = build_plan(plan.policy, str(ws), {}, mount_proc=False)
    assert not precheck(["ls", "/proc"], hidden).hits
    assert not precheck(["cat", "/proc/keys", "/proc/timer_list"], plan).hits
    assert not precheck(["ls", ".agents", ".git"], plan).hits
    assert precheck(["cat", "/proc/keys", ".env"], plan).hits
