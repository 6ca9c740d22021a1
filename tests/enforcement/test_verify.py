"""`sandboxtui verify` against the real kernel: the demo workspace verifies with zero mismatches
on bubblewrap (as root and as `nobody`), the legacy Landlock pipeline (as `nobody`: a root
launcher stays on bubblewrap) shows exactly its documented unenforced paths, a plan whose argv
silently lost a mount is caught, and probing never changes the host.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from conftest import Runner, chown_tree, plan_for

from sandboxtui.cli import render_verify
from sandboxtui.core import verify as v
from sandboxtui.core.config import resolve
from sandboxtui.core.mask_stage import split_ops
from sandboxtui.core.pipeline import Pipeline
from sandboxtui.core.plan import MountPlan, OpKind, build_plan
from sandboxtui.demo import create_demo


def demo_in(shared_dir: Path, user: str) -> tuple[Path, Path]:
    """The demo workspace, reachable by (and owned by) `user`."""
    ws, config = create_demo(parent=str(shared_dir))
    ws.parent.chmod(0o755)
    chown_tree(ws, user)
    chown_tree(ws.parent / "extra-root", user)
    return ws, config


def demo_plan(ws: Path, config: Path, **changes: Any) -> MountPlan:
    return build_plan(replace(resolve(config_path=config), **changes), str(ws))


def verify_cli(runner: Runner, ws: Path, config: Path, *args: str) -> tuple[int, dict[str, Any]]:
    argv = [*runner.prefix(), "verify", "--json", "--config", str(config), "--cwd", str(ws),
            *runner.bwrap_options(), *args]
    env = {k: val for k, val in os.environ.items() if k != "XDG_RUNTIME_DIR"}
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env)
    assert proc.stdout, proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def by_probe(report: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["op"], r["path"]): r for r in report["results"]}


def snapshot(root: Path) -> dict[str, tuple[Any, ...]]:
    """Every entry under root: type, mode, owner, and content (files: bytes and mtime)."""
    state: dict[str, tuple[Any, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            if os.path.islink(path):
                state[path] = ("link", os.readlink(path))
            elif os.path.isdir(path):
                state[path] = ("dir", st.st_mode, st.st_uid)
            else:
                state[path] = ("file", st.st_mode, st.st_uid, st.st_mtime_ns,
                               Path(path).read_bytes())
    return state


def test_demo_verifies_with_zero_mismatches_on_bubblewrap(runner: Runner,
                                                          shared_dir: Path) -> None:
    ws, config = demo_in(shared_dir, runner.user)
    code, report = verify_cli(runner, ws, config, "--sample", "30", "--seed", "7")
    bad = [r for r in report["results"] if not r["ok"]]
    assert code == 0 and report["ok"] and not bad, bad
    assert report["pipeline"] == "bubblewrap" and report["launches"] == 1
    assert report["probes"] > 80
    got = by_probe(report)
    # Both sides of the picture were exercised, and the kernel said why.
    assert got[("read", str(ws / ".env"))]["observed"] == "denied (EACCES)"
    assert got[("read", str(ws / "sub" / ".env.local"))]["observed"] == "denied (EACCES)"
    assert got[("list", str(ws / "secrets"))]["observed"].startswith("denied")
    assert got[("create", str(ws / ".git"))]["observed"] == "denied (EROFS)"
    assert got[("create-missing", str(ws / ".agents"))]["predicted"] == "denied"
    assert got[("write", str(ws / "README.md"))]["observed"] == "allowed"
    assert got[("create", str(ws))]["observed"] == "allowed"
    assert got[("read", "/etc/hostname")]["observed"] == "allowed"
    assert got[("execute", "/usr/bin/true")]["observed"] == "allowed"
    ops = {r["op"]: r["observed"] for r in report["results"]}
    # The sandbox's own network namespace: the host's loopback refuses, datagrams never
    # arrive; a Unix socket may be made, but the gate refuses the host's listener.
    assert (ops["tcp"], ops["udp"]) == ("denied (ECONNREFUSED)", "denied (NOT-DELIVERED)")
    assert (ops["unix-socket"], ops["socketpair"]) == ("allowed", "allowed")
    assert ops["unix-host"] == "denied (EACCES)"
    if runner.user == "nobody":  # host permission bits decide for the unprivileged user
        assert got[("list", "/root")]["observed"] == "denied (EACCES)"
        assert got[("create", str(ws.parent))]["observed"] == "denied (EACCES)"


def legacy_config(ws: Path, config: Path) -> Path:
    """The demo config without its `secrets = none` entry: legacy Landlock cannot express that
    subtraction (it would stay on bubblewrap), so this is the demo the legacy pipeline runs."""
    kept = [line for line in config.read_text().splitlines(keepends=True)
            if "default_permissions" not in line and "secrets" not in line
            and "[permissions.demo" not in line]
    legacy = config.with_name("legacy.toml")
    legacy.write_text("".join(kept))
    legacy.chmod(0o644)
    return legacy


def test_legacy_pipeline_reports_exactly_its_unenforced_paths(shared_dir: Path) -> None:
    ws, config = demo_in(shared_dir, "nobody")
    runner = Runner("nobody", "system", legacy_config(ws, config))
    code, report = verify_cli(runner, ws, runner.config, "--pipeline", "legacy", "--sample",
                              "10", "-c", "sandbox_workspace_write.exclude_slash_tmp=true")
    assert report["pipeline"] == "legacy-landlock"
    assert code == 0 and report["mismatches"] == 0, [r for r in report["results"]
                                                     if r["status"] == "MISMATCH"]
    unenforced = set(report["unenforced"])
    assert {str(ws / ".env"), str(ws / "sub" / ".env.local"), str(ws / ".git"),
            str(ws / ".codex"), str(ws / ".agents")} <= unenforced
    expected = [r for r in report["results"] if r["status"] == "expected (unenforced)"]
    # Every documented unenforced path shows up as an expected mismatch, and nothing else.
    assert {r["rule"] for r in expected} == unenforced
    got = by_probe(report)
    assert got[("read", str(ws / ".env"))]["status"] == "expected (unenforced)"
    assert got[("create", str(ws))]["observed"] == "allowed"
    assert got[("create", "/usr/lib")]["observed"] == "denied (EACCES)"  # Landlock: no EROFS
    ops = {r["op"]: r["observed"] for r in report["results"]}
    assert ops["tcp"] == "denied (EPERM)"  # seccomp still cuts the network


def test_a_root_launcher_asking_for_legacy_is_verified_on_bubblewrap(shared_dir: Path) -> None:
    """Landlock cannot stop a root command from chmodding host files: root stays on bubblewrap,
    says why, and what verify probes is bubblewrap's picture (`.env` hidden)."""
    ws, config = demo_in(shared_dir, "root")
    runner = Runner("root", "system", legacy_config(ws, config))
    code, report = verify_cli(runner, ws, runner.config, "--pipeline", "legacy", "--sample", "0",
                              ".env")
    assert code == 0 and report["pipeline"] == "bubblewrap" and report["unenforced"] == []
    assert any("root launcher" in w and "bubblewrap is used" in w for w in report["warnings"])
    assert by_probe(report)[("read", str(ws / ".env"))]["observed"] == "denied (EACCES)"


def test_legacy_request_for_an_inexpressible_demo_stays_on_bubblewrap(
        shared_dir: Path) -> None:
    ws, config = demo_in(shared_dir, "nobody")
    code, report = verify_cli(Runner("nobody", "system", config), ws, config,
                              "--pipeline", "legacy", "--sample", "0", str(ws / "secrets"))
    assert code == 0 and report["pipeline"] == "bubblewrap" and report["unenforced"] == []
    assert any("cannot express" in w for w in report["warnings"])


def test_pipeline_bwrap_overrides_a_legacy_config(shared_dir: Path) -> None:
    ws, config = demo_in(shared_dir, "root")
    runner = Runner("root", "system", legacy_config(ws, config), pipeline="legacy")
    code, report = verify_cli(runner, ws, runner.config, "--pipeline", "bwrap", "--sample", "0")
    assert code == 0 and report["ok"] and report["pipeline"] == "bubblewrap"
    assert report["unenforced"] == [] and report["expected_mismatches"] == 0
    assert by_probe(report)[("read", str(ws / ".env"))]["observed"] == "denied (EACCES)"


def test_a_mount_missing_from_the_argv_is_caught(shared_dir: Path) -> None:
    """Proof the check can fail: the argv loses the mount that hides `.env`, the plan keeps it."""
    ws, config = demo_in(shared_dir, "root")
    plan = demo_plan(ws, config)
    victim = next(op for op in plan.ops
                  if op.kind is OpKind.DENY_FILE and op.dest == str(ws / ".env"))
    broken = replace(plan, ops=tuple(op for op in plan.ops if op is not victim))
    probes, _ = v.probes_for_path(plan, str(ws / ".env"))
    probes += v.probes_for_path(plan, str(ws / "README.md"))[0]
    who = v.sandbox_identity(sandboxed=True)
    python = v.probe_interpreter(plan, who)
    predictions = [v.predict(plan, p, who) for p in probes]

    intact_spec = v.prepare_probes(plan, probes, python)
    broken_spec = v.prepare_probes(broken, probes, python)
    # bwrap's argument, or the mask stage's mount (core/mask_stage.py): the same plan op
    mounted = [[*spec.argv(), *(op.dest for op in split_ops(spec.plan).staged)]
               for spec in (intact_spec, broken_spec)]
    assert str(ws / ".env") in mounted[0]
    assert str(ws / ".env") not in mounted[1]

    intact = v.compare(probes, predictions, v.run_probes(intact_spec, len(probes)))
    assert all(r.ok for r in intact)
    results = v.compare(probes, predictions, v.run_probes(broken_spec, len(probes)))
    report = v.VerifyReport(Pipeline.BWRAP, tuple(results), (), 1, 0.0, (), ())
    assert not report.ok
    caught = {(r.probe.op, r.probe.path) for r in report.mismatches}
    assert ("read", str(ws / ".env")) in caught
    assert all(r.ok for r in results if r.probe.path.endswith("README.md"))
    assert report.path_status() == {str(ws / ".env"): "mismatch",
                                    str(ws / "README.md"): "verified"}
    assert f"MISMATCH: read {ws / '.env'}" in render_verify(report, 0)


@pytest.mark.parametrize("legacy", [False, True], ids=["bubblewrap", "legacy"])
def test_probing_never_changes_the_host(legacy: bool, shared_dir: Path) -> None:
    user = "nobody" if legacy else "root"  # a root launcher never runs on legacy Landlock
    ws, config = demo_in(shared_dir, user)
    (ws / "tool.sh").write_text(f"#!/bin/sh\ntouch {ws}/tool-ran\n")  # must never really run
    (ws / "tool.sh").chmod(0o755)
    chown_tree(ws / "tool.sh", user)
    config = legacy_config(ws, config) if legacy else config
    plan = demo_plan(ws, config, use_legacy_landlock=legacy, exclude_slash_tmp=True)
    before = snapshot(ws.parent)
    paths = [*v.sample_paths(plan, 40, random.Random(3)), "README.md", "tool.sh"]
    code, report = verify_cli(Runner(user, "system", config), ws, config, "--sample", "0",
                              "--pipeline", "legacy" if legacy else "bwrap",
                              "-c", "sandbox_workspace_write.exclude_slash_tmp=true", *paths)
    assert report["pipeline"] == (Pipeline.LANDLOCK if legacy else Pipeline.BWRAP).value
    assert code == 0 and report["ok"], [r for r in report["results"]
                                        if r["status"] == "MISMATCH"]
    allowed = {(r["op"], r["path"]) for r in report["results"] if r["observed"] == "allowed"}
    # Allowed writes, creations, renames and executions really happened inside...
    for op, name in (("write", "README.md"), ("rename", "README.md"), ("create", ""),
                     ("mkdir", ""), ("delete", ""), ("execute", "tool.sh")):
        assert (op, str(ws / name) if name else str(ws)) in allowed
    if legacy:  # ...including those the legacy pipeline cannot stop
        assert {("read", str(ws / ".env")), ("rename", str(ws / ".env")),
                ("create", str(ws / ".git")), ("create-missing", str(ws / ".agents"))} <= allowed
    # ...and left the host exactly as it was (the script never ran).
    assert snapshot(ws.parent) == before
    assert not (ws / "tool-ran").exists()


@pytest.mark.parametrize("legacy", [False, True], ids=["bubblewrap", "legacy"])
def test_root_gets_no_permission_override_inside(legacy: bool, shared_dir: Path) -> None:
    """Host permission bits, not root's capabilities, decide inside; root asking for legacy
    Landlock (which could not stop it chmodding host files) stays on bubblewrap."""
    ws, config = demo_in(shared_dir, "root")
    (ws / "locked").write_text("x")
    (ws / "locked").chmod(0o000)
    (ws / "theirs").write_text("x")
    os.chown(ws / "theirs", 65534, 65534)
    (ws / "theirs").chmod(0o600)
    plan = demo_plan(ws, config, fs_entries=(), use_legacy_landlock=legacy)
    report = v.verify(plan, ["locked", "theirs"])  # relative to the workspace
    assert report.pipeline is Pipeline.BWRAP and report.unenforced == ()
    assert legacy is any("root launcher" in w for w in report.warnings), report.warnings
    assert report.ok, [r.to_json() for r in report.mismatches]
    reads = {r.probe.path: r for r in report.results if r.probe.op == "read"}
    for name in ("locked", "theirs"):
        r = reads[str(ws / name)]
        assert not r.predicted.allowed and r.errno == "EACCES"
        assert "host permissions" in r.predicted.why


@pytest.mark.parametrize("legacy", [False, True], ids=["bubblewrap", "legacy"])
def test_restricted_read_verifies_on_both_pipelines(legacy: bool, shared_dir: Path) -> None:
    """Bubblewrap's empty root lists its mount points; Landlock refuses to list `/`."""
    user = "nobody" if legacy else "root"  # a root launcher never runs on legacy Landlock
    ws, config = demo_in(shared_dir, user)
    config = legacy_config(ws, config)
    code, report = verify_cli(Runner(user, "system", config), ws, config, "--sample", "30",
                              "--seed", "5", "--pipeline", "legacy" if legacy else "bwrap",
                              "-c", 'read_access.mode="restricted"')
    assert report["pipeline"] == (Pipeline.LANDLOCK if legacy else Pipeline.BWRAP).value
    assert code == 0 and report["ok"], [r for r in report["results"]
                                        if r["status"] == "MISMATCH"]
    got = by_probe(report)
    assert (got[("list", "/")]["observed"] == "allowed") is not legacy
    assert got[("list", "/root")]["observed"] != "allowed"  # outside every readable root
    assert got[("read", "/etc/hostname")]["observed"] == "allowed"  # a platform default


def test_network_on_reaches_the_host_loopback(shared_dir: Path) -> None:
    ws, config = demo_in(shared_dir, "root")
    plan = build_plan(resolve(config_path=config, overrides=[
        "sandbox_workspace_write.network_access=true"]), str(ws))
    report = v.verify(plan, [])
    assert report.ok and report.launches == 1
    assert {r.probe.op: r.observed for r in report.results} == {
        "tcp": True, "udp": True, "unix-host": True, "unix-socket": True, "socketpair": True}


def test_proxy_mode_keeps_the_host_loopback_out_of_reach(shared_dir: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A datagram sent inside the private network namespace is "sent" but never arrives."""
    ws, config = demo_in(shared_dir, "root")
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # only needed to exist
    plan = build_plan(resolve(config_path=config, overrides=[
        'sandbox_workspace_write.network_access="proxy"']), str(ws))
    report = v.verify(plan, [])
    assert report.ok, [r.to_json() for r in report.mismatches]
    got = {r.probe.op: r for r in report.results}
    assert got["tcp"].errno == "ECONNREFUSED" and got["udp"].errno == "NOT-DELIVERED"
    assert got["unix-socket"].errno == "EPERM" and got["socketpair"].observed
    assert got["unix-host"].errno == "EPERM"


def test_verify_runs_from_a_worker_thread(shared_dir: Path) -> None:
    """How a UI runs it: off the main thread, the launcher's spawner thread owns the child."""
    ws, config = demo_in(shared_dir, "root")
    plan = demo_plan(ws, config)
    with ThreadPoolExecutor(1) as pool:
        report = pool.submit(v.verify, plan, v.node_paths(str(ws / "sub"))).result(timeout=60)
    assert report.ok and report.launches == 1
    assert report.path_status() == {str(ws / "sub"): "verified",
                                    str(ws / "sub" / ".env.local"): "verified"}


def test_without_a_readable_interpreter_verify_refuses_with_exit_4(shared_dir: Path) -> None:
    ws, config = demo_in(shared_dir, "root")
    argv = [*Runner("root", "system", config).prefix(), "verify", "--config", str(config),
            "--cwd", str(ws), "-c", 'read_access.mode="restricted"',
            "-c", "read_access.include_platform_defaults=false"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 4, proc.stderr
    assert "no Python interpreter the sandbox can execute" in proc.stderr
    assert "/usr/bin/python3" in proc.stderr


def test_sample_paths_cover_the_interesting_rules(shared_dir: Path) -> None:
    ws, config = demo_in(shared_dir, "root")
    plan = demo_plan(ws, config)
    paths = v.sample_paths(plan, 10, random.Random(0))
    for name in (".env", "sub/.env.local", ".git", ".codex", ".agents", "secrets",
                 "secrets/id_demo"):
        assert str(ws / name) in paths
    assert str(ws.parent / "extra-root") in paths and str(ws.parent) in paths
    # /dev and /proc: only the host-global kernel files and side-effect-free device nodes
    kernel = {p for p in v.KERNEL_PROBES if os.path.exists(p)}
    devices = {f"/dev/{d}" for d in v.SAFE_DEVICES if os.path.exists(f"/dev/{d}")}
    assert kernel and kernel | devices <= set(paths)
    rules = {r.path for r in plan.rules}
    assert {p for p in paths if p.startswith(("/dev/", "/proc/"))} - kernel - devices <= rules
    assert len(paths) == len(set(paths))


def test_execute_probes_only_files_stopped_before_they_run(tmp_path: Path) -> None:
    static = tmp_path / "static"
    static.write_bytes(b"\x7fELF" + bytes(60))  # an ELF without a program interpreter
    static.chmod(0o755)
    script = tmp_path / "script"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o755)
    true = Path("/usr/bin/true").read_bytes()
    setuid = tmp_path / "setuid"
    setuid.write_bytes(true)
    setuid.chmod(0o4755)
    musl = tmp_path / "musl"  # musl's loader ignores trace mode: the program would run
    loader = b"/lib64/ld-linux-x86-64.so.2"
    assert loader in true
    musl.write_bytes(true.replace(loader, b"/lib/ld-musl-x86_64.so.1".ljust(len(loader), b"\0")))
    musl.chmod(0o755)
    plan = plan_for(tmp_path, config=None)

    def executes(path: str) -> bool:
        return "execute" in {probe.op for probe in v.probes_for_path(plan, path)[0]}

    assert executes("/usr/bin/true")
    assert executes(str(script))
    for unsafe in (static, setuid, musl):
        assert not executes(str(unsafe))


def test_sample_is_validated() -> None:
    with tempfile.TemporaryDirectory() as d:
        proc = subprocess.run([*Runner("root", "system", Path(d)).prefix(), "verify",
                               "--cwd", d, "--sample", "-1"], capture_output=True, text=True)
    assert proc.returncode == 2 and "--sample" in proc.stderr


# --- the picture stays true: /proc/sys, absent /dev entries, placeholders, skeletons -----------

PICTURE = ["/proc/sys/kernel/domainname", "/proc/sys/kernel/core_pattern", "/dev/kmsg",
           "/dev/vda", ".agents", "/proc/sys"]


@pytest.mark.parametrize("pipeline", ["bwrap", "legacy"])
def test_kernel_files_devices_and_placeholders_agree_with_the_kernel(
        runner: Runner, pipeline: str, shared_dir: Path) -> None:
    """explain says ro for /proc/sys, none for /dev entries bwrap does not create, ro for a
    blocked missing protected name (an empty read-only directory inside); verify probes
    each, and the kernel agrees."""
    if pipeline == "legacy" and runner.bwrap == "vendored":
        pytest.skip("the legacy pipeline runs no bwrap")
    if pipeline == "legacy" and runner.user == "root":
        pytest.skip("a root launcher never runs on legacy Landlock (it stays on bubblewrap)")
    ws, config = demo_in(shared_dir, runner.user)
    runner = replace(runner, config=legacy_config(ws, config) if pipeline == "legacy"
                     else config, pipeline=pipeline)
    present = [p for p in PICTURE if os.path.lexists(p) or not p.startswith("/")]
    code, report = verify_cli(runner, ws, runner.config, "--pipeline", pipeline,
                              "-c", "sandbox_workspace_write.exclude_slash_tmp=true", *present)
    assert code == 0 and report["mismatches"] == 0, [r for r in report["results"]
                                                     if r["status"] == "MISMATCH"]
    got = by_probe(report)
    for sysctl in ("/proc/sys/kernel/domainname", "/proc/sys/kernel/core_pattern"):
        assert got[("write", sysctl)]["access"] == "ro"
        assert got[("write", sysctl)]["predicted"] == "denied"
        assert got[("read", sysctl)]["observed"] == "allowed"
    assert got[("list", "/proc/sys")]["observed"] == "allowed"
    agents = str(ws / ".agents")
    assert got[("list", agents)]["access"] == got[("create-missing", agents)]["access"] == "ro"
    assert got[("create-missing", agents)]["predicted"] == "denied"
    assert ("read", agents) not in got
    for dev in ("/dev/kmsg", "/dev/vda"):
        if dev in present:
            assert got[("read", dev)]["access"] == "none"
            assert got[("write", dev)]["predicted"] == "denied"
    if pipeline == "bwrap":
        expect = "EROFS" if runner.user == "root" else "EACCES"
        assert got[("write", "/proc/sys/kernel/domainname")]["errno"] == expect
        assert got[("read", "/dev/kmsg")]["errno"] == "ENOENT"  # absent inside
        # the placeholder: an empty directory that lists, where nothing can be created
        assert got[("list", agents)]["predicted"] == got[("list", agents)]["observed"] \
            == "allowed"
        assert got[("create-missing", agents)]["errno"] == "EEXIST"
    else:  # no placeholder on legacy: the name is absent
        assert got[("list", agents)]["predicted"] == "denied"
        assert got[("list", agents)]["status"] in ("ok", "expected (unenforced)")


def test_skeleton_directories_are_explained_as_they_are(shared_dir: Path) -> None:
    """Restricted read: bwrap creates the parents of mount points in its empty root; explain
    says ro (listing shows only those), and a verify of them matches the kernel."""
    ws, config = demo_in(shared_dir, "root")
    plan = build_plan(replace(resolve(config_path=config, overrides=[
        'read_access.mode="restricted"']), fs_entries=(), exclude_slash_tmp=True,
        exclude_tmpdir_env_var=True), str(ws))
    skeleton = str(shared_dir)  # in /tmp, itself not writable here
    ex = plan.explain(skeleton)
    assert ex.access.value == "ro" and "holds mount points" in ex.rule.reason
    assert plan.explain("/root").access.value == "none"  # no mount beneath it
    report = v.verify(plan, [skeleton, "/", "/root"])
    assert report.ok, [r.to_json() for r in report.mismatches]
    got = {(r.probe.op, r.probe.path): r for r in report.results}
    assert got[("list", skeleton)].observed and not got[("create", skeleton)].observed


def test_a_writable_proc_sys_is_caught(shared_dir: Path) -> None:
    """Proof the check can fail: the argv loses the read-only /proc/sys, the plan keeps it."""
    ws, config = demo_in(shared_dir, "root")
    plan = demo_plan(ws, config)
    broken = replace(plan, ops=tuple(op for op in plan.ops if op.kind is not OpKind.KERNEL_RO))
    probes = v.probes_for_path(plan, "/proc/sys/kernel/domainname")[0]
    who = v.sandbox_identity(sandboxed=True)
    python = v.probe_interpreter(plan, who)
    predictions = [v.predict(plan, p, who) for p in probes]
    for spec, ok in ((v.prepare_probes(plan, probes, python), True),
                     (v.prepare_probes(broken, probes, python), False)):
        results = v.compare(probes, predictions, v.run_probes(spec, len(probes)))
        write = next(r for r in results if r.probe.op == "write")
        assert write.ok is ok, write.to_json()


def test_no_proc_survives_a_pipeline_override(shared_dir: Path) -> None:
    """`verify --pipeline` rebuilds the plan: a hidden /proc stays hidden."""
    ws, config = demo_in(shared_dir, "root")
    plan = build_plan(resolve(config_path=config), str(ws), mount_proc=False)
    again = v.with_pipeline(plan, legacy=False)
    assert again.explain("/proc/1/cmdline").access.value == "none"
    assert "--proc" not in {op.describe() for op in again.ops}
