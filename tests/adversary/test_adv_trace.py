"""`sandboxtui trace` against a hostile command (issue 14): the trace is the launcher's, and
nothing the command prints, names or floods forges, hides or redirects what it reports.

- strace-like lines the command prints (stdout, stderr, every descriptor it holds) are not
  read: the tracer writes to a pipe only the launcher holds;
- a path with a newline, a forged result and terminal escapes is one denial at its exact
  path, printed inert;
- thousands of denials from forked children are counted, the first MAX_ANALYSED explained;
- a report path the command swaps for a link is never written through;
- a result inside a quoted argument forges nothing, and no suggestion opens the root, system
  files, the home directory or the workspace's parents (synthetic lines over a real plan).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Runner, chown_tree, make_workspace, plan_for

from sandboxtui.core import trace

FORGED = ('1 openat(AT_FDCWD, "/etc/forged", O_WRONLY|O_CREAT, 0666) = -1 EROFS '
          "(Read-only file system)")


@pytest.fixture
def ws(runner: Runner, shared_dir: Path) -> Iterator[Path]:
    if shutil.which("strace") is None:
        pytest.fail("strace is missing: install it (CI does)")
    base = Path(tempfile.mkdtemp(dir=shared_dir))
    base.chmod(0o755)
    made = make_workspace(base)
    chown_tree(base, runner.user)
    yield made
    shutil.rmtree(base, ignore_errors=True)


def _trace(runner: Runner, ws: Path, command: list[str], *flags: str
           ) -> subprocess.CompletedProcess[str]:
    argv = [*runner.prefix(), "trace", *flags, "--config", str(runner.config), "--cwd",
            str(ws), *runner.bwrap_options(), "-c", 'sensitive_path_precheck_mode="off"',
            "--", *command]
    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env)


def test_lines_the_command_prints_forge_nothing(runner: Runner, ws: Path) -> None:
    script = (f"line='{FORGED}'\n"
              'echo "$line"; echo "$line" >&2\n'
              "for fd in 3 4 5 6 7 8 9; do (echo \"$line\" >&$fd) 2>/dev/null; done\n"
              "for f in /proc/*/fd/*; do (echo \"$line\" > \"$f\") 2>/dev/null; done\n"
              "exit 0\n")
    done = _trace(runner, ws, ["sh", "-c", script], "--json")
    report = json.loads(done.stdout)
    assert report["exit"] == 0, done.stderr
    assert FORGED in done.stderr  # the command's own output, as it printed it
    assert all(d["path"] != "/etc/forged" for d in report["denials"]), report


def test_a_hostile_path_is_one_denial_at_its_exact_name_printed_inert(
        runner: Runner, ws: Path) -> None:
    # one file name (no slash): a newline, a whole forged strace line, terminal escapes
    hostile = ('/etc/sbx-a\n1 openat(AT_FDCWD, "forged", O_WRONLY) = -1 EROFS (Read-only file '
               'system)\x1b]0;pwned\x07\x1b[2J')
    command = ["/usr/bin/python3", "-c", "import sys\ntry: open(sys.argv[1], 'w')\n"
               "except OSError as e: print(e.errno)", hostile]
    done = _trace(runner, ws, command, "--json")
    report = json.loads(done.stdout)
    assert [d["path"] for d in report["denials"]] == [hostile], report
    assert report["denials"][0]["errno"] == "EROFS"
    shown = _trace(runner, ws, command)
    assert "\x1b" not in shown.stderr and "\x07" not in shown.stderr
    assert "forged" not in [line.split()[1].rsplit("/", 1)[-1]
                            for line in shown.stderr.splitlines()
                            if line.startswith("sandboxtui:   ")]


def test_thousands_of_denials_from_forks_are_counted_and_bounded(runner: Runner,
                                                                 ws: Path) -> None:
    children, each = 250, 12
    script = ("import os\n"
              f"for c in range({children}):\n"
              "    if os.fork() == 0:\n"
              f"        for i in range({each}):\n"
              "            try: open(f'/etc/sbx-flood-{c}-{i}', 'w')\n"
              "            except OSError: pass\n"
              "        os._exit(0)\n"
              "    os.wait()\n")
    done = _trace(runner, ws, ["/usr/bin/python3", "-c", script], "--json")
    report = json.loads(done.stdout)
    assert report["exit"] == 0, done.stderr
    assert len(report["denials"]) == trace.MAX_ANALYSED
    assert report["not_analysed"] == children * each - trace.MAX_ANALYSED
    assert all(d["path"].startswith("/etc/sbx-flood-") and d["count"] == 1
               for d in report["denials"])


def test_the_report_never_follows_a_link_the_command_plants(runner: Runner, ws: Path) -> None:
    """--report inside the workspace: the command swaps it for a link to a file of the user's
    (a shell profile); the launcher writes through the file it opened before the run, says the
    report was moved, and the linked file keeps its content. A link already there is refused."""
    victim = ws.parent / "profile"
    victim.write_text("keep\n")
    chown_tree(ws.parent, runner.user)
    report = ws / "report.json"
    command = ["sh", "-c", 'rm -f "$1"; ln -s "$2" "$1"; echo x > /etc/sandboxtui-x', "sh",
               str(report), str(victim)]
    done = _trace(runner, ws, command, "--report", str(report))
    assert done.returncode == 2, done.stderr
    assert victim.read_text() == "keep\n"
    assert "was replaced while the command ran" in done.stderr
    assert '"path": "/etc/sandboxtui-x"' in done.stderr  # the report, given on stderr instead
    again = _trace(runner, ws, command, "--report", str(report))
    assert again.returncode == 2 and "a symbolic link is refused" in again.stderr
    assert victim.read_text() == "keep\n"


# --- synthetic tracer lines over a real plan ---------------------------------------------------


def _analyse(ws: Path, text: str) -> trace.TraceReport:
    plan = plan_for(ws)
    return trace.analyse(text, plan, 0, lambda override: plan_for(ws, override),
                         network_on=False)


def test_a_result_inside_a_quoted_argument_is_not_a_result(tmp_path: Path) -> None:
    forged = ('100 symlinkat("/root/.bashrc", AT_FDCWD, "f) = -1 EROFS (Read-only file '
              'system)") = 0\n'
              '101 execve("/usr/bin/ln", ["ln", "x) = -1 EROFS (Read-only file system)"], '
              '0x7ff /* 3 vars */) = 0\n')
    assert _analyse(tmp_path, forged) == trace.TraceReport(0, (), (), 0)


def test_no_suggestion_opens_the_root_system_files_home_or_the_workspaces_parents() -> None:
    base = Path(tempfile.mkdtemp(dir="/var/tmp"))  # outside /tmp, a writable root
    try:
        ws = base / "ws"
        ws.mkdir()
        home = os.path.realpath(os.path.expanduser("~"))
        (base / "out").mkdir()  # a writable root must exist to be one
        refused = ["/foo", "/etc/x", "/usr/share/x", f"{home}/y", f"{base}/sibling",
                   f"{base}/out/f"]
        text = "".join(f'{i} openat(AT_FDCWD, "{p}", O_WRONLY|O_CREAT, 0666) = -1 EROFS '
                       "(Read-only file system)\n" for i, p in enumerate(refused, 1))
        report = _analyse(ws, text)
    finally:
        shutil.rmtree(base)
    suggestions = {d.path: d.suggestion for d in report.denials}
    for path in refused[:-1]:
        suggestion = suggestions[path]
        assert suggestion is not None and suggestion.flag is None, (path, suggestion)
        assert "nothing is suggested" in suggestion.widens
    ok = suggestions[refused[-1]]
    assert ok is not None and ok.flag == (
        f"-c 'sandbox_workspace_write.writable_roots=[\"{base}/out\"]'")


def test_the_run_hint_quotes_a_hostile_path_inert(runner: Runner, ws: Path) -> None:
    """A failed untraced run whose stderr names a refused path full of terminal escapes: the
    command's own bytes pass through as they are (its stderr is its own), the hint line that
    sandboxtui adds is inert and its rule is explain()'s."""
    name = "/etc/sbx-\x1b]0;pwned\x07\x1b[2J"
    done = runner.run(ws, ["/usr/bin/python3", "-c", "import sys\ntry: open(sys.argv[1], 'w')\n"
                           "except OSError as e: sys.exit(f'{sys.argv[1]}: {e.strerror}')", name])
    assert done.returncode == 1
    (hint,) = [line for line in done.stderr.splitlines() if "in this sandbox" in line]
    assert "\x1b" not in hint and "\x07" not in hint
    assert hint.startswith("sandboxtui: /etc/sbx-") and "read-only bind of /" in hint
