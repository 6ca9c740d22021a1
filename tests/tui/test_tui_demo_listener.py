"""The demo proves what it claims (issue 15 item 15): its network scenario connects to a
listener the demo serves on the host. The host reaches it (the detail line says so); the same
command in the sandbox is refused, as predicted. Without the listener, "curl out" failed the
same way with no sandbox at all."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
from textual.widgets import DataTable, Label
from tui_support import demo_at, make_app, real_caps

from sandboxtui.widgets.demo_scenarios import DemoScenarios

pytestmark = pytest.mark.anyio


async def test_the_host_reaches_the_listener_and_the_sandbox_does_not(tmp_path: Path) -> None:
    ws, config = demo_at(tmp_path / "demo")
    app = make_app(ws, config, tmp_path, caps=real_caps(), demo=True,
                   overrides=("sandbox_workspace_write.exclude_slash_tmp=true",))
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.press("6")
        scenarios = app.query_one(DemoScenarios)
        address = scenarios.listener.address
        net = next(i for i, s in enumerate(scenarios.scenarios) if s.key == "net")
        assert address in scenarios.scenarios[net].command
        assert scenarios.from_the_host == "HTTP/1.0 200 OK"
        table = app.query_one("#scenario-table", DataTable)
        table.focus()
        table.move_cursor(row=net)
        await pilot.pause(0.1)
        detail = str(app.query_one("#scenario-detail", Label).render())
        assert "from the host, unsandboxed: HTTP/1.0 200 OK" in detail
        await pilot.press("enter")
        deadline = time.monotonic() + 30
        while "net" not in scenarios.outcomes:
            assert time.monotonic() < deadline, "the scenario did not finish"
            await pilot.pause(0.1)
        outcome = scenarios.outcomes["net"]
        assert outcome.exit_code != 0, outcome  # refused inside: the sandbox's own loopback
        assert not scenarios.predictions["net"].allowed
        assert "agrees" in str(table.get_row_at(net)[3])
        host, port = address.rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=2) as conn:  # still there
            conn.sendall(b"GET / HTTP/1.0\r\n\r\n")
            assert b"hello from the host" in conn.recv(4096)
    with pytest.raises(OSError), socket.create_connection((host, int(port)), timeout=2):
        pass  # closed with the app
