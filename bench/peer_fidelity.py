"""Peer fidelity: does `sandboxtui --codex` enforce what Codex enforces, on the same config?

    npm install --prefix SCRATCH @openai/codex
    .venv/bin/python bench/peer_fidelity.py --codex-bin SCRATCH/node_modules/.../bin/codex

Not part of CI: it needs the peer installed. For each scenario (legacy workspace-write,
read-only, a permission profile with a `none` entry and a nested write, network on) it writes
one Codex config (and a fifth: a profile reading only `:minimal`, the project and the Codex
home, with a deny glob), then runs the same probes (read/list/write/create/rename/delete/execute of
~100 workspace and system paths; host TCP, UDP and Unix listeners; an own Unix socket and a
socketpair) once under `codex sandbox` and once under sandboxtui's plan of that config
(`--codex`), and prints per probe Codex's answer, sandboxtui's `explain()` and sandboxtui's
real answer. Agreement is the goal; where they differ, sandboxtui must be the stricter one
(a deliberate difference, named with the rule that decides it), never the looser.

`codex sandbox` 0.171 ignores a `sandbox_mode` from config.toml (it runs `:read-only` then),
while the Codex agent honours it: the legacy scenarios pass their settings as `-c`, given to
both peers alike. Codex refuses a CODEX_HOME under /tmp, so the scratch tree lives in
~/.cache. Run it as a user whose home is not beneath /tmp.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from sandboxtui.core import verify
from sandboxtui.core.agents import resolve_policy
from sandboxtui.core.plan import build_plan

SCENARIOS: dict[str, tuple[str, list[str]]] = {
    "legacy workspace-write": ('model = "o3"\napproval_policy = "never"\n',
                               ['sandbox_mode="workspace-write"']),
    "read-only": ('model = "o3"\n', ['sandbox_mode="read-only"']),
    "profile: none + nested write": ("""model = "o3"
default_permissions = "dev"

[permissions.dev]
extends = ":workspace"

[permissions.dev.filesystem]
"{ws}/secret" = "none"
"{ws}/secret/open" = "write"
":project_roots" = {{ "." = "write", "docs" = "read" }}
""", []),
    "network on": ('model = "o3"\n', ['sandbox_mode="workspace-write"',
                                      "sandbox_workspace_write.network_access=true"]),
    "profile: :minimal read (restricted), deny glob": ("""default_permissions = "lean"

[permissions.lean.filesystem]
":minimal" = "read"
":project_roots" = {{ "." = "write", "**/*.pem" = "none" }}
"{home}" = "read"  # Codex runs its own helper (a link in its home to its executable)
"{codex}" = "read"
""", []),
}


def make_workspace(base: Path) -> Path:
    """A repository with the shapes the probes need: secrets, protected names, a nested
    repository, a read-only docs tree, a denied tree with a writable hole, a script."""
    ws = base / "ws"
    for d in ("docs/guide", "secret/open", "src/pkg", "sub", ".codex", ".agents", "build"):
        (ws / d).mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", str(ws)], check=True)
    subprocess.run(["git", "init", "-q", str(ws / "sub")], check=True)
    files = {".env": "KEY=1\n", ".env.local": "KEY=2\n", "src/.env": "KEY=3\n",
             "README.md": "# ws\n", "docs/a.md": "a\n", "docs/guide/b.md": "b\n",
             "secret/key.pem": "k\n", "secret/open/note.txt": "n\n", "src/pkg/m.py": "x = 1\n",
             "sub/file.txt": "s\n", ".codex/config.toml": "\n", ".agents/a.md": "a\n",
             "build/out.o": "o\n"}
    for name, text in files.items():
        (ws / name).write_text(text)
    script = ws / "run.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o755)
    return ws


def probe_paths(ws: Path, base: Path) -> list[str]:
    inside = sorted({str(p) for p in ws.rglob("*") if ".git/objects" not in str(p)})[:70]
    home = os.path.expanduser("~")
    system = ["/etc/passwd", "/etc/hostname", "/usr/bin/env", "/bin/sh", "/usr/lib", "/tmp",
              "/var/tmp", "/opt", "/srv", home, os.path.join(home, ".bashrc"),
              os.path.join(home, ".cache"), str(base), str(base / "home" / "config.toml"),
              "/dev/null", "/dev/shm", "/proc/self/status", "/proc/sys/kernel/hostname"]
    missing = [str(ws / n) for n in (".aws", "new-dir", "docs/new.md", "secret/new",
                                      "secret/open/new", "sub/.git/new")]
    return [*inside, *[p for p in system if os.path.lexists(p)], *missing]


def codex_answers(codex: str, home: Path, ws: Path, overrides: list[str], probes: list,
                  python: str) -> list[dict]:
    argv = [codex, "sandbox", *(a for o in overrides for a in ("-c", o)), "--",
            *verify.probe_command(python, probes)]
    env = {**os.environ, "CODEX_HOME": str(home)}
    out = subprocess.run(argv, cwd=ws, env=env, capture_output=True, text=True, timeout=300)
    answers = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    if len(answers) != len(probes):
        sys.exit(f"codex sandbox answered {len(answers)} of {len(probes)} probes: "
                 f"{out.stderr.strip()[-500:]}")
    return answers


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--codex-bin", default=shutil.which("codex"),
                        help="the codex executable (default: codex on PATH)")
    parser.add_argument("--verbose", action="store_true", help="print every probe")
    args = parser.parse_args()
    if not args.codex_bin:
        sys.exit("no codex: npm install --prefix SCRATCH @openai/codex, then --codex-bin")
    cache = Path(os.path.expanduser("~/.cache"))
    cache.mkdir(parents=True, exist_ok=True)
    base = Path(tempfile.mkdtemp(prefix="sandboxtui-peer-fidelity-", dir=cache))
    totals = {"probes": 0, "agree": 0, "stricter": 0, "looser": 0, "explain-mismatch": 0}
    try:
        ws = make_workspace(base)
        home = base / "home"
        home.mkdir()
        paths = probe_paths(ws, base)
        for name, (config, overrides) in SCENARIOS.items():
            (home / "config.toml").write_text(config.format(
                ws=ws, home=home, codex=os.path.dirname(os.path.realpath(args.codex_bin))))
            env = {**os.environ, "CODEX_HOME": str(home)}
            policy = resolve_policy(cwd=str(ws), codex=str(home / "config.toml"),
                                    overrides=overrides, env=env)
            plan = build_plan(policy, str(ws), env)
            report = verify.verify(plan, paths, sample=0)
            fs = [r for r in report.results if r.probe.op not in verify.NET_OPS]
            who = verify.sandbox_identity(True)
            python = verify.probe_interpreter(plan, who)
            with verify.loopback() as host:
                net = verify.network_probes(host.tcp, host.udp, host.unix)
                probes = [r.probe for r in fs] + net
                answers = codex_answers(args.codex_bin, home, ws, overrides, probes, python)
                if not host.udp_delivered():
                    answers = [{**a, "ok": False} if probes[a["i"]].op == "udp" else a
                               for a in answers]
            ours = {(r.probe.op, r.probe.path if r.probe.op not in verify.NET_OPS else "-"): r
                    for r in report.results}
            print(f"\n== {name}: {len(probes)} probes "
                  f"(config: {' '.join(overrides) or 'config.toml'})")
            counts = dict.fromkeys(totals, 0)
            for probe, answer in zip(probes, answers, strict=True):
                key = (probe.op, probe.path if probe.op not in verify.NET_OPS else "-")
                r = ours[key]
                codex_ok, real, predicted = bool(answer["ok"]), r.observed, r.predicted.allowed
                verdict = ("agree" if codex_ok == real else
                           "stricter" if codex_ok and not real else "looser")
                counts["probes"] += 1
                counts[verdict] += 1
                if predicted != real:
                    counts["explain-mismatch"] += 1
                shown = verdict != "agree" or predicted != real or args.verbose
                if shown:
                    print(f"  {verdict:<8} {probe.op:<14} {key[1]:<60} codex="
                          f"{'allowed' if codex_ok else 'denied':<7} explain="
                          f"{'allowed' if predicted else 'denied':<7} sandboxtui="
                          f"{'allowed' if real else 'denied':<7} ({r.predicted.why})")
            print("  " + ", ".join(f"{k} {v}" for k, v in counts.items()))
            for k, v in counts.items():
                totals[k] += v
        print("\nall scenarios: " + ", ".join(f"{k} {v}" for k, v in totals.items()))
        print("deliberate differences (sandboxtui's side of each):")
        for d in policy.agent.differences if policy.agent else ():
            print(f"  {d.line('Codex')}")
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 1 if totals["looser"] or totals["explain-mismatch"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
