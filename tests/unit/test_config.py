"""Config resolution: precedence, provenance with file:line, and bad input with exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sandboxtui.core.config import ConfigError, key_lines, resolve, settings_table
from sandboxtui.core.policy import Access, NetworkMode, PrecheckMode, SandboxMode


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "config.toml"
    p.write_text(text)
    return p


def test_defaults_without_a_file(tmp_path: Path) -> None:
    policy = resolve(env={"XDG_CONFIG_HOME": str(tmp_path), "HOME": str(tmp_path)})
    assert policy.mode is SandboxMode.WORKSPACE_WRITE
    assert policy.network is NetworkMode.OFF
    assert policy.sensitive_paths == (".env", ".env.*")
    assert policy.precheck_mode is PrecheckMode.ASK
    assert str(policy.source("sandbox_mode")) == "default"


def test_xdg_config_home_file_is_read(tmp_path: Path) -> None:
    (tmp_path / "sandboxtui").mkdir()
    (tmp_path / "sandboxtui" / "config.toml").write_text('sandbox_mode = "read-only"\n')
    policy = resolve(env={"XDG_CONFIG_HOME": str(tmp_path)})
    assert policy.mode is SandboxMode.READ_ONLY
    assert str(policy.source("sandbox_mode")) == f"{tmp_path}/sandboxtui/config.toml:1"


def test_precedence_and_provenance_of_every_layer(tmp_path: Path) -> None:
    cfg = write(tmp_path, """\
# comment
sandbox_mode = "read-only"
sensitive_path_precheck_mode = "block"

[sandbox_workspace_write]
writable_roots = ["/srv/a"]
network_access = true

[profiles.dev]
sandbox_mode = "workspace-write"
sensitive_paths = ["*.pem"]
""")
    policy = resolve(config_path=cfg, profile="dev",
                     overrides=["sandbox_workspace_write.network_access=false"])
    assert policy.mode is SandboxMode.WORKSPACE_WRITE
    assert str(policy.source("sandbox_mode")) == f"profile dev ({cfg}:10)"
    assert policy.precheck_mode is PrecheckMode.BLOCK
    assert str(policy.source("sensitive_path_precheck_mode")) == f"{cfg}:3"
    assert policy.writable_roots == ("/srv/a",)
    assert str(policy.source("sandbox_workspace_write.writable_roots")) == f"{cfg}:6"
    assert policy.network is NetworkMode.OFF
    assert str(policy.source("sandbox_workspace_write.network_access")) == (
        "-c sandbox_workspace_write.network_access=false")
    assert policy.sensitive_paths == ("*.pem",)
    assert str(policy.source("sensitive_paths")) == f"profile dev ({cfg}:11)"
    # every key in the settings table carries a provenance
    rows = {k: p for k, _, p in settings_table(policy)}
    assert rows["sandbox_mode"] == f"profile dev ({cfg}:10)"
    assert rows["limits.cpu_seconds"] == "default"


def test_sandbox_flag_beats_file_and_profile(tmp_path: Path) -> None:
    cfg = write(tmp_path, 'sandbox_mode = "read-only"\nprofile = "p"\n'
                          '[profiles.p]\nsandbox_mode = "read-only"\n')
    policy = resolve(config_path=cfg, sandbox_mode="danger-full-access")
    assert policy.mode is SandboxMode.DANGER_FULL_ACCESS
    assert policy.profile == "p"
    assert str(policy.source("sandbox_mode")) == "--sandbox danger-full-access"


def test_permissions_entries_keep_their_lines(tmp_path: Path) -> None:
    cfg = write(tmp_path, """\
default_permissions = "work"

[permissions.work.filesystem]
"/repo" = "write"
"/repo/a" = "none"
"/repo/a/b" = "write"
"/repo/**/*.key" = "none"
":tmpdir" = "read"
""")
    policy = resolve(config_path=cfg)
    entries = {e.path: (e.access, str(e.provenance)) for e in policy.fs_entries}
    assert entries == {
        "/repo": (Access.RW, f"{cfg}:4"),
        "/repo/a": (Access.NONE, f"{cfg}:5"),
        "/repo/a/b": (Access.RW, f"{cfg}:6"),
        "/repo/**/*.key": (Access.NONE, f"{cfg}:7"),
        ":tmpdir": (Access.RO, f"{cfg}:8"),
    }


def test_inline_tables_and_dotted_keys_get_the_line_of_their_key(tmp_path: Path) -> None:
    cfg = write(tmp_path, '\n\nread_access = { mode = "restricted", readable_roots = ["/opt"] }\n'
                          'features.use_legacy_landlock = true\n')
    policy = resolve(config_path=cfg)
    assert policy.read_access.restricted
    assert policy.read_access.readable_roots == ("/opt",)
    assert str(policy.source("read_access.mode")) == f"{cfg}:3"
    assert str(policy.source("features.use_legacy_landlock")) == f"{cfg}:4"


@pytest.mark.parametrize(
    ("text", "line", "key", "needle"),
    [
        ('sandbox_mode = "read-only"\nbogus = 1\n', 2, "bogus", "unknown key"),
        ('\n[sandbox_workspace_write]\nnetwork_access = "yes"\n', 3,
         "sandbox_workspace_write.network_access", "expected true or false"),
        ('[sandbox_workspace_write]\n\nwritable_roots = ["relative/dir"]\n', 3,
         "sandbox_workspace_write.writable_roots", "must be absolute"),
        ('[sandbox_workspace_write]\nwritable_roots = ["/a\\u0000b"]\n', 2,
         "sandbox_workspace_write.writable_roots", "NUL"),
        ('sandbox_mode = "yolo"\n', 1, "sandbox_mode", "expected one of"),
        ('[limits]\nprocesses = -1\n', 2, "limits.processes", "non-negative"),
        ('[limits]\nopen_files = true\n', 2, "limits.open_files", "boolean"),
        ('default_permissions = "x"\n[permissions.x.filesystem]\n"/a/*" = "write"\n', 3,
         'permissions.x.filesystem."/a/*"', "glob entry can only deny"),
        ('default_permissions = "x"\n[permissions.x.filesystem]\n":bogus" = "read"\n', 3,
         'permissions.x.filesystem.":bogus"', "unknown special path"),
        ('[profiles.p]\nnope = 1\n', 2, "profiles.p.nope", "unknown key"),
    ],
)
def test_bad_config_names_file_line_and_key(
    tmp_path: Path, text: str, line: int, key: str, needle: str
) -> None:
    cfg = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        resolve(config_path=cfg)
    assert err.value.origin == f"{cfg}:{line}"
    assert err.value.key == key
    assert needle in err.value.message


def test_toml_syntax_error_has_its_line(tmp_path: Path) -> None:
    cfg = write(tmp_path, 'sandbox_mode = "read-only"\n\nbroken = = 1\n')
    with pytest.raises(ConfigError) as err:
        resolve(config_path=cfg)
    assert err.value.origin == f"{cfg}:3"


def test_dash_c_must_be_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        resolve(config_path=write(tmp_path, ""), overrides=["sandbox_mode=read-only"])
    assert err.value.origin == "-c" and err.value.key == "sandbox_mode"
    assert "not TOML" in err.value.message
    policy = resolve(config_path=write(tmp_path, ""), overrides=['sandbox_mode="read-only"'])
    assert policy.mode is SandboxMode.READ_ONLY


def test_unknown_profile_and_unselected_permissions(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown profile 'x'"):
        resolve(config_path=write(tmp_path, ""), profile="x")
    with pytest.raises(ConfigError, match="none is selected"):
        resolve(config_path=write(tmp_path, '[permissions.a.filesystem]\n"/x" = "read"\n'))


def test_key_lines_handles_quotes_and_headers() -> None:
    lines = key_lines('a = 1\n[t."x.y"]\n"k.1" = 2\n\'lit\' = 3\n[[arr]]\n')
    assert lines[("a",)] == 1
    assert lines[("t", "x.y")] == 2
    assert lines[("t", "x.y", "k.1")] == 3
    assert lines[("t", "x.y", "lit")] == 4


def test_cli_config_error_exits_2_and_runs_nothing(tmp_path: Path) -> None:
    cfg = write(tmp_path, 'sandbox_mode = "read-only"\nwritable = 1\n')
    done = subprocess.run(
        [sys.executable, "-m", "sandboxtui", "plan", "--config", str(cfg), "--cwd", str(tmp_path)],
        capture_output=True, text=True,
    )
    assert done.returncode == 2
    assert f"{cfg}:2: writable: unknown key" in done.stderr
    assert done.stdout == ""


def test_a_set_glob_no_regex_can_express_is_a_config_error_not_a_traceback() -> None:
    """`[z-a]` has a reversed range: exit 2 naming the glob; `[]x]` is a set holding `]`."""
    from sandboxtui.core.globs import compile_glob

    with pytest.raises(ConfigError, match=r"glob '\[z-a\]' is not valid"):
        resolve(overrides=['sensitive_paths=["[z-a]"]'], env={})
    assert compile_glob("[]x]").regex.fullmatch("]") and compile_glob("[]x]").regex.fullmatch("x")


def test_an_unknown_key_names_the_key_it_most_likely_meant(tmp_path: Path) -> None:
    """(issue 15, item 7) A misspelt key: the error says which declared key was meant."""
    for typo, meant in (("sandbox_workspace_write.network_acess", "network_access"),
                        ("sandox_mode", "sandbox_mode")):
        with pytest.raises(ConfigError) as err:
            resolve(overrides=[f"{typo}=true"], env={"XDG_CONFIG_HOME": str(tmp_path)})
        assert "did you mean" in str(err.value) and meant in str(err.value), err.value
    with pytest.raises(ConfigError) as err:
        resolve(overrides=["zzz=1"], env={"XDG_CONFIG_HOME": str(tmp_path)})
    assert str(err.value).endswith("zzz: unknown key")
