"""Managed proxy mode: the command reaches the configured loopback proxy through the
bridges and nothing else; the kernel's answers, no mocks."""

from __future__ import annotations

import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Runner, chown_tree, python_for

from sandboxtui.core.config import resolve, settings_table
from sandboxtui.core.launch import LaunchError, prepare, start
from sandboxtui.core.paths import runtime_dir
from sandboxtui.core.pipelines.proxy import Proxied
from sandboxtui.core.plan import build_plan
from sandboxtui.core.policy import NetworkMode, Policy
from sandboxtui.core.proxy import (
    PROXY_VARIABLES,
    HostBridges,
    ProxyError,
    diagnose,
    parse_endpoint,
    plan_proxy,
)
from sandboxtui.core.proxy_inside import Relay
from sandboxtui.core.seccomp import PROXY_FILTER, filter_for, pseudo_filter, rule_table

PROXY_ON = 'sandbox_workspace_write.network_access="proxy"'
NO_PRECHECK = 'sensitive_path_precheck_mode="off"'


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        server: Proxy = self.server  # type: ignore[assignment]
        server.seen.append(self.requestline)
        body = server.reply
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class Proxy(http.server.ThreadingHTTPServer):
    """A tiny 'HTTP proxy' on host loopback: answers every request itself, records it."""

    daemon_threads = True

    def __init__(self, host: str = "127.0.0.1", port: int = 0, reply: bytes = b"proxied") -> None:
        super().__init__((host, port), _Handler)
        self.seen: list[str] = []
        self.reply = reply

    @property
    def port(self) -> int:
        return int(self.server_address[1])


@pytest.fixture
def proxy() -> Iterator[Proxy]:
    yield from _serving(Proxy())


def _serving(server: Proxy) -> Iterator[Proxy]:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def other_port() -> Iterator[int]:
    """A host loopback service the sandbox must not reach directly."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    yield s.getsockname()[1]
    s.close()


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


# --- endpoints, rewriting, config, filter ----------------------------------------------------


def test_variables_in_both_cases_become_routes_and_rewrites() -> None:
    env = {"HTTP_PROXY": "http://u:pw@127.0.0.1:3128/", "https_proxy": "localhost:3128",
           "ALL_PROXY": "socks5h://[::1]:1080", "all_proxy": "http://127.0.0.1:3128",
           "NO_PROXY": "example.com", "PATH": "/usr/bin"}
    plan = plan_proxy(env)
    assert [(str(r.endpoint), r.inside_port) for r in plan.routes] == [
        ("127.0.0.1:3128", 3128), ("[::1]:1080", 1080), ("localhost:3128", 18080)]
    assert len({r.socket_name for r in plan.routes}) == 3
    rewritten = plan.env(env)
    assert rewritten["HTTP_PROXY"] == "http://u:pw@127.0.0.1:3128/"  # credentials, path kept
    assert rewritten["https_proxy"] == "127.0.0.1:18080"  # same port, other endpoint
    assert rewritten["ALL_PROXY"] == "socks5h://127.0.0.1:1080"
    assert rewritten["NO_PROXY"] == "example.com" and rewritten["PATH"] == "/usr/bin"
    assert "pw" not in "\n".join(plan.describe())


def test_privileged_and_default_ports_move_to_spare_inside_ports() -> None:
    plan = plan_proxy({"HTTP_PROXY": "http://127.0.0.1", "HTTPS_PROXY": "https://127.0.0.2"})
    assert [(r.endpoint.port, r.inside_port) for r in plan.routes] == [(80, 18080),
                                                                         (443, 18081)]


@pytest.mark.parametrize("value, why", [
    ("http://proxy.example.com:3128", "not a loopback endpoint"),
    ("http://10.0.0.1:3128", "not a loopback endpoint"),
    ("http://127.0.0.1:notaport", "not a proxy URL"),
    ("ftp://127.0.0.1", "unknown scheme"),
])
def test_unusable_endpoints_are_refused_with_a_remedy(value: str, why: str) -> None:
    with pytest.raises(ProxyError) as exc:
        parse_endpoint("HTTPS_PROXY", value)
    assert why in exc.value.cause and exc.value.remedy


def test_no_proxy_variable_is_an_error_naming_the_variables() -> None:
    with pytest.raises(ProxyError) as exc:
        plan_proxy({"HTTP_PROXY": "", "PATH": "/usr/bin"})
    assert "HTTP_PROXY" in exc.value.cause and "HTTPS_PROXY=" in exc.value.remedy
    diag = diagnose({})
    assert diag.severity == "error" and diag.code == "proxy-unavailable"
    info = diagnose({"HTTPS_PROXY": "http://127.0.0.1:3128"})
    assert info.severity == "info" and "127.0.0.1:3128" in info.cause


def test_a_proxy_url_with_credentials_survives_secret_scrubbing(tmp_path: Path) -> None:
    """Scrubbing drops URLs with credentials; the configured proxy's must still be routed."""
    policy = resolve(overrides=[PROXY_ON], env={"XDG_CONFIG_HOME": str(tmp_path)})
    plan = build_plan(policy, str(tmp_path), {})
    env = {"PATH": "/usr/bin:/bin", "HTTPS_PROXY": "http://user:s3cret@127.0.0.1:3128",
           "DATABASE_URL": "postgres://app:pw@db/app"}
    spec = prepare(plan, ["true"], env=env)
    assert isinstance(spec.enforcer, Proxied)  # routed, credentials kept for the proxy itself
    assert spec.env["HTTPS_PROXY"] == "http://user:s3cret@127.0.0.1:3128"  # inside listener
    assert "DATABASE_URL" not in spec.env and "DATABASE_URL" in spec.dropped_env
    assert "HTTPS_PROXY" not in spec.dropped_env


def test_config_accepts_proxy_for_network_access(tmp_path: Path) -> None:
    policy = resolve(overrides=[PROXY_ON], env={"XDG_CONFIG_HOME": str(tmp_path)})
    assert policy.network is NetworkMode.PROXY
    rows = {k: v for k, v, _ in settings_table(policy)}
    assert rows["sandbox_workspace_write.network_access"] == "proxy"


def test_proxy_filter_table_and_program_come_from_one_object() -> None:
    assert filter_for(Policy(network=NetworkMode.PROXY), legacy=False, unix_gate=True) \
        is PROXY_FILTER
    rows = rule_table(PROXY_FILTER)
    socket_rows = [r["condition"] for r in rows if r["syscall"] == "socket"]
    assert socket_rows[0].startswith("domain < AF_INET") and len(socket_rows) == 5
    denied = {r["syscall"] for r in rows if r["action"] == "errno"}
    assert {"io_uring_setup", "ptrace", "process_vm_writev", "socketpair"} <= denied
    assert not denied & {"connect", "bind", "listen", "accept", "sendto", "setsockopt"}
    allowed = {d for d in range(64)
               if not any(r.condition is not None and r.condition.matches(d) for r in
                          PROXY_FILTER.rules if r.syscall == "socket")}
    assert allowed == {socket.AF_INET, socket.AF_INET6}
    assert rows[-2]["condition"].startswith("foreign architecture")
    pfc = pseudo_filter(PROXY_FILTER)
    assert 'filter for syscall "socket"' in pfc and '"connect"' not in pfc
    assert "# invalid architecture action\naction ERRNO(1);" in pfc


def test_seccomp_cli_and_dry_run_show_proxy_mode(tmp_path: Path, clean_env: pytest.MonkeyPatch,
                                                  ) -> None:
    cli = [sys.executable, "-m", "sandboxtui"]
    config = tmp_path / "config.toml"
    config.write_text("")
    done = subprocess.run([*cli, "seccomp", "--config", str(config), "-c", PROXY_ON,
                           "--json"], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == {"name": "network-proxy", "rules": rule_table(PROXY_FILTER)}
    env = {**os.environ, "HTTPS_PROXY": "http://127.0.0.1:3128"}
    done = subprocess.run([*cli, "run", "--dry-run", "--config", str(config), "--cwd",
                           str(tmp_path), "-c", PROXY_ON, "--", "true"], env=env,
                          capture_output=True, text=True, check=True)
    out = done.stdout
    assert "seccomp filter 'network-proxy'" in out and "seccomp filter 'host-safety'" in out
    assert "'--seccomp'" in out  # the host-safety rules, for bwrap's init and the bridge too
    assert "managed proxy mode" in out and "'3128=0.sock'" in out
    assert "HTTPS_PROXY: http://127.0.0.1:3128 -> http://127.0.0.1:3128" in out


def test_relay_carries_both_directions_and_half_closes() -> None:
    """8 MiB each way at once through one relay (an echo server upstream), then EOF."""
    echo = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = echo.accept()
        with conn:
            while data := conn.recv(65536):
                conn.sendall(data)

    listener = socket.create_server(("127.0.0.1", 0))
    relay = Relay([(listener, lambda: socket.create_connection(echo.getsockname()))])
    threads = [threading.Thread(target=f, daemon=True) for f in (serve, relay.run)]
    for t in threads:
        t.start()
    payload = os.urandom(8 * 2**20)
    received = bytearray()
    with socket.create_connection(listener.getsockname(), timeout=20) as client:
        def send() -> None:
            client.sendall(payload)
            client.shutdown(socket.SHUT_WR)

        sender = threading.Thread(target=send)
        sender.start()
        while data := client.recv(1 << 20):
            received += data
        sender.join()
    relay.stop()
    threads[1].join(5)
    assert bytes(received) == payload and not threads[1].is_alive()
    listener.close()
    echo.close()


def test_a_dead_launchers_bridge_directory_is_removed_by_the_next(proxy: Proxy) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    base = runtime_dir()
    os.makedirs(base, mode=0o700, exist_ok=True)
    stale = Path(base, f"proxy-{dead.pid}-0123456789ab")
    stale.mkdir(mode=0o700)
    leftover = socket.socket(socket.AF_UNIX)
    leftover.bind(str(stale / "0.sock"))
    leftover.close()
    live = Path(base, f"proxy-{os.getpid()}-live")  # this process is alive: kept
    live.mkdir(mode=0o700)
    try:
        with HostBridges(plan_proxy({"HTTP_PROXY": f"http://127.0.0.1:{proxy.port}"})):
            assert not stale.exists() and live.exists()
    finally:
        live.rmdir()


# --- enforcement -------------------------------------------------------------------------------

PROBE = r"""
import json, os, socket, sys, urllib.request
out = {"env": os.environ.get("HTTP_PROXY")}
out["body"] = urllib.request.urlopen("http://example.invalid/" + sys.argv[1], timeout=10).read()
out["body"] = out["body"].decode()
def attempt(fn):
    try:
        fn()
        return "ok"
    except OSError as e:
        return e.errno
def direct():
    with socket.create_connection(("127.0.0.1", int(sys.argv[2])), timeout=5):
        pass
out["direct"] = attempt(direct)
out["unix"] = attempt(lambda: socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).close())
out["netlink"] = attempt(lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW).close())
def pair():
    a, b = socket.socketpair()
    a.sendall(b"ping")
    assert b.recv(4) == b"ping"
out["socketpair"] = attempt(pair)
out["dgram_pair"] = attempt(lambda: socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM))
out["eperm_domains"] = [d for d in range(46)
                        if attempt(lambda: socket.socket(d, socket.SOCK_DGRAM).close()) == 1]
bridges = [p for p in os.listdir("/proc") if p.isdigit() and p != str(os.getpid())
           and open(f"/proc/{p}/cmdline", "rb").read().split(b"\0")[1:3] == [b"-I", b"-S"]]
out["bridge_reach"] = sorted({attempt(lambda: os.readlink(f"/proc/{p}/{what}"))
                              for p in bridges for what in ("cwd", "fd/3", "fd/4")})
out["bridges"] = len(bridges)
print(json.dumps(out))
"""


def _run(runner: Runner, ws: Path, command: list[str], env: dict[str, str]
         ) -> subprocess.Popen[str]:
    """`sandboxtui run` as the runner's user, with `env` added (Runner.run fixes the env)."""
    argv = [*runner.prefix(), "run", "--config", str(runner.config), "--cwd", str(ws),
            *runner.bwrap_options(), "-c", PROXY_ON, "-c", NO_PRECHECK, "--", *command]
    base = {k: v for k, v in os.environ.items()
            if k != "XDG_RUNTIME_DIR" and k not in PROXY_VARIABLES}
    return subprocess.Popen(argv, env={**base, **env}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _bridge_dirs(user: str) -> set[str]:
    base = "/tmp/sandboxtui-0" if user == "root" else "/tmp/sandboxtui-65534"
    try:
        return {n for n in os.listdir(base) if n.startswith("proxy-")}
    except FileNotFoundError:
        return set()


def test_command_reaches_the_proxy_and_nothing_else(runner: Runner, workspace: Path,
                                                    proxy: Proxy, other_port: int) -> None:
    chown_tree(workspace, runner.user)
    before = _bridge_dirs(runner.user)
    tag = f"{runner.user}-{runner.bwrap}"
    env = {"HTTP_PROXY": f"http://127.0.0.1:{proxy.port}"}
    p = _run(runner, workspace, [python_for(runner.user), "-c", PROBE, tag, str(other_port)], env)
    stdout, stderr = p.communicate(timeout=60)
    assert p.returncode == 0, stderr
    out = json.loads(stdout)
    assert out["env"] == f"http://127.0.0.1:{proxy.port}"  # the inside listener
    assert out["body"] == "proxied"
    assert proxy.seen == [f"GET http://example.invalid/{tag} HTTP/1.1"]
    assert out["direct"] == 111  # ECONNREFUSED: the host's loopback is not there
    assert out["unix"] == 1 and out["netlink"] == 1  # EPERM from the filter
    assert out["socketpair"] == "ok" and out["dgram_pair"] == 1
    assert out["bridges"] == 1 and out["bridge_reach"] == [13]  # EACCES: not dumpable
    assert out["eperm_domains"] == [d for d in range(46) if d not in (2, 10)]  # only INET(6)
    assert _bridge_dirs(runner.user) <= before  # the bridge sockets are gone


def test_two_concurrent_runs_have_their_own_bridges(runner: Runner, workspace: Path) -> None:
    """Two proxies on the same port (127.0.0.1 and 127.0.0.2): each run sees only its own,
    while both sandboxes listen on 127.0.0.1:PORT at the same time."""
    chown_tree(workspace, runner.user)
    first = Proxy("127.0.0.1", 0, reply=b"first")
    second = Proxy("127.0.0.2", first.port, reply=b"second")
    wait_both = r"""
import os, sys, time, urllib.request
open(sys.argv[1], "w").close()
deadline = time.monotonic() + 20
while not all(os.path.exists(m) for m in sys.argv[1:3]) and time.monotonic() < deadline:
    time.sleep(0.02)
print(urllib.request.urlopen("http://example.invalid/", timeout=10).read().decode())
"""
    py = python_for(runner.user)
    with first, second:
        threads = [threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.05},
                                    daemon=True) for s in (first, second)]
        for t in threads:
            t.start()
        marks = [str(workspace / "mark-a"), str(workspace / "mark-b")]
        runs = [_run(runner, workspace, [py, "-c", wait_both, *marks],
                     {"HTTP_PROXY": f"http://{s.server_address[0]}:{s.port}"})
                for marks, s in ((marks, first), (marks[::-1], second))]
        results = [r.communicate(timeout=60) for r in runs]
        for s in (first, second):
            s.shutdown()
    assert [r.returncode for r in runs] == [0, 0], results
    assert [out.strip() for out, _ in results] == ["first", "second"]
    assert len(first.seen) == len(second.seen) == 1


def test_without_proxy_variables_the_launch_fails_closed(runner: Runner, workspace: Path) -> None:
    chown_tree(workspace, runner.user)
    marker = workspace / "ran"
    p = _run(runner, workspace, ["touch", str(marker)], {})
    _, stderr = p.communicate(timeout=60)
    assert p.returncode == 4
    assert "HTTP_PROXY" in stderr and "network_access" in stderr
    assert not marker.exists()


def test_a_remote_proxy_is_refused(runner: Runner, workspace: Path) -> None:
    chown_tree(workspace, runner.user)
    p = _run(runner, workspace, ["true"], {"HTTPS_PROXY": "http://192.0.2.1:3128"})
    _, stderr = p.communicate(timeout=60)
    assert p.returncode == 4 and "not a loopback endpoint" in stderr


def test_bridges_live_while_the_command_runs_and_vanish_after(tmp_path: Path, proxy: Proxy,
                                                               ) -> None:
    """In process: the bridge directory exists (with its socket) only during the run, and the
    relay thread is joined by wait()."""
    ws = tmp_path / "ws"
    ws.mkdir()
    policy = resolve(overrides=[PROXY_ON, NO_PRECHECK], env={"XDG_CONFIG_HOME": str(tmp_path)})
    plan = build_plan(policy, str(ws))
    env = {"PATH": os.environ["PATH"], "https_proxy": f"http://127.0.0.1:{proxy.port}"}
    started, stop = ws / "started", ws / "stop"
    script = f"touch {started}; while [ ! -e {stop} ]; do sleep 0.02; done"
    spec = prepare(plan, ["sh", "-c", script], env=env)
    assert spec.env["https_proxy"] == f"http://127.0.0.1:{proxy.port}"
    base = runtime_dir()
    before = {n for n in os.listdir(base) if n.startswith("proxy-")}
    running = start(spec, capture=True)
    try:
        deadline = time.monotonic() + 20
        while not started.exists():
            assert time.monotonic() < deadline, "the command did not start"
            time.sleep(0.02)
        new = {n for n in os.listdir(base) if n.startswith("proxy-")} - before
        assert len(new) == 1
        bridge = Path(base, new.pop())
        assert (bridge.stat().st_mode & 0o777) == 0o700
        assert [p.name for p in bridge.iterdir()] == ["0.sock"] and (bridge / "0.sock").is_socket()
        assert any(t.name == "sandboxtui-proxy-bridge" for t in threading.enumerate())
    finally:
        stop.touch()
        result = running.wait()
    assert result.exit_code == 0
    assert not bridge.exists()
    assert not any(t.name == "sandboxtui-proxy-bridge" for t in threading.enumerate())
    with pytest.raises(LaunchError) as exc:
        prepare(plan, ["true"], env={"PATH": os.environ["PATH"]})
    assert exc.value.exit_code == 4
