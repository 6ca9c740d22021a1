"""Demo scenarios (`sandboxtui demo` only): canned commands, each with the outcome the plan
predicts beside the one the kernel gives.

The prediction is `core.verify.predict` for the one probe that decides the command (what its
first forbidden syscall touches); the real outcome comes from running the command through the
run panel's own path (precheck and approval, then the launcher): exit status and the last
line it wrote to stderr. Enter on a row runs it. The network scenario connects to a listener
the demo serves on the host's loopback (`demo.HostListener`): the host reaches it, the
sandbox does not.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import DataTable, Label

from sandboxtui.core.verify import Prediction, Probe, predict, sandbox_identity
from sandboxtui.demo import HostListener
from sandboxtui.model import Workspace
from sandboxtui.widgets.plan_view import PlanView

GIT_COMMIT = ("git -c user.name=demo -c user.email=demo@example.invalid "
              "commit --allow-empty -m demo")
SOCKETPAIR = "python3 -c 'import socket; socket.socketpair(); print(\"socketpair: ok\")'"


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    command: str
    probe: Probe  # the operation that decides the command's fate


@dataclass(frozen=True)
class Outcome:
    """What really happened: the run's exit status and its last stderr line."""

    exit_code: int
    last_stderr: str

    @property
    def allowed(self) -> bool:
        return self.exit_code == 0

    def text(self) -> str:
        return f"exit {self.exit_code}" + (f": {self.last_stderr}" if self.last_stderr else "")


def network_command(target: str) -> str:
    """`curl` to `target` (host:port) when the machine has it, else a TCP connect from Python."""
    if shutil.which("curl"):
        return f"curl -sS -m 3 http://{target}/"
    host, port = target.rsplit(":", 1)
    return (f"python3 -c 'import socket; socket.create_connection((\"{host}\", {port}), 3); "
            "print(\"connected\")'")


def scenarios(cwd: str, host_listener: str) -> tuple[Scenario, ...]:
    """The canned commands for a workspace at `cwd` (the probes name its real paths);
    `host_listener`: the host:port the network scenario connects to."""
    git = os.path.join(cwd, ".git")
    return (
        Scenario("outside", "write outside the workspace",
                 "sh -c 'echo x > /etc/sandboxtui-demo'", Probe("create", "/etc")),
        Scenario("git-config", "write .git/config", "sh -c 'echo x >> .git/config'",
                 Probe("write", os.path.join(git, "config"))),
        Scenario("env", "read .env", "cat .env", Probe("read", os.path.join(cwd, ".env"))),
        Scenario("net", "curl the host's listener", network_command(host_listener),
                 Probe("tcp", host_listener)),
        # git's first write is creating .git/index.lock.
        Scenario("commit", "git commit in the workspace", GIT_COMMIT, Probe("create", git)),
        Scenario("socketpair", "socketpair", SOCKETPAIR, Probe("socketpair", "-")),
    )


def predicted(workspace: Workspace, scenario: Scenario) -> Prediction:
    plan, choice = workspace.plan, workspace.choice
    # the pipeline the demo would launch (bubblewrap's view while none can run)
    enforcer = None if choice.refused else choice.enforcer(
        plan.policy, workspace.caps.bwrap or "bwrap", None)
    return predict(plan, scenario.probe, sandbox_identity(not plan.unsandboxed), enforcer)


def _verdict(allowed: bool) -> Text:
    return Text("allowed", style="green") if allowed else Text("denied", style="bold red")


class DemoScenarios(Vertical, PlanView):
    """The scenario table (scenario, predicted, real outcome, agreement) and, for the
    highlighted row, its command and the prediction's reason."""

    class Run(Message):
        """Run a scenario's command through the run panel."""

        def __init__(self, scenario: Scenario) -> None:
            super().__init__()
            self.scenario = scenario

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.scenarios: tuple[Scenario, ...] = ()  # for the workspace's paths
        self.predictions: dict[str, Prediction] = {}
        self.outcomes: dict[str, Outcome] = {}
        self.listener = HostListener()  # closed on unmount
        self.from_the_host = self.listener.from_the_host()

    def compose(self) -> ComposeResult:
        table: DataTable[Text | str] = DataTable(id="scenario-table", cursor_type="row")
        yield table
        yield Label(id="scenario-detail")

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns("demo scenario (enter runs)", "predicted",
                                              "real outcome", "agree")

    def on_unmount(self) -> None:
        self.listener.close()

    def watch_workspace(self, workspace: Workspace) -> None:
        self.scenarios = scenarios(workspace.plan.cwd, self.listener.address)
        self._fill()

    def record(self, key: str, outcome: Outcome) -> None:
        """A scenario's run ended: show its real outcome."""
        self.outcomes[key] = outcome
        self._fill()

    def _fill(self) -> None:
        self.predictions = {s.key: predicted(self.workspace, s) for s in self.scenarios}
        table = self.query_one(DataTable)
        row = table.cursor_row
        table.clear()
        for s in self.scenarios:
            guess = self.predictions[s.key]
            real = self.outcomes.get(s.key)
            if real is None:
                shown: Text | str = Text("not run yet", style="dim")
                agree: Text | str = ""
            else:
                shown = Text(real.text(), style="green" if real.allowed else "red")
                agree = (Text("✓ agrees", style="bold green") if real.allowed == guess.allowed
                         else Text("✗ DIFFERS", style="bold white on red"))
            table.add_row(s.title, _verdict(guess.allowed), shown, agree)
        table.move_cursor(row=row)
        self._detail(row)

    def _detail(self, row: int) -> None:
        if not 0 <= row < len(self.scenarios):
            return
        s = self.scenarios[row]
        guess = self.predictions[s.key]
        host = (("  ·  from the host, unsandboxed: ", "dim"), self.from_the_host) \
            if s.key == "net" else ()
        self.query_one("#scenario-detail", Label).update(Text.assemble(
            ("$ ", "dim"), s.command, ("  ·  probe ", "dim"), f"{s.probe.op} {s.probe.path}",
            *host, ("  ·  predicted ", "dim"), _verdict(guess.allowed), (" because: ", "dim"),
            guess.why))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self._detail(event.cursor_row)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.post_message(self.Run(self.scenarios[event.cursor_row]))
