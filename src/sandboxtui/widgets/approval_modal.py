"""The approval prompt for a command that mentions sensitive paths (precheck mode "ask").

Keyboard first: `o` approve once, `s` approve for the session, `e` edit the command (enter
submits the edited command, which is prechecked again by `core.approvals.gate.gate`), `d` or
escape deny. The default focus is Deny, so a stray enter never approves. Nothing is decided by
a key pressed before the request has been on screen for GUARD_SECONDS: a request that pops up
while the user is typing elsewhere must not take the next letter as its answer. The prompt is
dimmed and says so until then.

The prompt shows what is decided, in full: the command, the workspace and cwd it runs in (a
workspace other than the TUI's own says so), the sensitive paths it mentions, and every setting
of the policy it runs under; its title counts the requests waiting ("1 of 3").
"""

from __future__ import annotations

import shlex
import time
from datetime import datetime

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Footer, Input, Label, Static

from sandboxtui.core.approvals.model import ApprovalRequest, Choice, Decision
from sandboxtui.core.terminal import inert

GUARD_SECONDS = 0.5  # keys pressed earlier than this after the prompt appeared decide nothing


SESSION_SCOPE = ("[s] approves this exact command again without asking: from this cwd, in this "
                 "workspace, under this policy, for headless runs and the run panel alike, "
                 "until this TUI quits")


def request_table(request: ApprovalRequest, home: str | None = None) -> Table:
    """The request as the approver sees it: every string from the caller inert, as `Text`
    (a Rich table parses `str` cells as markup). `home`: the TUI's own workspace; another one
    is flagged."""
    table = Table.grid(padding=(0, 1))
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    table.add_row("command", Text(inert(request.command()), style="bold"))
    workspace = Text(inert(request.workspace))
    if home is not None and request.workspace != home:
        workspace.append("  (NOT this TUI's workspace)", style="bold reverse")
    table.add_row("workspace", workspace)
    table.add_row("cwd", Text(inert(request.cwd)))
    table.add_row("profile", Text(inert(request.profile or "-")))
    table.add_row("asked by", f"pid {request.pid} at "
                  f"{datetime.fromtimestamp(request.time).strftime('%H:%M:%S')}")
    seen: set[str] = set()
    for hit in request.hits:
        if hit.path in seen:
            continue
        seen.add(hit.path)
        guard = ("the sandbox also denies it" if hit.enforced
                 else "NOT masked by the sandbox: only this prompt guards it")
        table.add_row("mentions", Text.assemble(
            (inert(hit.path), "bold red"), inert(f"  (written {hit.word!r})"), "\n",
            inert(f"rule: {hit.rule} [{hit.provenance}]"), "\n", (guard, "italic")))
    policy = Text()
    for key, value, provenance in request.policy:
        policy.append(inert(f"{key} = {value}"))
        policy.append(inert(f"  ({provenance})"), style="dim")
        policy.append("\n")
    policy.rstrip()
    table.add_row("policy", policy)
    return table


class ApprovalModal(ModalScreen[Decision]):
    """Dismisses with a `Decision`; `who` names this console in the audit log."""

    BINDINGS = [
        Binding("o", "decide('approve-once')", "Approve once", id="approval.once"),
        Binding("s", "decide('approve-session')", "Approve for session", id="approval.session"),
        Binding("e", "edit", "Edit", id="approval.edit"),
        Binding("d,escape", "decide('deny')", "Deny", key_display="d", id="approval.deny"),
    ]

    def __init__(self, request: ApprovalRequest, who: str, source: str = "run panel", *,
                 guard: float = GUARD_SECONDS, home: str | None = None,
                 waiting: int = 1) -> None:
        """`home`: the TUI's own workspace; `waiting`: the requests waiting, this one included."""
        super().__init__()
        self.request = request
        self.who = who
        self.source = source
        self.guard = guard
        self.home = home
        self.waiting = waiting
        self._armed_at = float("inf")  # set when the prompt is on screen

    def compose(self) -> ComposeResult:
        with Vertical(id="approval-box", classes="-guarded") as box:
            box.border_title = self._title()
            yield Label(Text("This command mentions a sensitive path.", style="bold"))
            yield Label(Text(f"keys are ignored for {self.guard:g} s, so that nothing typed "
                             "before this prompt appeared answers it", style="italic"),
                        id="approval-guard")
            with VerticalScroll(id="approval-scroll"):
                yield Static(request_table(self.request, self.home), id="approval-request")
            # what the approver sees is what runs: a control character stays spelled out
            yield Input(inert(shlex.join(self.request.argv)), id="approval-edit")
            with Horizontal(id="approval-buttons"):
                yield Button(Text("[o] Approve once"), id="approve-once", variant="warning")
                yield Button(Text("[s] Approve for session"), id="approve-session",
                             variant="warning")
                yield Button(Text("[e] Edit"), id="edit")
                yield Button(Text("[d] Deny"), id="deny", variant="error")
            yield Label(Text(SESSION_SCOPE, style="italic"), id="approval-session-scope")
        yield Footer(compact=True)

    def _title(self) -> str:
        return f"Approval needed ({self.source}) · request 1 of {self.waiting}"

    def count_waiting(self, waiting: int) -> None:
        """More requests arrived (or left) while this one is shown: the title counts them."""
        self.waiting = waiting
        self.query_one("#approval-box").border_title = self._title()

    def on_mount(self) -> None:
        self.query_one("#approval-edit", Input).display = False
        self.query_one("#deny", Button).focus()
        self._armed_at = time.monotonic() + self.guard
        for button in self.query(Button):
            button.disabled = True
        self.set_timer(self.guard, self._arm)

    @property
    def armed(self) -> bool:
        """Has the request been on screen long enough for a key to decide it?"""
        return time.monotonic() >= self._armed_at

    def _arm(self) -> None:
        self.query_one("#approval-box").remove_class("-guarded")
        self.query_one("#approval-guard", Label).display = False
        for button in self.query(Button):
            button.disabled = False
        self.query_one("#deny", Button).focus()
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The deciding keys do nothing (and are not offered) during the guard time."""
        return self.armed or action not in ("decide", "edit")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if not self.armed:
            return
        if event.button.id == "edit":
            self.action_edit()
        elif event.button.id is not None:
            self.action_decide(event.button.id)

    def action_decide(self, choice: str) -> None:
        reason = {"deny": f"denied in the TUI ({self.source})"}.get(choice, "")
        self.dismiss(Decision(Choice(choice), self.who, reason=reason))

    def action_edit(self) -> None:
        edit = self.query_one("#approval-edit", Input)
        edit.display = True
        edit.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if not self.armed:
            return
        try:
            argv = tuple(shlex.split(event.value))
        except ValueError as exc:
            self.notify(f"cannot parse the command: {exc}", severity="error")
            return
        if not argv:
            self.notify("the edited command is empty", severity="error")
            return
        self.dismiss(Decision(Choice.EDIT, self.who, argv=argv, reason="edited in the TUI"))
