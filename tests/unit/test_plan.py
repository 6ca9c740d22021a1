"""The planner over real temporary trees: rules, their order, and explain()."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import plan_for

from sandboxtui.core.config import resolve
from sandboxtui.core.diagnostics_model import Severity
from sandboxtui.core.plan import MountPlan, OpKind, RuleKind, ScanBounds, build_plan
from sandboxtui.core.policy import Access, Policy, SandboxMode

# pytest's trees live under /tmp: with /tmp writable, every workspace here would be writable
NO_SLASH_TMP = "sandbox_workspace_write.exclude_slash_tmp=true"


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    w = tmp_path / "ws"
    (w / "src").mkdir(parents=True)
    (w / "src" / "main.py").write_text("print(1)\n")
    return w


def ops_by_dest(plan: MountPlan) -> dict[str, list[OpKind]]:
    out: dict[str, list[OpKind]] = {}
    for op in plan.ops:
        out.setdefault(op.dest, []).append(op.kind)
    return out


def test_workspace_write_default(ws: Path) -> None:
    plan = plan_for(ws, env={"TMPDIR": str(ws.parent)},
                    config="[sandbox_workspace_write]\nexclude_slash_tmp = false\n")
    ex = plan.explain(str(ws / "src" / "main.py"))
    assert ex.access is Access.RW and ex.rule.path == str(ws)
    assert ex.rule.kind is RuleKind.WRITABLE and ex.rule.reason == "workspace root (cwd)"
    assert plan.explain("/usr/bin").access is Access.RO
    assert plan.explain("/tmp/x").access is Access.RW
    assert plan.explain(str(ws.parent / "other")).access is Access.RW  # $TMPDIR
    kinds = [op.kind for op in plan.ops if not op.dest.startswith("/proc/")]
    assert kinds[:4] == [OpKind.RO_BIND_ROOT, OpKind.DEV, OpKind.PROC, OpKind.BIND]
    # the workspace lives under /tmp here, so the /tmp bind already makes it writable
    assert ex.ops[-1].kind is OpKind.BIND and ex.ops[-1].dest in ("/tmp", str(ws))
    assert ops_by_dest(plan_for(ws, NO_SLASH_TMP))[str(ws)] == [OpKind.BIND]
    assert plan.enforceable and not plan.unsandboxed


def test_tmp_and_tmpdir_exclusions(ws: Path) -> None:
    plan = plan_for(ws, env={"TMPDIR": "/var/tmp"}, config=(
        "[sandbox_workspace_write]\nexclude_slash_tmp = true\nexclude_tmpdir_env_var = true\n"))
    assert plan.explain("/tmp/x").access is Access.RO
    assert plan.explain("/var/tmp/x").access is Access.RO
    assert "/tmp" not in ops_by_dest(plan)


def test_read_only_mode_has_no_writable_roots(ws: Path) -> None:
    plan = plan_for(ws, NO_SLASH_TMP, 'sandbox_mode="read-only"')
    assert plan.explain(str(ws / "src")).access is Access.RO
    assert plan.explain("/tmp").access is Access.RO
    assert not [op for op in plan.ops if op.kind is OpKind.BIND]
    assert plan.explain("/dev/null").access is Access.RW  # the private /dev


def test_danger_full_access_is_unsandboxed_and_says_so(ws: Path) -> None:
    plan = plan_for(ws, NO_SLASH_TMP, 'sandbox_mode="danger-full-access"')
    assert plan.unsandboxed and plan.ops == ()
    assert plan.explain("/etc/passwd").access is Access.RW
    assert any(d.code == "unsandboxed" for d in plan.diagnostics)


def test_nested_split_entries_most_specific_wins(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "a" / "b").mkdir(parents=True)
    (repo / "a" / "secret.txt").write_text("s")
    ws = tmp_path / "ws"
    ws.mkdir()
    plan = plan_for(ws, NO_SLASH_TMP, 'sandbox_mode="read-only"', config=f"""\
default_permissions = "p"
[permissions.p.filesystem]
"{repo}" = "write"
"{repo}/a" = "none"
"{repo}/a/b" = "write"
""")
    assert plan.explain(str(repo / "x")).access is Access.RW
    assert plan.explain(str(repo / "a" / "secret.txt")).access is Access.NONE
    assert plan.explain(str(repo / "a" / "b" / "f")).access is Access.RW
    dests = [(op.kind, op.dest) for op in plan.ops]
    i_repo = dests.index((OpKind.BIND, str(repo)))
    i_a = dests.index((OpKind.DENY_DIR, str(repo / "a")))
    i_b = dests.index((OpKind.BIND, str(repo / "a" / "b")))
    assert i_repo < i_a < i_b
    first = [k for k, _ in dests].index(OpKind.REMOUNT_RO)  # remounts come after every mount
    assert all(k is OpKind.REMOUNT_RO for k, _ in dests[first:])
    assert (OpKind.REMOUNT_RO, str(repo / "a")) in dests[first:]
    deny = next(op for op in plan.ops if op.kind is OpKind.DENY_DIR and op.dest == str(repo / "a"))
    assert deny.perms == 0o111  # traversable so /repo/a/b stays reachable, not listable
    rule = plan.explain(str(repo / "a" / "secret.txt")).rule
    assert rule.path == str(repo / "a") and str(rule.provenance).endswith("config.toml:4")


def test_tie_on_the_same_path_none_beats_write_beats_read(ws: Path) -> None:
    target = ws / "src"
    plan = plan_for(ws, NO_SLASH_TMP, f'permissions.p.filesystem."{target}/main.py"="none"',
                    config=f"""\
default_permissions = "p"
[permissions.p.filesystem]
"{target}" = "read"
":workspace_roots" = "read"
""")
    # ":workspace_roots" = read ties with the writable cwd: write wins
    assert plan.explain(str(ws / "README")).access is Access.RW
    assert plan.explain(str(target / "x")).access is Access.RO
    ex = plan.explain(str(target / "main.py"))
    assert ex.access is Access.NONE and str(ex.rule.provenance).startswith("-c ")


def test_git_directory_and_codex_are_read_only(ws: Path) -> None:
    (ws / ".git" / "hooks").mkdir(parents=True)
    (ws / ".codex").mkdir()
    plan = plan_for(ws, NO_SLASH_TMP)
    assert plan.explain(str(ws / ".git" / "config")).access is Access.RO
    assert plan.explain(str(ws / ".git" / "hooks" / "pre-commit")).access is Access.RO
    assert plan.explain(str(ws / ".codex" / "x")).access is Access.RO
    assert ops_by_dest(plan)[str(ws / ".git")] == [OpKind.RO_BIND]
    # missing .agents is still protected: its creation is blocked by an empty read-only
    # directory (empty: it lists nothing)
    agents = plan.explain(str(ws / ".agents"))
    assert agents.access is Access.RO and agents.rule.missing
    assert ops_by_dest(plan)[str(ws / ".agents")] == [OpKind.BLOCK_MISSING_DIR]


def test_missing_git_and_codex_still_protected(ws: Path) -> None:
    plan = plan_for(ws, NO_SLASH_TMP)
    for name in (".git", ".codex", ".agents"):
        ex = plan.explain(str(ws / name / "config"))
        assert ex.access is Access.RO and ex.rule.kind is RuleKind.PROTECTED
        assert ops_by_dest(plan)[str(ws / name)] == [OpKind.BLOCK_MISSING_DIR]


def test_placeholder_kind_follows_the_name_and_what_stands_there(ws: Path) -> None:
    """A missing protected directory name gets an empty read-only directory, and so does an
    empty directory standing there (a concurrent launch's placeholder, held like one); a
    missing protected file name (`config`), or an empty file left by an older launch, a
    mode-000 file."""
    (ws / ".git" / "objects").mkdir(parents=True)
    (ws / ".git" / "hooks").mkdir()
    (ws / ".codex").mkdir()
    (ws / ".agents").write_text("")
    plan = plan_for(ws, NO_SLASH_TMP, 'protect_git="config-and-hooks"')
    ops = ops_by_dest(plan)
    for name in (".codex", ".git/hooks", ".git/info", ".git/modules", ".git/worktrees",
                 ".git/rebase-merge", ".git/rebase-apply"):
        assert ops[str(ws / name)] == [OpKind.BLOCK_MISSING_DIR], name
        assert plan.explain(str(ws / name)).access is Access.RO
    for name in (".agents", ".git/config", ".git/config.worktree"):
        assert ops[str(ws / name)] == [OpKind.BLOCK_MISSING], name
        assert plan.explain(str(ws / name)).access is Access.NONE
    assert str(ws / ".git" / "commondir") not in ops


def test_gitdir_file_protects_its_target(tmp_path: Path, ws: Path) -> None:
    real_git = ws / "gitstore" / "worktrees" / "wt"
    real_git.mkdir(parents=True)
    (ws / ".git").write_text("gitdir: gitstore/worktrees/wt\n")
    plan = plan_for(ws, NO_SLASH_TMP)
    assert plan.explain(str(ws / ".git")).access is Access.RO
    ex = plan.explain(str(real_git / "HEAD"))
    assert ex.access is Access.RO and "gitdir: target" in ex.rule.reason
    assert OpKind.RO_BIND in ops_by_dest(plan)[str(real_git)]


def test_symlinked_codex_fails_closed(tmp_path: Path, ws: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (ws / ".codex").symlink_to(elsewhere)
    plan = plan_for(ws, NO_SLASH_TMP)
    assert not plan.enforceable
    errors = [d for d in plan.diagnostics if d.severity is Severity.ERROR]
    assert errors and str(ws / ".codex") in errors[0].cause and "symlink" in errors[0].cause


def test_symlinked_writable_root_binds_its_real_target(tmp_path: Path, ws: Path) -> None:
    real = tmp_path / "real-root"
    real.mkdir()
    link = tmp_path / "link-root"
    link.symlink_to(real)
    plan = plan_for(ws, NO_SLASH_TMP,
                    config=f'[sandbox_workspace_write]\nwritable_roots = ["{link}"]\n')
    assert ops_by_dest(plan)[str(real)] == [OpKind.BIND]
    assert str(link) not in ops_by_dest(plan)
    ex = plan.explain(str(link / "file"))
    assert ex.resolved == str(real / "file") and ex.access is Access.RW
    assert "symlink" in ex.rule.reason


def test_missing_writable_root_is_skipped_with_a_warning(tmp_path: Path, ws: Path) -> None:
    plan = plan_for(ws, NO_SLASH_TMP,
                    config=f'[sandbox_workspace_write]\nwritable_roots = ["{tmp_path}/no"]\n')
    assert any(d.code == "missing-root" and f"{tmp_path}/no" in d.cause for d in plan.diagnostics)
    assert plan.explain(f"{tmp_path}/no/x").access is Access.RO
    assert plan.enforceable


def test_nested_env_files_at_several_depths_are_denied(ws: Path) -> None:
    paths = [ws / ".env", ws / "a" / ".env.local", ws / "a" / "b" / "c" / "d" / ".env",
             ws / "src" / ".env.production"]
    for p in paths:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("SECRET=1\n")
    (ws / "environment.txt").write_text("not secret")
    (ws / ".envrc").write_text("not secret")
    (ws / "creds" / ".env").mkdir(parents=True)  # a sensitive directory
    plan = plan_for(ws, NO_SLASH_TMP)
    by_dest = ops_by_dest(plan)
    for p in paths:
        assert plan.explain(str(p)).access is Access.NONE
        assert by_dest[str(p)] == [OpKind.DENY_FILE]
    assert by_dest[str(ws / "creds" / ".env")] == [OpKind.DENY_DIR, OpKind.REMOUNT_RO]
    assert plan.explain(str(ws / "environment.txt")).access is Access.RW
    assert plan.explain(str(ws / ".envrc")).access is Access.RW
    assert plan.scan is not None and plan.scan.matches == 5 and plan.scan.bound_hit is None


def test_a_sensitive_symlink_is_never_masked_through_its_target(tmp_path: Path,
                                                               ws: Path) -> None:
    """A mount over a link lands on its target: `.env.x -> /etc/ssl` would hide /etc/ssl from
    every later launch. The link reaches what its target allows; a warning names the target."""
    secret = tmp_path / "secret.txt"
    secret.write_text("x")
    (ws / ".env").symlink_to(secret)
    (ws / ".env.ssl").symlink_to("/etc/ssl")
    (ws / ".env.local").write_text("x")
    (ws / ".env.l").symlink_to(".env.local")  # to a masked file: nothing to say
    plan = plan_for(ws, NO_SLASH_TMP)
    assert plan.explain(str(ws / ".env")).access is Access.RO
    assert plan.explain("/etc/ssl").access is Access.RO
    assert plan.explain(str(ws / ".env.l")).access is Access.NONE
    assert not any(op.dest in (str(secret), "/etc/ssl") for op in plan.ops)
    warned = [d.cause for d in plan.diagnostics if d.code == "sensitive-symlink"]
    assert len(warned) == 2 and plan.enforceable
    assert any(str(secret) in w for w in warned) and any("/etc/ssl" in w for w in warned)


def test_deny_glob_entries_use_the_same_walk(ws: Path) -> None:
    (ws / "keys").mkdir()
    (ws / "keys" / "id.pem").write_text("k")
    plan = plan_for(ws, NO_SLASH_TMP,
                    config='default_permissions = "p"\n[permissions.p.filesystem]\n'
                           '"*.pem" = "none"\n')
    ex = plan.explain(str(ws / "keys" / "id.pem"))
    assert ex.access is Access.NONE and ex.rule.kind is RuleKind.ENTRY
    assert str(ex.rule.provenance).endswith(":3")


def test_scan_bounds_fail_closed(ws: Path) -> None:
    deep = ws
    for i in range(6):
        deep = deep / f"d{i}"
    deep.mkdir(parents=True)
    (deep / ".env").write_text("x")
    (ws / "shallow").mkdir()
    (ws / "shallow" / ".env").write_text("x")
    plan = plan_for(ws, NO_SLASH_TMP, bounds=ScanBounds(max_depth=3))
    assert plan.scan is not None and plan.scan.bound_hit == "depth"
    # The too-deep directory is denied as a whole; the walk went on to its siblings.
    too_deep = ws / "d0" / "d1" / "d2"
    assert plan.scan.too_deep == (str(too_deep),)
    assert plan.explain(str(deep / ".env")).access is Access.NONE
    assert plan.explain(str(too_deep)).rule.path == str(too_deep)
    assert plan.explain(str(ws / "shallow" / ".env")).access is Access.NONE
    assert any(d.code == "scan-depth" for d in plan.diagnostics) and plan.enforceable
    # Stopping early would leave files unmasked: the plan is refused.
    plan = plan_for(ws, NO_SLASH_TMP, bounds=ScanBounds(max_entries=2))
    assert plan.scan is not None and plan.scan.bound_hit == "entries"
    assert not plan.enforceable
    assert any(d.code == "scan-bound" and d.severity is Severity.ERROR for d in plan.diagnostics)


def test_paths_with_newline_and_leading_dash(ws: Path) -> None:
    odd = ws / "-rf"
    weird = ws / "line\nbreak"
    for d in (odd, weird):
        d.mkdir()
        (d / ".env").write_text("x")
    plan = plan_for(ws, NO_SLASH_TMP)
    assert plan.explain(str(odd / ".env")).access is Access.NONE
    assert plan.explain(str(weird / ".env")).access is Access.NONE
    assert ops_by_dest(plan)[str(weird / ".env")] == [OpKind.DENY_FILE]
    cfg_plan = plan_for(ws, NO_SLASH_TMP, 'sandbox_mode="read-only"', config=(
        'default_permissions = "p"\n[permissions.p.filesystem]\n'
        f'"{ws}/line\\nbreak" = "write"\n'))
    assert cfg_plan.explain(str(weird / "f")).access is Access.RW


def test_restricted_read_starts_from_an_empty_root(ws: Path) -> None:
    plan = plan_for(ws, NO_SLASH_TMP, config='read_access = { mode = "restricted" }\n')
    assert plan.ops[0].kind is OpKind.EMPTY_ROOT
    assert plan.explain("/usr/bin/env").access is Access.RO
    assert plan.explain("/root").access is Access.NONE
    assert plan.explain(str(ws / "src" / "main.py")).access is Access.RW
    no_defaults = plan_for(ws, NO_SLASH_TMP, config=(
        'read_access = { mode = "restricted", include_platform_defaults = false, '
        'readable_roots = ["/opt"] }\n'))
    assert no_defaults.explain("/usr/bin/env").access is Access.NONE


def test_explain_resolves_relative_and_symlinked_paths(ws: Path) -> None:
    (ws / ".env").write_text("x")
    (ws / "link").symlink_to(".env")
    plan = plan_for(ws, NO_SLASH_TMP)
    ex = plan.explain("link")
    assert ex.resolved == str(ws / ".env") and ex.access is Access.NONE
    assert [op.kind for op in ex.ops] == [OpKind.RO_BIND_ROOT, OpKind.BIND, OpKind.DENY_FILE]


def test_policy_is_plain_frozen_data() -> None:
    p = Policy()
    with pytest.raises(AttributeError):
        p.mode = SandboxMode.READ_ONLY  # type: ignore[misc]
    assert os.path.isabs(p.system_bwrap)


def test_own_config_and_state_are_read_only_inside_a_writable_home(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    plan = plan_for(home, NO_SLASH_TMP, env={"HOME": str(home)})
    for path in (home / ".config" / "sandboxtui" / "config.toml",
                 home / ".local" / "state" / "sandboxtui" / "audit.jsonl"):
        ex = plan.explain(str(path))
        assert ex.access is Access.RO and "sandboxtui's own" in ex.rule.reason
        assert ex.ops[-1].kind is OpKind.RO_BIND and os.path.isdir(ex.rule.path)
    # An explicit config file inside the workspace is protected too.
    cfg = home / "policy.toml"
    cfg.write_text("")
    policy = resolve(config_path=cfg, overrides=["sandbox_workspace_write.exclude_slash_tmp=true"])
    ex = build_plan(policy, str(home), {}).explain(str(cfg))
    assert ex.access is Access.RO
    assert ex.rule.reason.startswith("sandboxtui's own configuration file")


def test_a_workspace_inside_a_writable_root_is_pinned_by_mounts(tmp_path: Path) -> None:
    outer = tmp_path / "outer"
    ws = outer / "a" / "b" / "ws"
    ws.mkdir(parents=True)
    cfg = tmp_path / "c.toml"
    cfg.write_text("[sandbox_workspace_write]\nexclude_slash_tmp = true\n"
                   f'writable_roots = ["{outer}"]\n')
    plan = build_plan(resolve(config_path=cfg), str(ws), {})
    binds = [op.dest for op in plan.ops if op.kind is OpKind.BIND]
    # every directory from the enclosing mount down to the workspace is its own mount point
    assert binds == [str(outer), str(outer / "a"), str(outer / "a" / "b"), str(ws)]


def test_gitdir_and_commondir_are_only_ever_downgraded(tmp_path: Path) -> None:
    main = tmp_path / "ws" / "main-repo" / ".git"
    (main / "worktrees" / "wt").mkdir(parents=True)
    (main / "worktrees" / "wt" / "commondir").write_text("../..\n")
    ws = tmp_path / "ws" / "wt"
    ws.mkdir()
    (ws / ".git").write_text(f"gitdir: {main}/worktrees/wt\n")
    roots = f'[sandbox_workspace_write]\nwritable_roots = ["{tmp_path / "ws"}"]\n'
    plan = plan_for(ws, NO_SLASH_TMP, config=roots)
    assert plan.explain(str(main / "worktrees" / "wt" / "HEAD")).access is Access.RO
    ex = plan.explain(str(main / "config"))
    assert ex.access is Access.RO and "commondir" in ex.rule.reason
    # Under restricted read a gitdir line pointing at a secret must not make it readable.
    secret = tmp_path / "secret"
    secret.mkdir()
    (ws / ".git").write_text(f"gitdir: {secret}\n")
    restricted = plan_for(ws, NO_SLASH_TMP, config='read_access = { mode = "restricted" }\n')
    assert restricted.explain(str(secret / "id_rsa")).access is Access.NONE


def test_every_mount_comes_after_the_mounts_of_its_ancestors(tmp_path: Path) -> None:
    """A parent bound after its child hides the child's carveout (verify caught exactly that
    once: a pinned parent bound after a read-only config file inside it)."""
    from sandboxtui.demo import create_demo

    ws, cfg = create_demo(str(tmp_path))
    for overrides in ([], ["sandbox_workspace_write.exclude_slash_tmp=true"]):
        plan = build_plan(resolve(config_path=cfg, overrides=overrides), str(ws), {})
        dests = [op.dest for op in plan.ops if op.kind is not OpKind.REMOUNT_RO]
        for i, child in enumerate(dests):
            for parent in dests[i + 1:]:
                assert not child.startswith(parent.rstrip("/") + "/"), (parent, child)


def test_deny_globs_have_gitignore_semantics_and_absolute_ones_work(tmp_path: Path,
                                                                     ws: Path) -> None:
    (ws / "key.pem").write_text("k")
    (ws / "docs" / "deep").mkdir(parents=True)
    (ws / "docs" / "a.md").write_text("x")
    (ws / "docs" / "deep" / "b.md").write_text("x")
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "id.pem").write_text("k")
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_rsa").write_text("k")
    (home / ".ssh" / "known_hosts").write_text("k")
    entries = ["**/*.pem", "docs/*.md", f"{keys}/*.pem", "~/.ssh/id_*"]
    config = 'default_permissions = "p"\n[permissions.p.filesystem]\n' + "".join(
        f'"{g}" = "none"\n' for g in entries)
    plan = plan_for(ws, NO_SLASH_TMP, config=config, env={"HOME": str(home)})
    for denied in (ws / "key.pem", ws / "docs" / "a.md", keys / "id.pem", home / ".ssh" / "id_rsa"):
        assert plan.explain(str(denied)).access is Access.NONE, denied
    for kept in (ws / "docs" / "deep" / "b.md", home / ".ssh" / "known_hosts"):
        assert plan.explain(str(kept)).access is not Access.NONE, kept


@pytest.mark.parametrize("glob", ["/*.pem", "/**/x", "a/../b", "a**b", "~nosuchuser0/x"])
def test_a_glob_without_a_meaning_is_a_config_error(ws: Path, glob: str) -> None:
    from sandboxtui.core.config import ConfigError

    with pytest.raises(ConfigError, match="glob"):
        plan_for(ws, NO_SLASH_TMP,
                 config=f'default_permissions = "p"\n[permissions.p.filesystem]\n'
                        f'"{glob}" = "none"\n')
    with pytest.raises(ConfigError, match="config.toml:1"):
        plan_for(ws, NO_SLASH_TMP, config=f'sensitive_paths = ["{glob}"]\n')


@pytest.mark.parametrize("path", [":root", "/"])
def test_a_writable_slash_is_a_config_error_not_a_traceback(ws: Path, path: str) -> None:
    from sandboxtui.core.config import ConfigError

    with pytest.raises(ConfigError, match="danger-full-access"):
        plan_for(ws, NO_SLASH_TMP,
                 config=f'default_permissions = "p"\n[permissions.p.filesystem]\n'
                        f'"{path}" = "write"\n')


def test_carveouts_pin_every_ancestor_up_to_their_writable_mount(ws: Path) -> None:
    (ws / "docs" / "api").mkdir(parents=True)
    (ws / "a" / "b" / "c").mkdir(parents=True)
    (ws / "a" / "b" / "c" / ".env").write_text("x")
    plan = plan_for(ws, NO_SLASH_TMP,
                    config='default_permissions = "p"\n[permissions.p.filesystem]\n'
                           f'"{ws}/docs/api" = "read"\n"{ws}/x/y/z" = "read"\n')
    binds = {op.dest for op in plan.ops if op.kind is OpKind.BIND}
    assert {str(ws / "docs"), str(ws / "a"), str(ws / "a" / "b"), str(ws / "a" / "b" / "c"),
            } <= binds
    # a missing carveout is blocked at its first missing component, right below the mount
    assert ops_by_dest(plan)[str(ws / "x")] == [OpKind.BLOCK_MISSING]


def test_hard_links_of_sensitive_files_are_masked_and_outside_names_reported(
        tmp_path: Path, ws: Path) -> None:
    (ws / ".env").write_text("x")
    os.link(ws / ".env", ws / "src" / "notes.txt")
    os.link(ws / ".env", tmp_path / "outside.txt")
    (ws / ".env.d").mkdir()
    (ws / ".env.d" / "key").write_text("x")
    os.link(ws / ".env.d" / "key", ws / "key-copy")
    plan = plan_for(ws, NO_SLASH_TMP)
    for name in ("src/notes.txt", "key-copy"):
        ex = plan.explain(str(ws / name))
        assert ex.access is Access.NONE and "hard link" in ex.rule.reason
        assert ops_by_dest(plan)[str(ws / name)] == [OpKind.DENY_FILE]
    warned = [d.cause for d in plan.diagnostics if d.code == "sensitive-hardlink"]
    assert warned == [f"sensitive file {ws}/.env has 3 names (hard links) but only 2 lie in the "
                      "scanned roots: the others show its content unmasked"]


def test_install_and_relative_xdg(tmp_path: Path) -> None:
    """sandboxtui's own install inside a writable root is read-only; a relative XDG_* value
    is ignored (the default under HOME is used)."""
    import sys

    import sandboxtui

    home = tmp_path / "home"
    home.mkdir()
    plan = plan_for(home, NO_SLASH_TMP, env={"HOME": str(home), "XDG_CONFIG_HOME": "rel",
                                             "XDG_STATE_HOME": "rel"})
    assert plan.explain(str(home / ".config" / "sandboxtui")).access is Access.RO
    assert plan.explain(str(home / ".local" / "state" / "sandboxtui")).access is Access.RO
    assert not (home / "rel").exists()
    # the checkout or site-packages this very process imports sandboxtui from
    root = Path(sandboxtui.__file__).resolve().parent.parent
    plan = plan_for(home, NO_SLASH_TMP, f'sandbox_workspace_write.writable_roots=["{root}"]')
    assert plan.explain(str(root / "sandboxtui" / "core" / "plan.py")).access is Access.RO
    assert plan.explain(sys.prefix + "/x").access is not Access.RW


def test_a_configured_root_through_a_link_in_a_writable_root_is_refused(tmp_path: Path,
                                                                        ws: Path) -> None:
    target = tmp_path / "target"
    target.mkdir()
    (ws / "build").symlink_to(target)
    for config in (f'[sandbox_workspace_write]\nwritable_roots = ["{ws}/build"]\n',
                   f'read_access = {{ mode = "restricted", readable_roots = ["{ws}/build"] }}\n'):
        plan = plan_for(ws, NO_SLASH_TMP, config=config)
        assert not plan.enforceable
        assert any(d.code == "planted-root-link" and str(ws / "build") in d.cause
                   for d in plan.diagnostics)
    # a link outside every writable root is followed, as before
    (tmp_path / "elsewhere").symlink_to(target)
    plan = plan_for(ws, NO_SLASH_TMP,
                    config=f'[sandbox_workspace_write]\nwritable_roots = '
                           f'["{tmp_path}/elsewhere"]\n')
    assert plan.enforceable and plan.explain(str(target / "f")).access is Access.RW


def test_proc_dev_and_skeletons_are_explained_as_the_kernel_sees_them(ws: Path) -> None:
    plan = plan_for(ws, NO_SLASH_TMP)
    ex = plan.explain("/proc/sys/kernel/core_pattern")
    assert ex.access is Access.RO and ex.rule.kind is RuleKind.KERNEL
    assert "global root uid" in ex.rule.reason
    assert [op.kind for op in ex.ops][-2:] == [OpKind.PROC, OpKind.KERNEL_RO]
    assert plan.explain("/dev/vda").access is Access.NONE
    assert "absent from the sandbox's private /dev" in plan.explain("/dev/kmsg").rule.reason
    assert plan.explain("/dev/null").access is plan.explain("/dev/shm/x").access is Access.RW
    hidden = plan_for(ws, NO_SLASH_TMP, mount_proc=False)
    assert hidden.explain("/proc/1/cmdline").access is Access.NONE
    assert ops_by_dest(hidden)["/proc"] == [OpKind.DENY_DIR, OpKind.REMOUNT_RO]
    assert "no-proc" in {d.code for d in hidden.diagnostics}
    restricted = plan_for(ws, NO_SLASH_TMP, 'read_access.mode="restricted"')
    parent = restricted.explain(str(ws.parent))  # holds the workspace's mount point
    assert parent.access is Access.RO and "mount points" in parent.rule.reason
    assert restricted.explain(str(ws.parent / "elsewhere")).access is Access.NONE
