"""The fail-closed matrix: for each missing capability, what each policy does.

Capabilities are plain data, so each absence is simulated by describing a machine that lacks
it. The enforcement of whatever pipeline is chosen is tested against the kernel elsewhere
(test_landlock.py, test_escape.py); this file pins the decisions themselves.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from sandboxtui.core.config import resolve
from sandboxtui.core.diagnostics import Capabilities
from sandboxtui.core.landlock import landlock_model
from sandboxtui.core.pipeline import Pipeline, choose_pipeline, startup_diagnostics
from sandboxtui.core.plan import MountPlan, build_plan

FULL = Capabilities("/usr/bin/bwrap", True, "/vendored/bwrap", None, 7, True)
NO_BWRAP = replace(FULL, system_bwrap=False, vendored_bwrap=None,
                   bwrap_error="no bwrap binary found")
NO_USERNS = replace(FULL, bwrap_error="setting up uid map: Permission denied")
NO_LANDLOCK = replace(FULL, landlock_abi=None)
NO_SECCOMP = replace(FULL, seccomp=False, seccomp_error="libseccomp is not installed")


def plan_of(tmp_path: Path, *overrides: str, env_file: bool = False) -> MountPlan:
    ws = tmp_path / "ws"
    ws.mkdir(exist_ok=True)
    if env_file:
        (ws / ".env").write_text("SECRET=1\n")
    cfg = tmp_path / "c.toml"
    cfg.write_text("")
    return build_plan(resolve(config_path=cfg, overrides=list(overrides)), str(ws), {})


LEGACY = "features.use_legacy_landlock=true"
NET_ON = "sandbox_workspace_write.network_access=true"
PROXY = 'sandbox_workspace_write.network_access="proxy"'

# (capabilities, overrides, expected pipeline or None for "refused", words in the reason)
MATRIX = [
    (FULL, [], Pipeline.BWRAP, "default"),
    (FULL, [LEGACY], Pipeline.LANDLOCK, "Landlock ABI 7"),
    (NO_BWRAP, [], None, "bubblewrap cannot run: no bwrap binary found"),
    (NO_BWRAP, [LEGACY], Pipeline.LANDLOCK, "use_legacy_landlock"),
    (NO_USERNS, [], None, "uid map: Permission denied"),
    (NO_USERNS, [LEGACY], Pipeline.LANDLOCK, "use_legacy_landlock"),
    (NO_LANDLOCK, [], Pipeline.BWRAP, "default"),
    (NO_LANDLOCK, [LEGACY], Pipeline.BWRAP, "Landlock is absent"),
    (replace(NO_LANDLOCK, bwrap_error="x"), [], None, "bubblewrap cannot run: x"),
    (replace(NO_LANDLOCK, bwrap_error="x"), [LEGACY], None, "neither Landlock nor bubblewrap"),
    (NO_SECCOMP, [], None, "network cannot be cut"),
    (NO_SECCOMP, [LEGACY], None, "network cannot be cut"),
    (NO_SECCOMP, [NET_ON], None, "host-safety filter"),
    (NO_SECCOMP, [NET_ON, LEGACY], None, "host-safety filter"),
    (NO_SECCOMP, [PROXY], None, "network cannot be cut"),
    (NO_SECCOMP, ['sandbox_mode="danger-full-access"'], Pipeline.UNSANDBOXED, "danger"),
    (NO_BWRAP, ['sandbox_mode="danger-full-access"'], Pipeline.UNSANDBOXED, "danger"),
    (FULL, [LEGACY, PROXY], Pipeline.BWRAP, "proxy mode needs bubblewrap"),
    (NO_BWRAP, [LEGACY, PROXY], None, "bubblewrap cannot run"),
]


@pytest.mark.parametrize(("caps", "overrides", "expected", "words"), MATRIX)
def test_fail_closed_matrix(
    tmp_path: Path, caps: Capabilities, overrides: list[str], expected: Pipeline | None,
    words: str,
) -> None:
    choice = choose_pipeline(plan_of(tmp_path, *overrides), caps, euid=1000)
    assert choice.pipeline is expected, choice.reason
    assert words in choice.reason
    if expected is None:
        assert choice.refused and choice.diagnostics[0].severity.value == "error"
        assert choice.diagnostics[0].remedy


def test_inexpressible_split_policy_stays_on_bubblewrap(tmp_path: Path) -> None:
    inner = tmp_path / "ws" / "private"
    inner.mkdir(parents=True)
    deny = f'permissions.p.filesystem."{inner}"="none"'
    plan = plan_of(tmp_path, LEGACY, 'default_permissions="p"', deny)
    choice = choose_pipeline(plan, FULL, euid=1000)
    assert choice.pipeline is Pipeline.BWRAP and str(inner) in choice.reason
    refused = choose_pipeline(plan, NO_BWRAP, euid=1000)
    assert refused.refused and "cannot express" in refused.reason


def test_legacy_names_every_unenforced_path(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, LEGACY, env_file=True)
    choice = choose_pipeline(plan, FULL, euid=1000)
    assert choice.pipeline is Pipeline.LANDLOCK
    named = [d for d in choice.diagnostics if d.code == "landlock-unenforced"]
    unenforced = {d.cause.split(" on ")[1].split(" (")[0] for d in named}
    ws = tmp_path / "ws"
    assert str(ws / ".env") in unenforced
    assert {str(ws / n) for n in (".git", ".codex", ".agents")} <= unenforced
    assert all("CAN" in d.cause for d in named)
    # ...and the host's /dev, which bubblewrap replaces and Landlock cannot
    assert any(d.code == "landlock-host-dev" for d in choice.diagnostics)


def test_landlock_model_grants(tmp_path: Path) -> None:
    model = landlock_model(plan_of(tmp_path))
    # Beneath / but for /dev, of which only the devices a command needs.
    assert "/" not in model.read_roots and "/usr" in model.read_roots
    assert "/etc" in model.read_roots and "/dev/null" in model.read_roots
    assert not [r for r in model.read_roots if r == "/dev" or r.startswith("/dev/sd")
                or r.startswith("/dev/vd") or r.startswith("/dev/loop")]
    assert str(tmp_path / "ws") in model.write_roots and "/dev/null" in model.write_roots
    restricted = landlock_model(plan_of(tmp_path, 'read_access={mode="restricted"}'))
    assert "/" not in restricted.read_roots and "/usr" in restricted.read_roots


def test_process_limit_as_root_is_refused(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, "limits.processes=50")
    assert choose_pipeline(plan, FULL, euid=0).refused
    assert choose_pipeline(plan, FULL, euid=1000).pipeline is Pipeline.BWRAP


def test_unenforceable_plan_is_refused(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / ".codex").symlink_to(tmp_path)
    choice = choose_pipeline(plan_of(tmp_path), FULL, euid=1000)
    assert choice.refused and "symlink" in choice.reason


def test_startup_diagnostics_name_the_proxy_mode_and_the_pipeline(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, PROXY, LEGACY)
    choice, diags = startup_diagnostics(plan, FULL, {"HTTPS_PROXY": "http://127.0.0.1:3128"},
                                        euid=1000)
    assert choice.pipeline is Pipeline.BWRAP
    codes = [d.code for d in diags]
    assert "legacy-proxy" in codes and any(d.code.startswith("proxy") for d in diags)
    order = [d.severity.value for d in diags]
    assert order == sorted(order, key=["error", "warning", "info"].index)
    _, no_vars = startup_diagnostics(plan, FULL, {}, euid=1000)
    assert any(d.severity.value == "error" and "proxy" in d.code for d in no_vars)


def test_a_root_launcher_asking_for_legacy_stays_on_bubblewrap(tmp_path: Path) -> None:
    """Landlock has no right for chmod or chown: a root command on the legacy pipeline could
    make /etc/shadow or a disk device world-writable. Root stays on bubblewrap, whatever else
    the policy asks, and is refused when bubblewrap cannot run."""
    for overrides in ([LEGACY], [LEGACY, NET_ON], [LEGACY, PROXY]):
        plan = plan_of(tmp_path, *overrides, env_file=True)
        choice = choose_pipeline(plan, FULL, euid=0)
        assert choice.pipeline is Pipeline.BWRAP and choice.landlock is None, choice.reason
        (why,) = choice.diagnostics
        assert why.code == "legacy-root" and why.severity.value == "warning"
        assert "root launcher" in why.cause and "bubblewrap is used" in why.cause
        _, diags = startup_diagnostics(plan, FULL, {"HTTPS_PROXY": "http://127.0.0.1:3128"},
                                       euid=0)
        assert "legacy-root" in {d.code for d in diags}
        for caps in (NO_BWRAP, NO_USERNS):
            refused = choose_pipeline(plan, caps, euid=0)
            assert refused.refused and "root launcher" in refused.reason
            assert "bubblewrap cannot run" in refused.reason
            assert refused.diagnostics[0].remedy
    # the same request by a normal user still gets Landlock
    assert choose_pipeline(plan_of(tmp_path, LEGACY), FULL, euid=1000).pipeline \
        is Pipeline.LANDLOCK


def test_without_seccomp_doctor_reports_an_error_whatever_the_network(tmp_path: Path) -> None:
    for overrides in ([], [NET_ON], [PROXY]):
        choice, diags = startup_diagnostics(plan_of(tmp_path, *overrides), NO_SECCOMP,
                                            {"HTTPS_PROXY": "http://127.0.0.1:3128"})
        assert choice.refused
        (missing,) = [d for d in diags if d.code == "seccomp-unavailable"]
        assert missing.severity.value == "error" and "set-id" in missing.cause


def test_legacy_without_user_namespaces_names_the_ipc_limit(tmp_path: Path) -> None:
    """A normal user without user namespaces gets no private IPC namespace on the legacy
    pipeline: doctor and the warnings panel say so; root always gets one."""
    plan = plan_of(tmp_path, LEGACY)
    user = choose_pipeline(plan, NO_USERNS, euid=1000)
    assert user.pipeline is Pipeline.LANDLOCK
    assert "legacy-no-ipc" in {d.code for d in user.diagnostics}
    for caps, euid in ((NO_USERNS, 0), (FULL, 1000)):
        choice = choose_pipeline(plan, caps, euid=euid)
        assert "legacy-no-ipc" not in {d.code for d in choice.diagnostics}
