"""Approvals: the queue of requests from headless runs (through the broker) and the audit log.

The app hosts `core.approvals.broker.Broker`; each `PendingRequest` lands here. Enter (or `a`)
opens the approval modal for the highlighted request and hands the decision back to the broker,
which answers the waiting `sandboxtui run`. The audit log view shows the records of
`core.audit.read_audit`, one row each.
"""

from __future__ import annotations

import shlex

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import DataTable, Label, Static

from sandboxtui.core.approvals.broker import PendingRequest
from sandboxtui.core.audit import (
    AuditError,
    AuditRecord,
    DecisionRecord,
    GitNeutralisedRecord,
    RequestRecord,
    format_time,
    read_audit,
)
from sandboxtui.core.terminal import inert

AUDIT_ROWS = 500  # the newest records shown


def audit_row(record: AuditRecord) -> tuple[str, str, str, str]:
    """(time, kind, what, detail) for one audit record; a record of any other shape shows
    its contents, cut at 200 characters."""
    when = format_time(record.time)
    match record:
        case RequestRecord():
            return (when, record.kind, shlex.join(record.argv),
                    f"id {record.id}: {', '.join(record.matched)}")
        case DecisionRecord():
            edited = f" -> {shlex.join(record.edited)}" if record.edited else ""
            return (when, record.kind, record.choice + edited,
                    f"id {record.id}: by {record.who} {record.reason}".strip())
        case GitNeutralisedRecord():
            return when, record.kind, shlex.join(record.argv), "; ".join(record.actions)
    return when, record.kind, "?", str(dict(record.data))[:200]


class ApprovalBanner(Static):
    """Announces requests that wait while the user types (or another screen is up), instead
    of a prompt taking the focus mid-word."""

    def show(self, waiting: list[PendingRequest]) -> None:
        self.set_class(bool(waiting), "-shown")
        if waiting:
            first = waiting[0]
            more = f" (+{len(waiting) - 1} more)" if len(waiting) > 1 else ""
            self.update(Text.assemble(
                ("APPROVAL WAITING", "bold reverse"),
                inert(f" pid {first.peer_pid}: {first.request.command()}{more}"),
                ("   esc, then a: review", "bold")))


class ApprovalsPanel(Vertical):
    """Pending broker requests on top, the audit log below."""

    BINDINGS = [
        Binding("a", "review", "Review request", id="approvals.review"),
        Binding("ctrl+r", "reload_audit", "Reload audit", id="approvals.reload"),
    ]

    class Changed(Message):
        """A request arrived or left: the app updates its counts and the banner."""

    class Review(Message):
        """Ask the app to open the approval modal for a pending request."""

        def __init__(self, pending: PendingRequest) -> None:
            super().__init__()
            self.pending = pending

    def __init__(self, audit_path: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.audit_path = audit_path
        self.pending: dict[str, PendingRequest] = {}

    def compose(self) -> ComposeResult:
        yield Label(id="queue-title")
        queue: DataTable[str] = DataTable(id="queue-table", cursor_type="row")
        yield queue
        yield Label(id="audit-title")
        audit: DataTable[str | Text] = DataTable(id="audit-table", cursor_type="row",
                                                 zebra_stripes=True)
        yield audit

    def on_mount(self) -> None:
        self.query_one("#queue-table", DataTable).add_columns(
            "id", "from", "command", "mentions")
        self.query_one("#audit-table", DataTable).add_columns("time", "kind", "what", "detail")
        self._titles()
        self.call_after_refresh(self.reload_audit)  # a long log is not read before the first paint
        self.set_interval(1.0, self.prune)

    def _titles(self) -> None:
        self.query_one("#queue-title", Label).update(Text.assemble(
            (f"Pending requests from headless runs: {len(self.pending)}", "bold"),
            "   (enter or a: review)" if self.pending else ""))
        self.post_message(self.Changed())

    def add(self, pending: PendingRequest) -> None:
        req = pending.request
        self.pending[req.id] = pending
        self.query_one("#queue-table", DataTable).add_row(
            Text(inert(req.id)), f"pid {pending.peer_pid}", Text(inert(req.command())),
            Text(inert(", ".join(req.matched))), key=req.id)
        self._titles()

    def remove(self, request_id: str) -> None:
        if self.pending.pop(request_id, None) is not None:
            self.query_one("#queue-table", DataTable).remove_row(request_id)
        self._titles()

    def prune(self) -> None:
        """Drop requests whose asker went away (the broker already denied them)."""
        for rid in [r for r, p in self.pending.items() if p.cancelled.is_set()
                    or p.future.done()]:
            self.remove(rid)

    def waiting(self) -> list[PendingRequest]:
        """The requests still waiting for a decision, oldest first."""
        return [p for p in self.pending.values()
                if not p.cancelled.is_set() and not p.future.done()]

    def action_review(self) -> None:
        table = self.query_one("#queue-table", DataTable)
        chosen = None
        if table.row_count and table.cursor_row >= 0:
            key = table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value
            chosen = self.pending.get(str(key))
        chosen = chosen or next(iter(self.waiting()), None)
        if chosen is not None:
            self.post_message(self.Review(chosen))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id == "queue-table":
            event.stop()
            pending = self.pending.get(str(event.row_key.value))
            if pending is not None:
                self.post_message(self.Review(pending))

    def action_reload_audit(self) -> None:
        self.reload_audit()

    def reload_audit(self) -> None:
        table = self.query_one("#audit-table", DataTable)
        title = self.query_one("#audit-title", Label)
        table.clear()
        try:
            read = read_audit(self.audit_path)
        except AuditError as exc:
            title.update(Text(inert(f"Audit log: {exc}"), style="bold red"))
            return
        records = read.records[-AUDIT_ROWS:]
        for record in reversed(records):
            when, kind, what, detail = audit_row(record)
            style = "green" if "approve" in what else "red" if what.startswith("deny") else ""
            table.add_row(when, Text(inert(kind)), Text(inert(what), style=style),
                          Text(inert(detail)))
        note = f"   {len(read.skipped)} damaged line(s) skipped" if read.skipped else ""
        title.update(Text.assemble(
            ("Audit log ", "bold"), inert(f"{self.audit_path}  ({len(read.records)} records, "
                                          f"newest first){note}")))
