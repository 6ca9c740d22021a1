"""`sandboxtui run` takes the lean path: its options parsed without argparse (read from the same
declarations), no TOML parser without a config file or `-c`, and with the compiled seccomp
program cached, no pyseccomp and no libseccomp compile. Real launches, root and nobody; the
parsed options agree with argparse's wherever the lean path answers."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from conftest import Runner, chown_tree

from sandboxtui.cli import _parse_run, build_parser

NOT_ON_THE_LEAN_PATH = ("argparse", "tomllib", "pyseccomp", "textual")


def _imported(runner: Runner, ws: Path, home: Path) -> set[str]:
    """The modules a `run -- /bin/true` imported (python -X importtime), with no config."""
    prefix = runner.prefix()
    at = prefix.index("-m")
    prefix[at:at] = ["-X", "importtime"]
    settings = {"XDG_STATE_HOME": f"{home}/state", "XDG_CONFIG_HOME": f"{home}/config"}
    env = {k: v for k, v in os.environ.items() if k not in ("XDG_RUNTIME_DIR", *settings)}
    if "env" in prefix:
        prefix[prefix.index("env") + 1:prefix.index("env") + 1] = [
            f"{k}={v}" for k, v in settings.items()]
    else:
        env |= settings
    done = subprocess.run([*prefix, "run", "--cwd", str(ws), *runner.bwrap_options(), "--",
                           "/bin/true"], capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    return {line.rsplit("|", 1)[1].strip() for line in done.stderr.splitlines()
            if line.startswith("import time:") and "|" in line}


def test_run_imports_no_argparse_toml_or_libseccomp_binding(runner: Runner, workspace: Path,
                                                           shared_dir: Path) -> None:
    home = shared_dir / f"home-{os.urandom(4).hex()}"
    home.mkdir()
    chown_tree(home, runner.user)
    chown_tree(workspace, runner.user)
    first = _imported(runner, workspace, home)  # compiles the filter, fills the cache
    assert "sandboxtui.core.launch" in first and "pyseccomp" in first
    again = _imported(runner, workspace, home)
    assert "sandboxtui.core.launch" in again
    # the vendored-bwrap runner passes `-c system_bwrap=...`: a TOML value, parsed as such
    absent = {*NOT_ON_THE_LEAN_PATH} - ({"tomllib"} if runner.bwrap_options() else set())
    assert not {m for m in again if m.split(".")[0] in absent}


ANSWERED = [
    ["run", "--", "/bin/true"],
    ["run", "/bin/true", "-x", "--timeout", "3"],
    ["run", "--timeout", "5", "--", "a", "--", "b"],
    ["run", "-c", "a=1", "-c", 'b="x"', "--cwd=/tmp", "--no-proc", "--verbose", "--dry-run", "x"],
    ["run", "-s", "read-only", "--config", "/x", "--profile", "p", "--", "y"],
    ["run", "--timeout=2.5", "x"],
    ["run"],
    ["run", "--"],
]
LEFT_TO_ARGPARSE = [
    ["run", "-h"],
    ["run", "--timeout", "abc", "--", "x"],  # argparse's own error message
    ["run", "--time", "5", "x"],  # an abbreviation
    ["run", "--timeout", "-5", "x"],
    ["run", "--config"],
    ["run", "--verbose=1", "x"],
    ["run", "--no-such-option", "x"],
]


@pytest.mark.parametrize("argv", ANSWERED, ids=" ".join)
def test_the_lean_parse_is_argparses(argv: list[str]) -> None:
    lean = _parse_run(argv)
    assert lean is not None
    full = vars(build_parser().parse_args(argv))
    full.pop("version")
    assert vars(lean) == full


@pytest.mark.parametrize("argv", LEFT_TO_ARGPARSE, ids=" ".join)
def test_anything_else_is_left_to_argparse(argv: list[str]) -> None:
    assert _parse_run(argv) is None
