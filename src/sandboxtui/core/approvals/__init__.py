"""Approvals of commands that mention sensitive paths, one module per concern:

- `model`: requests, decisions, and the commands approved for a session;
- `broker`: the Unix-socket server a console (the TUI) runs, and the client a headless run uses;
- `prompt`: asking on the terminal;
- `gate`: the precheck and approval sequence a launch goes through.

The names below are re-exported for importers of `sandboxtui.core.approvals`.
"""

from sandboxtui.core.approvals.broker import (
    DEFAULT_CONSOLE_TIMEOUT,
    SOCKET_NAME,
    Broker,
    BrokerError,
    PendingRequest,
    ask_console,
    default_socket_dir,
)
from sandboxtui.core.approvals.gate import GateResult, gate
from sandboxtui.core.approvals.model import (
    ApprovalRequest,
    ApprovalSession,
    Choice,
    Decision,
    deny,
    new_request,
)
from sandboxtui.core.approvals.prompt import ask_terminal

__all__ = [
    "DEFAULT_CONSOLE_TIMEOUT", "SOCKET_NAME", "ApprovalRequest", "ApprovalSession", "Broker",
    "BrokerError", "Choice", "Decision", "GateResult", "PendingRequest", "ask_console",
    "ask_terminal", "default_socket_dir", "deny", "gate", "new_request",
]
