"""The Unix-socket gate's choice: where this machine cannot run it, the launch says so and the
older filter (no AF_UNIX sockets at all) is both shown and loaded; never a silent gap."""

from __future__ import annotations

import json
import subprocess
from dataclasses import replace
from pathlib import Path

from conftest import Runner, chown_tree, make_workspace

from sandboxtui.core import unix_gate
from sandboxtui.core.config import resolve
from sandboxtui.core.diagnostics import probe
from sandboxtui.core.pipeline import choose_pipeline
from sandboxtui.core.plan import build_plan
from sandboxtui.core.seccomp import HOST_FILTER, NETWORK_FILTER, NETWORK_FILTER_NO_GATE

WHY = "the kernel has no SIOCUNIXFILE (Linux 6.1)"


def test_this_machine_runs_the_gate() -> None:
    assert unix_gate.unavailable() is None  # Linux 6.18: CI's kernel has every feature


def test_without_the_gate_the_choice_warns_and_refuses_unix_sockets(tmp_path: Path) -> None:
    caps = replace(probe(launch_test=False), unix_gate_error=WHY)
    config = tmp_path / "config.toml"
    config.write_text("")
    plan = build_plan(resolve(config_path=config), str(tmp_path))
    choice = choose_pipeline(plan, caps)
    assert not choice.unix_gate and choice.seccomp_filter(plan.policy) is NETWORK_FILTER_NO_GATE
    [warning] = [d for d in choice.diagnostics if d.code == "no-unix-gate"]
    assert WHY in warning.cause and "Linux 6.1" in warning.remedy
    with_gate = choose_pipeline(plan, replace(caps, unix_gate_error=None))
    assert with_gate.unix_gate and with_gate.seccomp_filter(plan.policy) is NETWORK_FILTER
    assert not [d for d in with_gate.diagnostics if d.code == "no-unix-gate"]
    on = build_plan(resolve(config_path=config, overrides=[
        "sandbox_workspace_write.network_access=true"]), str(tmp_path))
    choice_on = choose_pipeline(on, caps)  # no network cut, so no gate to miss
    assert choice_on.seccomp_filter(on.policy) is HOST_FILTER
    assert not [d for d in choice_on.diagnostics if d.code == "no-unix-gate"]


LAUNCH = r"""
import json, sys
from dataclasses import replace
from sandboxtui.core.config import resolve
from sandboxtui.core.diagnostics import probe
from sandboxtui.core.launch import prepare, start
from sandboxtui.core.plan import build_plan
ws, config, gate = sys.argv[1], sys.argv[2], sys.argv[3] == "gate"
overrides = ['sensitive_path_precheck_mode="off"', *json.loads(sys.argv[4])]
plan = build_plan(resolve(config_path=config, overrides=overrides), ws)
caps = probe(plan.policy.system_bwrap, launch_test=False)
caps = caps if gate else replace(caps, unix_gate_error="no gate on this machine")
code = ("import errno, socket\ntry:\n    socket.socket(socket.AF_UNIX).close(); print('ok')\n"
        "except OSError as e:\n    print(errno.errorcode[e.errno])")
spec = prepare(plan, ["/usr/bin/python3", "-c", code], caps=caps)
result = start(spec).wait()  # the command prints on our stdout, first
from sandboxtui.core.unix_gate import gate_program
print(json.dumps({"filter": spec.seccomp.name, "gated": gate_program(spec.seccomp) is not None,
                  "exit": result.exit_code}))
"""


def test_the_launch_loads_what_the_choice_shows(runner: Runner, shared_dir: Path) -> None:
    """With and without the gate: the filter named, the gate installed, the kernel's answer."""
    base = Path(shared_dir / f"gate-{runner.user}-{runner.bwrap}")
    base.mkdir(exist_ok=True)
    ws = make_workspace(base)
    chown_tree(ws, runner.user)
    python = runner.prefix()[:-2]  # the interpreter (and user) that runs sandboxtui
    seen = {}
    for gate in ("gate", "none"):
        overrides = runner.bwrap_options()[1::2]  # the values of its -c options
        done = subprocess.run([*python, "-c", LAUNCH, str(ws), str(runner.config), gate,
                               json.dumps(overrides)], capture_output=True, text=True,
                              timeout=60, cwd=str(ws))
        assert done.returncode == 0, done.stderr
        lines = done.stdout.strip().splitlines()
        seen[gate] = (lines[0], json.loads(lines[-1]))
    assert seen["gate"] == ("ok", {"filter": "network-off", "gated": True, "exit": 0})
    assert seen["none"] == ("EPERM", {"filter": "network-off-no-unix-gate", "gated": False,
                                      "exit": 0})
