"""The built-in demo workspace: every feature of the picture in one small scratch tree."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import threading
from pathlib import Path

from sandboxtui.core.outcome import SandboxtuiError


def create_demo(parent: str | None = None) -> tuple[Path, Path]:
    """Create a scratch demo; returns (workspace, config file). Without git (the demo is a
    repository) it refuses before creating anything; if creating fails, nothing is left."""
    if shutil.which("git") is None:
        raise SandboxtuiError("the demo workspace is a git repository, and git is not "
                              "installed", remedy="apt-get install git")
    base = Path(tempfile.mkdtemp(prefix="sandboxtui-demo-", dir=parent))
    try:
        return _fill(base)
    except BaseException:
        shutil.rmtree(base, ignore_errors=True)
        raise


def _fill(base: Path) -> tuple[Path, Path]:
    ws = base / "workspace"
    extra = base / "extra-root"
    for d in (ws / "src", ws / "sub", ws / ".codex", ws / "secrets", extra):
        d.mkdir(parents=True)
    (ws / "README.md").write_text("# demo project\n")
    (ws / "src" / "app.py").write_text("print('hello from the sandbox')\n")
    (ws / ".env").write_text("API_TOKEN=demo-secret-do-not-leak\n")
    (ws / "sub" / ".env.local").write_text("DB_PASSWORD=demo-nested-secret\n")
    (ws / "secrets" / "id_demo").write_text("-----BEGIN DEMO KEY-----\n")
    (ws / ".codex" / "config.toml").write_text("# agent settings: read-only in the sandbox\n")
    (extra / "notes.txt").write_text("an extra writable root\n")
    os.symlink("README.md", ws / "readme-link")
    os.symlink("sub", ws / "sub-link")
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    subprocess.run(["git", "init", "-q", str(ws)], check=True, env=env)
    subprocess.run(["git", "-C", str(ws), "add", "README.md", "src"], check=True, env=env)
    subprocess.run(
        ["git", "-C", str(ws), "-c", "user.name=demo", "-c", "user.email=demo@example.invalid",
         "commit", "-q", "-m", "demo"], check=True, env=env)
    config = base / "config.toml"
    config.write_text(
        "# sandboxtui demo configuration\n"
        'sandbox_mode = "workspace-write"\n'
        'default_permissions = "demo"\n'
        "\n"
        "[sandbox_workspace_write]\n"
        f"writable_roots = [{_toml_str(str(extra))}]\n"
        "network_access = false\n"
        "\n"
        "[permissions.demo.filesystem]\n"
        f"{_toml_str(str(ws / 'secrets'))} = \"none\"\n"
        "\n"
        "[profiles.locked]\n"
        'sandbox_mode = "read-only"\n'
    )
    return ws, config


def _toml_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


class HostListener:
    """A TCP listener on the host's loopback for the demo's network scenario: it answers from
    the host, so a connection refused inside the sandbox is the sandbox's doing, not an empty
    port (the sandbox's loopback is its own). Serves from a daemon thread until `close()`."""

    REPLY = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nhello from the host\n"

    def __init__(self) -> None:
        self._server = socket.socket(socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(8)
        self.address = f"127.0.0.1:{self._server.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True, name="demo-listener").start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return  # closed
            with conn:
                conn.settimeout(2)
                with contextlib.suppress(OSError):
                    conn.recv(4096)
                    conn.sendall(self.REPLY)

    def from_the_host(self) -> str:
        """What an unsandboxed client gets from the listener: its status line, or the error."""
        host, port = self.address.rsplit(":", 1)
        try:
            with socket.create_connection((host, int(port)), timeout=2) as conn:
                conn.sendall(b"GET / HTTP/1.0\r\n\r\n")
                return conn.recv(4096).split(b"\r\n", 1)[0].decode(errors="replace")
        except OSError as exc:
            return f"not reachable: {exc.strerror or exc}"

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._server.shutdown(socket.SHUT_RDWR)  # wakes accept()
        self._server.close()
