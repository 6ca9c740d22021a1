"""The shape of a startup diagnostic, shared by the planner, the probes and the UI."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"  # the policy cannot be enforced: launches are refused


@dataclass(frozen=True)
class Diagnostic:
    severity: Severity
    code: str
    cause: str
    remedy: str

    def line(self) -> str:
        return f"{self.severity.value}: {self.cause} — {self.remedy}"
