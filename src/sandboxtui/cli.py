"""The command line. Headless paths (`plan`, `explain`, `doctor`, `run`) never import Textual.

Exit codes: the command's own for `run`; 1 verify mismatch, or a patch that does not apply;
2 usage or config error; 3 denied by precheck or approval, or a patch to a denied path;
4 sandbox could not be enforced.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, TextIO

from sandboxtui.core.config import resolve, settings_table
from sandboxtui.core.outcome import ExitCode, SandboxtuiError
from sandboxtui.core.paths import remove_own_runtime_dirs
from sandboxtui.core.plan import MountPlan, build_plan
from sandboxtui.core.policy import Policy
from sandboxtui.core.terminal import inert

if TYPE_CHECKING:
    import argparse

    from sandboxtui.core.approvals.gate import GateResult
    from sandboxtui.core.audit import AuditRecord
    from sandboxtui.core.launch import LaunchSpec, RunningCommand
    from sandboxtui.core.outcome import RunResult
    from sandboxtui.core.verify import VerifyReport



class UsageError(SandboxtuiError):
    """Bad command-line input: exit 2, nothing run."""

    exit_code = ExitCode.USAGE


def _config_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="config file (default: "
                   "$XDG_CONFIG_HOME/sandboxtui/config.toml)")
    p.add_argument("--profile", help="profile from [profiles.NAME]")
    p.add_argument("-s", "--sandbox", dest="sandbox_mode",
                   help="read-only | workspace-write | danger-full-access")
    p.add_argument("-c", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key with a TOML value (repeatable)")
    p.add_argument("--codex", nargs="?", const="", default=None, metavar="CONFIG",
                   help="read Codex's config layers instead (default: $CODEX_HOME/config.toml); "
                   "--profile, -s and -c are then Codex's")
    p.add_argument("--claude", nargs="?", const="", default=None, metavar="SETTINGS",
                   help="read Claude Code's sandbox settings instead (default: ~/.claude and "
                   "the project's .claude/settings*.json), or an srt --settings file")
    p.add_argument("--strict", action="store_true",
                   help="with --codex/--claude: sandboxtui's stricter defaults on top")
    p.add_argument("--cwd", default=None, help="workspace root (default: current directory)")
    p.add_argument("--no-proc", action="store_true", help="do not mount a fresh /proc")


def build_parser(argparse: Any = None) -> argparse.ArgumentParser:
    """Every command's options, declared once. `argparse`: the module (by default), or
    `_Declared`, which records the same declarations for `run`'s lean path."""
    if argparse is None:
        import argparse

    class Version(argparse.Action):  # type: ignore[misc, name-defined]
        """`--version`: the installed distribution's version, read from the package metadata
        (declared once, in pyproject.toml) only when asked."""

        def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
            from importlib.metadata import PackageNotFoundError, version

            try:
                found = version("sandboxtui")
            except PackageNotFoundError:
                found = "unknown (not installed)"
            print(f"sandboxtui {found}")
            parser.exit()

    class Generated(argparse.Action):  # type: ignore[misc, name-defined]
        """`--print-completion SHELL`, `--print-schema`: generated from the declarations."""

        def __call__(self, parser: argparse.ArgumentParser, _: object, shell: str | None,
                     flag: str | None = None) -> None:
            from sandboxtui.completion import completion
            from sandboxtui.core.config_schema import schema_text

            print(completion(parser, shell) if shell else schema_text(), end="")
            parser.exit()

    # no abbreviations at the top: `demo --print` is not `--print-completion`
    parser = argparse.ArgumentParser(prog="sandboxtui", description=__doc__, allow_abbrev=False)
    parser.add_argument("--version", action=Version, nargs=0, help="print the version")
    parser.add_argument("--print-completion", action=Generated, metavar="SHELL",
                        choices=("bash", "zsh", "fish"), default=argparse.SUPPRESS,
                        help="print the completion script for SHELL (bash, zsh or fish)")
    parser.add_argument("--print-schema", action=Generated, nargs=0, default=argparse.SUPPRESS,
                        help="print the JSON Schema of the config file")
    sub = parser.add_subparsers(dest="command")

    ui = sub.add_parser("ui", help="open the TUI on the workspace (the default)")
    _config_options(ui)
    ui.add_argument("--all-workspaces", action="store_true",
                    help="answer the approval requests of headless runs in every workspace, "
                    "not only in this one")
    demo = sub.add_parser("demo", help="create a scratch demo workspace and open it")
    demo.add_argument("--print", action="store_true",
                      help="print the demo plan, no TUI (the demo workspace is kept)")
    demo.add_argument("--keep", action="store_true",
                      help="keep the scratch demo workspace when the TUI quits")

    plan = sub.add_parser("plan", help="print the effective mount plan")
    _config_options(plan)
    plan.add_argument("--json", action="store_true")

    explain = sub.add_parser("explain", help="why a path has the access it has")
    _config_options(explain)
    explain.add_argument("path")
    explain.add_argument("--json", action="store_true")

    doctor = sub.add_parser("doctor", help="startup diagnostics for this machine and policy")
    _config_options(doctor)
    doctor.add_argument("--json", action="store_true")

    run = sub.add_parser("run", help="run a command in the sandbox: run [options] -- CMD ARGS")
    _config_options(run)
    run.add_argument("--timeout", type=float, default=None, metavar="S",
                     help="kill the whole sandbox after S seconds")
    _approval_timeout_option(run)
    run.add_argument("--dry-run", action="store_true",
                     help="print the exact bwrap argv and the seccomp rules; run nothing")
    run.add_argument("--verbose", action="store_true",
                     help="print every warning (by default each once per workspace and day)")
    run.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- CMD ARGS")

    trace = sub.add_parser("trace", help="run a command as `run` does and explain every "
                           "operation the sandbox refused: trace [options] -- CMD ARGS")
    _config_options(trace)
    trace.add_argument("--timeout", type=float, default=None, metavar="S",
                       help="kill the whole sandbox after S seconds")
    _approval_timeout_option(trace)
    trace.add_argument("--json", action="store_true",
                       help="the report as JSON on stdout (the command's stdout goes to stderr)")
    trace.add_argument("--report", metavar="FILE", help="write the JSON report to FILE")
    trace.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- CMD ARGS")

    approvals = sub.add_parser("approvals", help="print the approvals audit log")
    approvals.add_argument("--json", action="store_true")

    patch = sub.add_parser("patch", help="apply a unified diff inside the workspace (never to "
                           "sensitive paths); exit 1 if it does not apply, 3 if denied")
    _config_options(patch)
    patch.add_argument("diff", metavar="FILE.diff", help="the unified diff ('-': stdin)")

    seccomp = sub.add_parser("seccomp", help="print the rule table of the seccomp filter the "
                             "policy loads (network off, on, or proxy mode)")
    _config_options(seccomp)
    seccomp.add_argument("--json", action="store_true")
    seccomp.add_argument("--pfc", action="store_true", help="libseccomp pseudo-filter code")

    verify = sub.add_parser("verify", help="probe the plan against the kernel in one real "
                            "launch; exit 1 on any mismatch")
    _config_options(verify)
    verify.add_argument("--json", action="store_true")
    verify.add_argument("--sample", type=int, default=20, metavar="N",
                        help="random workspace and system paths to add (without PATH; "
                        "default 20)")
    verify.add_argument("--seed", type=int, default=None, help="seed for the random sample")
    verify.add_argument("--pipeline", choices=("legacy", "bwrap"), default=None,
                        help="force the legacy Landlock or the bubblewrap pipeline")
    verify.add_argument("paths", nargs="*", metavar="PATH",
                        help="paths to probe (default: the plan's interesting paths)")
    return parser


def load_policy(args: argparse.Namespace) -> Policy:
    from sandboxtui.core.agents import resolve_policy

    return resolve_policy(cwd=workspace(args), config_path=args.config, profile=args.profile,
                          sandbox_mode=args.sandbox_mode, overrides=args.overrides,
                          codex=args.codex, claude=args.claude, strict=args.strict)


def workspace(args: argparse.Namespace) -> str:
    cwd = args.cwd if args.cwd is not None else os.getcwd()
    if "\0" in cwd:
        raise UsageError("--cwd contains a NUL byte")
    if not os.path.isdir(cwd):
        raise UsageError(f"--cwd {cwd!r} is not a directory")
    return os.path.abspath(cwd)


def load_plan(args: argparse.Namespace) -> MountPlan:
    return build_plan(load_policy(args), workspace(args), mount_proc=not args.no_proc)


def _approval_timeout_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--approval-timeout", type=float, default=None, metavar="S",
                   help="deny when the sandboxtui asked for an approval has not decided within "
                   "S seconds (default 300)")


def _say(line: str, *, err: bool = False) -> None:
    """Print one line that may quote untrusted text (a path, an argv, a message naming them):
    inert, so a file name cannot retitle or repaint the terminal, nor forge a line."""
    print(inert(line), file=sys.stderr if err else sys.stdout)


def _print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2)
    sys.stdout.write("\n")


def cmd_plan(args: argparse.Namespace) -> int:
    plan = load_plan(args)
    if args.json:
        data = plan.to_json()
        data["settings"] = [{"key": k, "value": v, "provenance": p}
                            for k, v, p in settings_table(plan.policy)]
        data["agent"] = agent_json(plan.policy)
        _print_json(data)
        return 0
    print(render_plan(plan))
    return 0


def render_plan(plan: MountPlan) -> str:
    lines = [f"workspace: {plan.cwd}",
             f"mode: {plan.policy.mode.value} ({plan.policy.source('sandbox_mode')})",
             f"network: {plan.policy.network.value}",
             f"profile: {plan.policy.profile or '-'}", ""]
    if plan.unsandboxed:
        lines.append("UNSANDBOXED: commands run with full access")
    lines.append("rules (most specific wins; tie: none > rw > ro):")
    for r in plan.rules:
        flag = " (missing)" if r.missing else ""
        lines.append(f"  {r.access.value:<4} {r.path!r}{flag}  — {r.reason} [{r.provenance}]")
    lines += ["", "mount operations, in order:"]
    lines += [f"  {i:>3}. {op.describe()!r}"[:4000] for i, op in enumerate(plan.ops, 1)]
    if plan.policy.limits.items():
        lines += ["", "limits:"] + [f"  {k} = {v}" for k, v in plan.policy.limits.items()]
    if plan.scan is not None:
        s = plan.scan
        bound = f", stopped at its {s.bound_hit} bound" if s.bound_hit else ""
        lines += ["", f"sensitive scan: {s.entries_seen} entries, {s.matches} matches, "
                      f"{s.seconds * 1000:.0f} ms{bound}"]
    if plan.diagnostics:
        lines += ["", "warnings:"] + [f"  {d.line()}" for d in plan.diagnostics]
    if plan.policy.agent is not None:
        lines += ["", *agent_lines(plan.policy)]
    return "\n".join(map(inert, lines))


def cmd_explain(args: argparse.Namespace) -> int:
    if "\0" in args.path:
        raise UsageError("path contains a NUL byte")
    plan = load_plan(args)
    ex = plan.explain(args.path)
    if args.json:
        _print_json(ex.to_json())
        return 0
    _say(f"path:     {ex.path!r}")
    if ex.resolved != ex.path:
        _say(f"resolved: {ex.resolved!r}")
    _say(f"access:   {ex.access.value}")
    _say(f"rule:     {ex.rule.reason} on {ex.rule.path!r} [{ex.rule.provenance}]")
    _say("mounts:")
    for op in ex.ops:
        _say(f"  {op.describe()!r}")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from sandboxtui.core.diagnostics import probe
    from sandboxtui.core.pipeline import startup_diagnostics

    plan = load_plan(args)
    caps = probe(plan.policy.system_bwrap)
    choice, diags = startup_diagnostics(plan, caps)
    limits = dict(plan.policy.limits.items())
    if args.json:
        _print_json({"capabilities": caps.to_json(),
                     "pipeline": choice.pipeline.value if choice.pipeline else None,
                     "pipeline_reason": choice.reason, "limits": limits,
                     "diagnostics": [{**vars(d), "severity": d.severity.value} for d in diags],
                     "agent": agent_json(plan.policy)})
        return 0
    _say(f"bwrap:    {caps.bwrap or 'none'}"
          f" ({'system' if caps.system_bwrap else 'vendored'})")
    print(f"landlock: {'ABI ' + str(caps.landlock_abi) if caps.landlock_abi else 'absent'}")
    print(f"seccomp:  {'available' if caps.seccomp else 'unavailable'}")
    pipeline = choice.pipeline.value if choice.pipeline else "REFUSED (exit 4)"
    _say(f"pipeline: {pipeline} — {choice.reason}")
    print("limits:   " + (", ".join(f"{k}={v}" for k, v in limits.items()) or "none"))
    for d in diags:
        _say(f"{d.severity.value.upper():<8} {d.cause}")
        _say(f"         remedy: {d.remedy}")
    for line in agent_lines(plan.policy):
        _say(line)
    return 0


def agent_json(policy: Policy) -> dict[str, Any] | None:
    """`--codex`/`--claude`: the files read, the ignored keys and the differences."""
    agent = policy.agent
    if agent is None:
        return None
    return {"agent": agent.agent, "files": list(agent.files), "strict": agent.strict,
            "ignored": [{"key": k, "where": w} for k, w in agent.ignored],
            "differences": [{**vars(d), "line": d.line(agent.agent)}
                            for d in agent.differences]}


def agent_lines(policy: Policy) -> list[str]:
    agent = policy.agent
    if agent is None:
        return []
    lines = [f"{agent.agent} config: {', '.join(agent.files) or '(none found)'}"
             + (" (--strict: sandboxtui's defaults on top)" if agent.strict else "")]
    lines += [f"  {d.line(agent.agent)}" for d in agent.differences]
    if agent.ignored:
        lines.append(f"  not sandbox settings (ignored): {len(agent.ignored)} keys: "
                     + ", ".join(k for k, _ in agent.ignored))
    return lines


def cmd_demo(args: argparse.Namespace) -> int:
    from sandboxtui.demo import create_demo

    ws, config = create_demo()
    if not args.print:
        import shutil

        from sandboxtui.app import run_app  # Textual only on the TUI paths
        from sandboxtui.model import Options

        try:
            return run_app(Options(cwd=str(ws), config_path=config, demo=True))
        finally:
            if args.keep:
                _say(f"sandboxtui: the demo workspace is kept: {ws} (config: {config})")
            else:
                shutil.rmtree(config.parent, ignore_errors=True)  # the scratch demo
    plan = build_plan(resolve(config_path=config), str(ws))
    print(f"demo workspace: {ws}\nconfig: {config}\n")
    print(render_plan(plan))
    return 0


def cmd_ui(args: argparse.Namespace) -> int:
    from sandboxtui.app import run_app  # Textual only on the TUI paths
    from sandboxtui.model import Options

    return run_app(Options(cwd=workspace(args), config_path=args.config, profile=args.profile,
                           sandbox_mode=args.sandbox_mode, overrides=tuple(args.overrides),
                           mount_proc=not args.no_proc, codex=args.codex, claude=args.claude,
                           strict=args.strict), args.all_workspaces)


def _command(args: argparse.Namespace) -> list[str]:
    command: list[str] = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    if not command:
        raise UsageError(f"{args.command} needs a command: sandboxtui {args.command} "
                         "[options] -- CMD ARGS")
    for flag, value in (("--timeout", args.timeout), ("--approval-timeout",
                                                      args.approval_timeout)):
        if value is not None and not value > 0:
            raise UsageError(f"{flag} must be a positive number of seconds")
    return command


def cmd_run(args: argparse.Namespace) -> int:
    from sandboxtui.core import launch

    command = _command(args)
    plan = load_plan(args)
    if args.dry_run:
        print(render_launch(launch.prepare(plan, command)))
        return ExitCode.OK
    return _launch_here(plan, command, lambda spec: _run_on_this_terminal(
        spec, args.timeout, every_warning=args.verbose), args.approval_timeout)


def cmd_trace(args: argparse.Namespace) -> int:
    """`run`, with the tracer in front: the denials afterwards, on stderr, as JSON on stdout
    (--json) or in a file (--report)."""
    from sandboxtui.core import trace

    command = _command(args)
    plan = load_plan(args)
    report_file = _open_report(args.report) if args.report else None
    tracer = trace.TraceLog()  # raises TraceError (exit 4) without strace: nothing runs
    text = ""

    def traced(spec: LaunchSpec) -> RunResult:
        nonlocal text
        trace.require_traceable(spec)
        try:
            return _run_on_this_terminal(spec, args.timeout, tracer=tracer.argv(),
                                         stdout_to_stderr=args.json)
        finally:
            text = tracer.close()

    code = _launch_here(plan, command, traced, args.approval_timeout)
    if not text:
        return code  # denied or refused before anything ran: said already

    def replan(override: str) -> MountPlan:
        wider = SimpleNamespace(**{**vars(args), "overrides": [*args.overrides, override]})
        return load_plan(wider)

    try:
        report = trace.analyse(text, plan, code, replan,
                               network_on=plan.policy.network.value == "on")
    except KeyboardInterrupt:
        _say("sandboxtui: trace: the analysis was interrupted; the command had ended", err=True)
        return code
    document = json.dumps(report.to_json(), indent=2) + "\n"
    if report_file is not None:
        with report_file:
            report_file.write(document)
            written = os.fstat(report_file.fileno())
        try:
            there = os.lstat(args.report)
            replaced = (there.st_dev, there.st_ino) != (written.st_dev, written.st_ino)
        except OSError:
            replaced = True
        if replaced:  # the command moved it away: say so, and give the report here instead
            _say(f"sandboxtui: trace: {args.report} was replaced while the command ran; the "
                 "report follows on stderr", err=True)
            sys.stderr.write(inert(document, lines=True))
    if args.json:
        sys.stdout.write(document)
    else:
        _say(f"sandboxtui: {len(report.denials) or 'no'} operation(s) refused by the sandbox"
             + (":" if report.denials else ""), err=True)
        for d in report.denials:
            _say(f"sandboxtui:   {d.line()}", err=True)
        if report.host:
            _say(f"sandboxtui: {len(report.host)} refused by the host's own permissions (not "
                 "by the sandbox's plan):", err=True)
        for d in report.host:
            _say(f"sandboxtui:   {d.line()}", err=True)
        if report.not_analysed:
            _say(f"sandboxtui: and {report.not_analysed} more distinct refusals, less frequent, "
                 "not analysed", err=True)
    return code


def _open_report(path: str) -> TextIO:
    """The --report file, opened before the command runs and never through a symlink: a
    sandboxed command may write where the report goes, and plant a link to a file of ours."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o644)
    except OSError as exc:
        raise UsageError(f"--report {path}: {exc.strerror} (a symbolic link is refused)"
                         ) from None
    return os.fdopen(fd, "w", encoding="utf-8")


def _launch_here(plan: MountPlan, command: Sequence[str],
                 launch: Callable[[LaunchSpec], RunResult],
                 approval_timeout: float | None) -> int:
    """The launch use case with this terminal's approver; the outcome said on stderr, and an
    approver's edit before the command runs."""
    from sandboxtui.core.run import Denied, Ran, Refused, approver_edit, run

    def approve(asked: Sequence[str], plan: MountPlan) -> GateResult:
        return _approve_here(asked, plan, approval_timeout)

    def launch_as_approved(spec: LaunchSpec) -> RunResult:
        if edit := approver_edit(command, spec):
            _say(f"sandboxtui: {edit}", err=True)
        return launch(spec)

    outcome = run(plan, command, approve=approve, launch=launch_as_approved)
    match outcome:
        case Denied():
            print(f"sandboxtui: {inert(outcome.message, lines=True)}", file=sys.stderr)
        case Refused():
            _say(f"sandboxtui: {outcome.message}", err=True)
        case Ran(result=result):
            if result.error:
                _say(f"sandboxtui: {result.error}", err=True)
            for line in result.git_neutralised:
                _say(f"sandboxtui: git repository left by the command: {line}", err=True)
    return outcome.exit_code


def _approve_here(command: Sequence[str], plan: MountPlan,
                  timeout: float | None) -> GateResult:
    """A running TUI decides (within `timeout` s), else the terminal, else nobody (denied)."""
    from sandboxtui.core.approvals import DEFAULT_CONSOLE_TIMEOUT, gate  # only when needed

    seconds = DEFAULT_CONSOLE_TIMEOUT if timeout is None else timeout

    def waiting(pid: int) -> None:
        _say(f"sandboxtui: waiting for approval in sandboxtui (pid {pid}, up to {seconds:g} s)",
             err=True)

    return gate(command, plan, console_timeout=seconds, waiting=waiting)


def _run_on_this_terminal(spec: LaunchSpec, timeout: float | None,
                          tracer: Sequence[str] = (), stdout_to_stderr: bool = False,
                          every_warning: bool = True) -> RunResult:
    """The command shares this terminal. ^C, SIGHUP and SIGTERM end the launch: the sandbox
    goes first, and the launch's host files with it; the exit code says which signal.
    Warnings: all of them, or (`run` without --verbose) each once per workspace and day.
    An untraced run that fails gets one hint line when what it wrote to stderr names a path
    the plan refused (core/stderr_tail.py says when that output can be read back)."""
    from sandboxtui.core import launch
    from sandboxtui.core.diagnostics import fresh_warnings

    shown = spec.warnings if every_warning else fresh_warnings(spec.warnings, spec.plan.cwd)
    for d in shown:
        _say(f"sandboxtui: {d.line()}", err=True)
    if tracer:
        return _wait_here(launch.start(spec, timeout=timeout, tracer=tracer,
                                       stdout_to_stderr=stdout_to_stderr))
    from sandboxtui.core.stderr_tail import stderr_tail

    with stderr_tail() as written:
        result = _wait_here(launch.start(spec, timeout=timeout,
                                         stdout_to_stderr=stdout_to_stderr))
    if result.exit_code != 0 and result.error is None:
        from sandboxtui.core.trace import denial_hint

        hint = denial_hint(spec.plan, written())
        if hint is not None:
            _say(f"sandboxtui: {hint}", err=True)
    return result


def _wait_here(running: RunningCommand) -> RunResult:
    """Wait for the command; ^C, SIGHUP and SIGTERM kill the sandbox first."""
    try:
        with _ending_signals_raise():
            return running.wait()
    except KeyboardInterrupt:
        signum = 2
    except _Ended as ended:
        signum = ended.signum
    running.cancel()
    return replace(running.wait(), exit_code=128 + signum, error=None)


class _Ended(Exception):
    """SIGHUP (the terminal closed) or SIGTERM reached the launcher."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@contextlib.contextmanager
def _ending_signals_raise() -> Iterator[None]:
    """While the command runs, SIGHUP and SIGTERM end the launch like ^C: the sandbox is
    killed and its host files (placeholders) removed, instead of the launcher dying first."""
    import signal

    def end(signum: int, _frame: object) -> None:
        raise _Ended(signum)

    previous = {sig: signal.signal(sig, end) for sig in (signal.SIGHUP, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def render_launch(spec: LaunchSpec) -> str:
    """The dry-run report: the exact argv (one argument per line) and the seccomp rules."""
    return "\n".join(map(inert, spec.describe()))


def cmd_approvals(args: argparse.Namespace) -> int:
    from sandboxtui.core.audit import default_audit_path, read_audit

    log = read_audit(default_audit_path())  # AuditError: exit 2, as every refusal (main)
    if args.json:
        _print_json({"path": log.path, "records": [rec.data for rec in log.records],
                     "skipped": list(log.skipped)})
        return 0
    for note in log.skipped:
        _say(f"sandboxtui: note: {note}", err=True)
    if not log.records:
        _say(f"no approvals recorded yet ({log.path})")
    for rec in log.records:
        _say(render_audit_record(rec))
    return 0


def render_audit_record(rec: AuditRecord) -> str:
    """One line per record: the time, then the request's command or the decision; a record of a
    shape sandboxtui does not write, as its JSON (cut at 300 characters)."""
    import shlex

    from sandboxtui.core.audit import (
        DecisionRecord,
        GitNeutralisedRecord,
        RequestRecord,
        format_time,
    )

    when = format_time(rec.time)
    match rec:
        case GitNeutralisedRecord():
            return f"{when}  git      {shlex.join(rec.argv)}: " + "; ".join(rec.actions)
        case RequestRecord():
            return (f"{when}  request  {rec.id}  {shlex.join(rec.argv)}"
                    f"  (cwd {rec.cwd}; mentions {', '.join(rec.matched)})")
        case DecisionRecord():
            edited = f" -> {shlex.join(rec.edited)}" if rec.edited else ""
            return (f"{when}  decision {rec.id}  {rec.choice}{edited} by {rec.who}"
                    + (f": {rec.reason}" if rec.reason else ""))
    return f"unreadable record (not written by sandboxtui?): {json.dumps(rec.data)[:300]}"


def cmd_patch(args: argparse.Namespace) -> int:
    from sandboxtui.core.patch import patch_workspace, read_diff

    text = sys.stdin.read() if args.diff == "-" else read_diff(args.diff)
    result = patch_workspace(text, load_plan(args))
    for line in result.summary():
        _say(line)
    return 0


def cmd_seccomp(args: argparse.Namespace) -> int:
    from sandboxtui.core.diagnostics import probe
    from sandboxtui.core.pipeline import choose_pipeline
    from sandboxtui.core.seccomp import pseudo_filter, render_table, rule_table

    plan = load_plan(args)
    choice = choose_pipeline(plan, probe(plan.policy.system_bwrap, launch_test=False))
    flt = choice.seccomp_filter(plan.policy)
    if args.json:
        _print_json({"name": flt.name, "rules": rule_table(flt)})
    elif args.pfc:
        print(pseudo_filter(flt), end="")
    else:
        print(render_table(flt))
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    import random

    from sandboxtui.core import verify

    if not 0 <= args.sample <= 100_000:
        raise UsageError("--sample must be between 0 and 100000")
    if any("\0" in p for p in args.paths):
        raise UsageError("a path contains a NUL byte")
    plan = load_plan(args)
    if args.pipeline is not None:
        plan = verify.with_pipeline(plan, legacy=args.pipeline == "legacy")
    seed = random.randrange(2**32) if args.seed is None else args.seed
    report = verify.verify(plan, args.paths or None, sample=args.sample,
                           rng=random.Random(seed))
    for w in report.warnings:
        _say(f"sandboxtui: {w}", err=True)
    if args.json:
        _print_json({**report.to_json(), "seed": seed})
    else:
        print(render_verify(report, seed))
    return ExitCode.OK if report.ok else ExitCode.MISMATCH


def render_verify(report: VerifyReport, seed: int) -> str:
    """The table (path, op, predicted, observed, result), then the summary."""
    rows = [(inert(r.probe.path), r.probe.op,
             "allowed" if r.predicted.allowed else "denied",
             "allowed" if r.observed else f"denied ({r.errno})", r.status)
            for r in report.results]
    width = min(max((len(r[0]) for r in rows), default=4), 70)
    lines = [f"{'path':<{width}}  {'op':<14}  {'predicted':<9}  {'observed':<23}  result"]
    lines += [f"{p:<{width}}  {op:<14}  {pr:<9}  {ob:<23}  {st}" for p, op, pr, ob, st in rows]
    for r in report.results:
        if not r.ok and not r.expected_mismatch:  # expected ones: see "unenforced" below
            why = f"leftover on the host: {r.leftover}" if r.leftover else r.predicted.why
            lines.append(f"{r.status}: {r.probe.op} {r.probe.path}: {why}")
    lines += [f"skipped {p}: {why}" for p, why in report.skipped]
    lines += [f"unenforced by the {report.pipeline.value} pipeline (documented): "
              f"{r.access.value} on {r.path}" for r in report.unenforced]
    lines.append(
        f"{len(report.results)} probes in {report.launches} launch(es) on the "
        f"{report.pipeline.value} pipeline, {report.seconds:.2f} s: "
        f"{len(report.mismatches)} mismatch(es), {len(report.expected_mismatches)} expected "
        f"(documented unenforced paths), seed {seed}")
    return "\n".join(map(inert, lines))


COMMANDS = {"plan": cmd_plan, "explain": cmd_explain, "doctor": cmd_doctor, "demo": cmd_demo,
            "run": cmd_run, "trace": cmd_trace, "seccomp": cmd_seccomp, "ui": cmd_ui,
            "approvals": cmd_approvals, "patch": cmd_patch, "verify": cmd_verify}


class _Declared:
    """argparse's declaring calls, recorded: `run`'s lean path reads its options from the very
    calls that build the full parser, without importing argparse (its import and the parser
    cost more than the rest of the command line)."""

    REMAINDER = "..."
    SUPPRESS = "==SUPPRESS=="
    Action = object

    def __init__(self, *_: object, **__: object) -> None:
        self.options: dict[str, dict[str, Any]] = {}  # flag -> its add_argument keywords
        self.defaults: dict[str, Any] = {}
        self.commands: dict[str, _Declared] = {}

    def ArgumentParser(self, **_: object) -> _Declared:  # the root parser: this recorder
        return self

    def add_subparsers(self, **_: object) -> _Declared:
        return self

    def add_parser(self, name: str, **_: object) -> _Declared:
        self.commands[name] = _Declared()
        return self.commands[name]

    def add_argument(self, *flags: str, **how: Any) -> None:
        if not flags[0].startswith("-"):
            return  # the positional: the command, after the options
        longs = [f for f in flags if f.startswith("--")]
        how.setdefault("dest", (longs or flags)[0].lstrip("-").replace("-", "_"))
        action = how.get("action")
        if how.get("default") != self.SUPPRESS:  # argparse leaves those out of the namespace
            self.defaults[how["dest"]] = (False if action == "store_true" else [] if action ==
                                          "append" else how.get("default"))
        for flag in flags:
            self.options[flag] = how


# What the lean parse understands of a declaration; an option declared with anything else
# (nargs, choices, const, another action) is left to argparse.
_LEAN_KEYWORDS = {"dest", "action", "default", "type", "help", "metavar"}
_LEAN_ACTIONS = (None, "store_true", "append")


def _parse_run(argv: list[str]) -> SimpleNamespace | None:
    """`run [options] [--] CMD ARGS` parsed as argparse would; None for anything else (help,
    an abbreviation, a missing value, an option value starting with `-`): argparse decides."""
    declared = _Declared()
    build_parser(declared)
    run = declared.commands["run"]
    if any(how.get("required") for how in run.options.values()):
        return None
    values: dict[str, Any] = {k: list(v) if isinstance(v, list) else v
                              for k, v in run.defaults.items()}
    i = 1
    while i < len(argv) and argv[i] != "--" and argv[i].startswith("-"):
        flag, eq, inline = argv[i].partition("=") if argv[i].startswith("--") else (
            argv[i], "", "")
        how = run.options.get(flag)
        if how is None or set(how) - _LEAN_KEYWORDS or how.get("action") not in _LEAN_ACTIONS:
            return None
        if how.get("action") == "store_true":
            if eq:
                return None
            values[how["dest"]] = True
            i += 1
            continue
        if not eq and i + 1 == len(argv):
            return None
        value = inline if eq else argv[i + 1]
        i += 1 if eq else 2
        if value.startswith("-"):
            return None
        if "type" in how:
            try:
                value = how["type"](value)
            except ValueError:
                return None
        if how.get("action") == "append":
            values[how["dest"]].append(value)
        else:
            values[how["dest"]] = value
    return SimpleNamespace(**values, command="run", argv=argv[i:])


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0].startswith("-") and argv[0] not in (
            "-h", "--help", "--version", "--print-completion", "--print-schema"):
        argv = ["ui", *argv]
    args = _parse_run(argv) if argv[0] == "run" else None
    if args is None:
        args = build_parser().parse_args(argv)
    if args.command == "ui":
        args.json = False
    try:
        return COMMANDS[args.command](args)
    except SandboxtuiError as exc:  # every refusal: its message, its exit code
        remedy = f" (remedy: {exc.remedy})" if exc.remedy and exc.remedy not in str(exc) else ""
        _say(f"sandboxtui: {exc.label}{exc}{remedy}", err=True)
        return exc.exit_code
    except BrokenPipeError:  # `sandboxtui plan | head`: the reader left, which is fine
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


def entry() -> None:
    """The console script: exit without tearing the interpreter down module by module.

    Everything that must reach disk or the terminal has been written and flushed by then (the
    audit log is fsynced per line); interpreter finalization alone costs ~9 ms per `run`.
    """
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    remove_own_runtime_dirs()  # (only a squatted runtime directory makes one)
    os._exit(code)
