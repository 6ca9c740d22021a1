"""Applying a trace suggestion to the config file (issue 14): real suggestions (from the
analysis of a refused call over a real plan) written into real config files with comments,
profiles and `-c`; the file keeps its comments and layout, the policy it then resolves to is
the one the `-c` flag gives, and unsafe or stale files are refused, with nothing written."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandboxtui.core import trace
from sandboxtui.core.config import resolve
from sandboxtui.core.config_edit import (
    ConfigEditError,
    Resolution,
    prepare_edit,
    write_edit,
)
from sandboxtui.core.plan import build_plan

CONFIG = """\
# my sandbox settings
sandbox_mode = "workspace-write"  # the default, said out loud

[sandbox_workspace_write]
# build output goes here
writable_roots = [
    "{keep}",  # the cache
]
network_access = false  # no network for builds
"""
PLAIN = Resolution(env={})  # no profile, no -s, no -c, an empty environment


@pytest.fixture
def base() -> Iterator[Path]:
    """Outside /tmp (a writable root): a workspace, a kept root and a directory to allow."""
    made = Path(tempfile.mkdtemp(dir="/var/tmp", prefix="sandboxtui-edit-"))
    for name in ("ws", "keep", "out"):
        (made / name).mkdir()
    yield made
    shutil.rmtree(made)


def _suggestion(base: Path, config: Path | None, line: str,
                resolution: Resolution = PLAIN) -> trace.Suggestion:
    def plan(*more: str):  # type: ignore[no-untyped-def]
        policy = resolve(config_path=config, profile=resolution.profile, env={},
                         overrides=(*resolution.overrides, *more))
        return build_plan(policy, str(base / "ws"), {})

    report = trace.analyse(line, plan(), 1, lambda o: plan(o), network_on=False)
    (denial,) = report.denials
    assert denial.suggestion is not None
    return denial.suggestion


def _write_in(base: Path, name: str = "f") -> str:
    return (f'7 openat(AT_FDCWD, "{base}/out/{name}", O_WRONLY|O_CREAT, 0666) = -1 EROFS '
            "(Read-only file system)\n")


def _roots(config: Path, resolution: Resolution = PLAIN) -> tuple[str, ...]:
    return resolve(config_path=config, profile=resolution.profile, env={},
                   overrides=resolution.overrides).writable_roots


def test_a_new_root_joins_the_list_and_every_comment_stays(base: Path) -> None:
    config = base / "config.toml"
    config.write_text(CONFIG.format(keep=base / "keep"))
    config.chmod(0o640)
    suggestion = _suggestion(base, config, _write_in(base))
    edit = prepare_edit(config, suggestion, PLAIN)
    assert edit.where == "the top level" and edit.key == "sandbox_workspace_write.writable_roots"
    added = [line for line in edit.diff().splitlines()[2:] if line.startswith(("+", "-"))]
    assert added == [f'+    "{base}/out",']
    assert "becomes writable" in edit.widens
    write_edit(edit)
    text = config.read_text()
    for comment in ("# my sandbox settings", "# the default, said out loud",
                    "# build output goes here", "# the cache", "# no network for builds"):
        assert comment in text
    assert text == edit.after
    assert _roots(config) == (f"{base}/keep", f"{base}/out")
    assert stat.S_IMODE(config.stat().st_mode) == 0o640
    assert [p.name for p in base.iterdir() if p.name.startswith(".sandboxtui")] == []


def test_a_split_entry_changes_in_place_with_its_comment(base: Path) -> None:
    config = base / "config.toml"
    secret = base / "ws" / "secret"
    secret.mkdir()
    config.write_text('default_permissions = "dev"\n\n[permissions.dev.filesystem]\n'
                      '":workspace_roots" = "write"\n'
                      f'"{secret}" = "none"  # keep the build away from it\n')
    line = (f'9 mkdir("{secret}/sub", 0777) = -1 EACCES (Permission denied)\n')
    write_edit(prepare_edit(config, _suggestion(base, config, line), PLAIN))
    text = config.read_text()
    assert f'"{secret}" = "write"  # keep the build away from it\n' in text
    entries = resolve(config_path=config, env={}).fs_entries
    assert {e.path: e.access.value for e in entries}[str(secret)] == "rw"


def test_profiles_the_key_goes_where_it_is_decided(base: Path) -> None:
    config = base / "config.toml"
    config.write_text(CONFIG.format(keep=base / "keep") + "\n[profiles.ci]  # for CI\n"
                      'sandbox_mode = "workspace-write"\n\n[profiles.build]\n'
                      "sandbox_workspace_write.writable_roots = []  # nothing by default\n")
    # set in the profile: written there (the top level would not change it)
    build = Resolution(profile="build", env={})
    edit = prepare_edit(config, _suggestion(base, config, _write_in(base), build), build)
    assert edit.where == "[profiles.build]"
    write_edit(edit)
    assert _roots(config, build) == (f"{base}/out",)
    assert _roots(config) == (f"{base}/keep",)  # the top level is as it was
    assert "# nothing by default" in config.read_text()
    # set at the top level, not in the active profile: the top level
    ci = Resolution(profile="ci", env={})
    edit = prepare_edit(config, _suggestion(base, config, _write_in(base), ci), ci)
    assert edit.where == "the top level"


def test_a_key_set_nowhere_goes_into_the_active_profile(base: Path) -> None:
    config = base / "config.toml"
    config.write_text('profile = "ci"\n\n[profiles.ci]\nsandbox_mode = "workspace-write"\n')
    edit = prepare_edit(config, _suggestion(base, config, _write_in(base)), PLAIN)
    assert edit.where == "[profiles.ci]"
    write_edit(edit)
    assert _roots(config) == (f"{base}/out",)
    assert "[profiles.ci.sandbox_workspace_write]" in config.read_text()


def test_a_value_set_by_c_cannot_be_applied_to_the_file(base: Path) -> None:
    config = base / "config.toml"
    config.write_text(CONFIG.format(keep=base / "keep"))
    before = config.read_text()
    flags = Resolution(overrides=(f'sandbox_workspace_write.writable_roots=["{base}/keep"]',),
                       env={})
    suggestion = _suggestion(base, config, _write_in(base), flags)
    with pytest.raises(ConfigEditError, match="set on the command line") as refused:
        prepare_edit(config, suggestion, flags)
    assert f"run with {suggestion.flag} instead" in str(refused.value)
    assert config.read_text() == before


def test_nothing_is_applied_where_nothing_is_suggested(base: Path) -> None:
    config = base / "config.toml"
    config.write_text("# empty\n")
    (base / "ws" / ".env").write_text("TOKEN=x\n")
    line = '3 openat(AT_FDCWD, ".env", O_RDONLY) = -1 EACCES (Permission denied)\n'
    policy = resolve(config_path=config, env={})
    plan = build_plan(policy, str(base / "ws"), {})
    (denial,) = trace.analyse(line, plan, 1, lambda o: plan, network_on=False).denials
    assert denial.suggestion is not None and denial.suggestion.flag is None
    with pytest.raises(ConfigEditError, match="nothing to apply: nothing is suggested"):
        prepare_edit(config, denial.suggestion)


def test_a_missing_file_is_created_private(base: Path) -> None:
    config = base / "new" / "config.toml"
    write_edit(prepare_edit(config, _suggestion(base, None, _write_in(base)),
                            PLAIN))
    assert _roots(config) == (f"{base}/out",)
    assert stat.S_IMODE(config.stat().st_mode) == 0o600


def test_a_file_changed_since_it_was_read_is_not_overwritten(base: Path) -> None:
    config = base / "config.toml"
    config.write_text(CONFIG.format(keep=base / "keep"))
    edit = prepare_edit(config, _suggestion(base, config, _write_in(base)), PLAIN)
    config.write_text(config.read_text() + "# edited meanwhile\n")
    with pytest.raises(ConfigEditError, match="changed since it was read"):
        write_edit(edit)
    assert config.read_text().endswith("# edited meanwhile\n")


def test_links_and_foreign_files_are_refused(base: Path) -> None:
    real = base / "real.toml"
    real.write_text(CONFIG.format(keep=base / "keep"))
    link = base / "config.toml"
    link.symlink_to(real)
    suggestion = _suggestion(base, real, _write_in(base))
    with pytest.raises(ConfigEditError, match="symbolic link"):
        prepare_edit(link, suggestion, PLAIN)
    if os.geteuid() == 0:  # a file of another user's (only root can make one)
        os.chown(real, 65534, 65534)
        with pytest.raises(ConfigEditError, match="belongs to uid 65534"):
            prepare_edit(real, suggestion, PLAIN)
    open_dir = base / "open"
    open_dir.mkdir()
    open_dir.chmod(0o777)
    shutil.copy(real, open_dir / "config.toml")
    with pytest.raises(ConfigEditError, match="writable by everyone"):
        prepare_edit(open_dir / "config.toml", suggestion, PLAIN)
    assert real.read_text() == CONFIG.format(keep=base / "keep")
