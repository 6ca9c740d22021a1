"""Verify in one launch: 1,000 probes in one sandbox launch vs the same 1,000 probes, one launch
each.

    .venv/bin/python bench/verify.py [--probes N] [--pipeline bwrap|legacy]

Over the demo workspace (workspace-write, network off) plus generated files, the probes are
what `verify` itself runs (read, write, rename, list, create, mkdir, delete, execute,
create-missing) and every answer is checked against its prediction, so both sides do the same
work. Prints both wall times and their ratio.
"""

from __future__ import annotations

import argparse
import random
import shutil
import time
from dataclasses import replace
from itertools import cycle, islice

from sandboxtui.core import verify as v
from sandboxtui.core.config import resolve
from sandboxtui.core.plan import build_plan
from sandboxtui.demo import create_demo


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probes", type=int, default=1000)
    parser.add_argument("--pipeline", choices=("bwrap", "legacy"), default="bwrap")
    args = parser.parse_args()

    ws, config = create_demo()
    try:
        for i in range(250):
            (ws / "src" / f"module_{i}.py").write_text(f"VALUE = {i}\n")
        legacy = args.pipeline == "legacy"
        policy = resolve(config_path=config)
        if legacy:  # the demo's `secrets = none` entry would keep it on bubblewrap
            policy = replace(policy, fs_entries=(), use_legacy_landlock=True)
        plan = build_plan(policy, str(ws))
        paths = v.sample_paths(plan, 200, random.Random(1))
        paths += [str(p) for p in sorted((ws / "src").iterdir())]
        found = [p for path in paths for p in v.probes_for_path(plan, path)[0]]
        probes = list(islice(cycle(found), args.probes))
        who = v.sandbox_identity(sandboxed=True)
        python = v.probe_interpreter(plan, who)
        enforcer = v.prepare_probes(plan, probes[:1], python).enforcer
        predictions = [v.predict(plan, p, who, enforcer) for p in probes]

        started = time.monotonic()
        spec = v.prepare_probes(plan, probes, python)
        one = v.compare(probes, predictions, v.run_probes(spec, len(probes)),
                        spec.enforcer.unenforced)
        one_launch = time.monotonic() - started

        started = time.monotonic()
        many = []
        for probe, prediction in zip(probes, predictions, strict=True):
            spec = v.prepare_probes(plan, [probe], python)
            many += v.compare([probe], [prediction], v.run_probes(spec, 1),
                              spec.enforcer.unenforced)
        separate = time.monotonic() - started
    finally:
        shutil.rmtree(ws.parent, ignore_errors=True)

    bad = sum(r.counts_as_mismatch for r in one) + sum(r.counts_as_mismatch for r in many)
    print(f"pipeline: {spec.pipeline.value}; {len(probes)} probes "
          f"({len(set(probes))} distinct), mismatches: {bad}")
    print(f"one launch:           {one_launch:8.3f} s")
    print(f"{len(probes)} separate launches: {separate:8.3f} s "
          f"({separate / len(probes) * 1000:.1f} ms per launch)")
    print(f"ratio:                {separate / one_launch:8.1f}x")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
