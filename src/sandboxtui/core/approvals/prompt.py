"""Asking on the controlling terminal, when no console (TUI) is running to ask."""

from __future__ import annotations

import os
import shlex
from typing import TextIO

from sandboxtui.core.approvals.model import ApprovalRequest, Choice, Decision, deny
from sandboxtui.core.terminal import inert

PROMPT = "[o]nce / [s]ession / [e]dit / [d]eny? "


def ask_terminal(request: ApprovalRequest, tty: str = "/dev/tty") -> Decision | None:
    """Ask on the controlling terminal; None when there is no terminal to ask on."""
    try:
        fd = os.open(tty, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError:
        return None
    if not os.isatty(fd):
        os.close(fd)
        return None
    with open(fd, "w", encoding="utf-8", errors="replace") as out, \
            open(os.dup(fd), encoding="utf-8", errors="replace") as inp:
        return _prompt(request, inp, out)


def _prompt(request: ApprovalRequest, inp: TextIO, term: TextIO) -> Decision:
    term.write(f"\nsandboxtui: this command mentions sensitive paths:\n"
               f"  {inert(request.command())}\n  cwd: {inert(request.cwd)}\n")
    for path, rule in dict((h.path, f"{h.rule} [{h.provenance}]") for h in request.hits).items():
        term.write(f"  - {inert(path)}: {inert(rule)}\n")
    for _ in range(5):
        term.write(f"Run it? {PROMPT}")
        term.flush()
        answer = inp.readline()
        if not answer:
            return deny("terminal", "end of input on the terminal")
        key = answer.strip().lower()[:1]
        if key == "o":
            return Decision(Choice.ONCE, "terminal")
        if key == "s":
            return Decision(Choice.SESSION, "terminal")
        if key == "d":
            return deny("terminal", "denied on the terminal")
        if key == "e":
            term.write("new command: ")
            term.flush()
            try:
                argv = shlex.split(inp.readline())
            except ValueError as exc:
                term.write(f"cannot parse that command: {exc}\n")
                continue
            if argv:
                return Decision(Choice.EDIT, "terminal", tuple(argv))
            term.write("empty command\n")
    return deny("terminal", "no valid answer on the terminal")
