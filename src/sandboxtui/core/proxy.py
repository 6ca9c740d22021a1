"""Managed proxy mode: network only through the configured loopback proxies.

The sandbox keeps its own network namespace (only its own loopback exists there). For each
distinct proxy endpoint named by `HTTP_PROXY`, `HTTPS_PROXY` or `ALL_PROXY` (either case):

    command -> 127.0.0.1:PORT (inside bridge) -> Unix socket -> host bridge -> the proxy

- The host bridge (`HostBridges`) listens on one Unix socket per endpoint in a private (0700)
  directory of its own under the per-user runtime directory, which every sandbox hides; it
  relays each connection to the configured endpoint and nowhere else. Its thread belongs to
  the launch: `close()` stops it, joins it, and removes the sockets and the directory.
- The inside bridge is started by `proxy_inside.py`, the sandbox's first process, which gets
  the directory as an open descriptor (never as a mount: the command cannot reach it), then
  applies the proxy-mode seccomp filter to itself and execs the command: from then on no new
  `AF_UNIX` socket can be created, so the bridge is the only way out.
- The `*_PROXY` variables are rewritten to the inside listener; the rest of each URL (scheme,
  credentials, path) is kept.

Without any proxy variable, or with one that is not a loopback endpoint, the mode refuses to
start (`ProxyError`, exit 4): it never falls back to an open or a closed network silently.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import os
import socket
import stat
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from sandboxtui.core import exec_stage, proxy_inside
from sandboxtui.core.bwrap import _private_dir, data_fd, stale_dirs
from sandboxtui.core.diagnostics_model import Diagnostic, Severity
from sandboxtui.core.outcome import SandboxtuiError
from sandboxtui.core.paths import runtime_dir
from sandboxtui.core.plan import MountPlan
from sandboxtui.core.policy import Access
from sandboxtui.core.proxy_inside import Relay

PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
                   "http_proxy", "https_proxy", "all_proxy")
DEFAULT_PORTS = {"http": 80, "https": 443, "socks": 1080, "socks4": 1080, "socks4a": 1080,
                 "socks5": 1080, "socks5h": 1080}
INTERPRETERS = ("/usr/bin/python3", "/usr/local/bin/python3", "/bin/python3")
FIRST_SPARE_PORT = 18080  # inside ports for endpoints whose own port is privileged or taken
# The inside program: reads its own source from a descriptor (the interpreter runs with -I -S).
BOOT = ("import sys;f=open(int(sys.argv.pop(1)),'rb');s=f.read();f.close();"
        "exec(compile(s,'proxy_inside.py','exec'))")
UNREACHABLE = ("proxy mode allows network access only through proxy endpoints on this "
               "machine's loopback")


class ProxyError(SandboxtuiError):
    """Proxy mode cannot be set up (exit 4): the message names the cause and the remedy."""

    def __init__(self, cause: str, remedy: str) -> None:
        super().__init__(f"{cause}; {remedy}", remedy=remedy)
        self.cause = cause


@dataclass(frozen=True)
class Endpoint:
    host: str  # a loopback address or "localhost", as configured
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Route:
    """One bridge: the inside listener's port, its Unix socket's name, the endpoint."""

    endpoint: Endpoint
    inside_port: int
    socket_name: str


@dataclass(frozen=True)
class Rewrite:
    variable: str
    original: str
    inside: str  # the value the command sees


@dataclass(frozen=True)
class ProxyPlan:
    routes: tuple[Route, ...]
    rewrites: tuple[Rewrite, ...]
    interpreter: str  # the system python3 that runs the inside program

    def env(self, env: Mapping[str, str]) -> dict[str, str]:
        """`env` with the proxy variables pointing at the inside listeners."""
        return {**env, **{r.variable: r.inside for r in self.rewrites}}

    def wrapper(self, fds: InsideFds) -> list[str]:
        """The argv prefix that runs the inside program before the command (then `--`)."""
        return [self.interpreter, "-I", "-S", "-c", BOOT, str(fds.program), str(fds.stage),
                str(fds.bpf), str(fds.bridge_dir),
                *(f"{r.inside_port}={r.socket_name}" for r in self.routes), "--"]

    def describe(self) -> list[str]:
        """Human lines for `--dry-run` and the TUI."""
        lines = [f"managed proxy mode: the command reaches only {len(self.routes)} proxy "
                 f"endpoint(s), through bridges (inside program: {self.interpreter} -I -S)"]
        lines += [f"  127.0.0.1:{r.inside_port} (inside) -> host bridge -> {r.endpoint}"
                  for r in self.routes]
        lines += [f"  {r.variable}: {_redact(r.original)} -> {_redact(r.inside)}"
                  for r in self.rewrites]
        return lines


@dataclass(frozen=True)
class InsideFds:
    """Descriptors the inside program receives (numbers as seen by bwrap and its child)."""

    program: int
    stage: int
    bpf: int
    bridge_dir: int

    def all(self) -> tuple[int, ...]:
        return (self.program, self.stage, self.bpf, self.bridge_dir)


DRY_RUN_FDS = InsideFds(5, 6, 7, 8)  # what `--dry-run` shows; a launch allocates its own


def parse_endpoint(variable: str, value: str) -> Endpoint:
    """The loopback endpoint of a proxy URL (`http://127.0.0.1:3128`, `localhost:8080`, ...)."""
    url = urlsplit(value if "://" in value else f"http://{value}")
    scheme = url.scheme.lower()
    try:
        host, port = url.hostname, url.port
    except ValueError as exc:
        raise ProxyError(f"{variable}={_redact(value)!r} is not a proxy URL ({exc})",
                         "fix the variable, e.g. http://127.0.0.1:3128") from None
    if not host:
        raise ProxyError(f"{variable}={_redact(value)!r} names no proxy host",
                         "fix the variable, e.g. http://127.0.0.1:3128")
    if port is None:
        if scheme not in DEFAULT_PORTS:
            raise ProxyError(f"{variable}={_redact(value)!r}: no port and unknown scheme "
                             f"{scheme!r}", "give the port explicitly")
        port = DEFAULT_PORTS[scheme]
    if not _is_loopback(host):
        raise ProxyError(f"{variable}={_redact(value)!r} is not a loopback endpoint: {UNREACHABLE}",
                         "run a local proxy (or a forwarder to this one) on 127.0.0.1 and "
                         "point the variable at it")
    return Endpoint(host.lower(), port)


def _redact(value: str) -> str:
    """A proxy URL fit for messages: credentials masked."""
    head, sep, rest = value.partition("://")
    netloc, slash, tail = (rest if sep else head).partition("/")
    if "@" in netloc:
        netloc = "***@" + netloc.rpartition("@")[2]
    return f"{head}{sep}{netloc}{slash}{tail}" if sep else f"{netloc}{slash}{tail}"


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _rewrite(value: str, port: int) -> str:
    """`value` with its host and port replaced by the inside listener."""
    if "://" not in value:
        return f"127.0.0.1:{port}"
    url = urlsplit(value)
    userinfo = url.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@127.0.0.1:{port}" if userinfo else f"127.0.0.1:{port}"
    return url._replace(netloc=netloc).geturl()


def plan_proxy(env: Mapping[str, str]) -> ProxyPlan:
    """Routes and rewrites for the proxy variables of `env`; ProxyError when there are none."""
    found = [(name, env[name]) for name in PROXY_VARIABLES if env.get(name, "").strip()]
    if not found:
        raise ProxyError(
            "network_access = \"proxy\" but none of " + ", ".join(PROXY_VARIABLES[:3])
            + " (upper or lower case) is set: the sandbox would have no network path",
            "set e.g. HTTPS_PROXY=http://127.0.0.1:3128 for the launch, or choose "
            "network_access = false or true")
    interpreter = next((p for p in INTERPRETERS if os.access(p, os.X_OK)), None)
    if interpreter is None:
        raise ProxyError("proxy mode runs its inside bridge with the system python3, but none "
                         f"of {', '.join(INTERPRETERS)} exists", "install python3")
    endpoints: dict[Endpoint, int] = {}
    rewrites = []
    for name, value in found:
        endpoint = parse_endpoint(name, value.strip())
        if endpoint not in endpoints:
            endpoints[endpoint] = _inside_port(endpoint.port, set(endpoints.values()))
        rewrites.append(Rewrite(name, value, _rewrite(value.strip(), endpoints[endpoint])))
    routes = tuple(Route(e, port, f"{i}.sock") for i, (e, port) in enumerate(endpoints.items()))
    return ProxyPlan(routes, tuple(rewrites), interpreter)


def proxy_for(plan: MountPlan, env: Mapping[str, str]) -> ProxyPlan:
    """`plan_proxy`, plus the check that the sandbox can run the inside program at all."""
    proxy = plan_proxy(env)
    real = os.path.realpath(proxy.interpreter)
    needed = [real, os.path.join(os.path.dirname(os.path.dirname(real)), "lib",
                                 os.path.basename(real))]
    for path in needed:
        if os.path.exists(path) and plan.rule_for(path).access is Access.NONE:
            raise ProxyError(f"proxy mode runs its inside bridge with {proxy.interpreter}, but "
                             f"{path} is not readable inside the sandbox",
                             "make it readable (e.g. keep read_access.include_platform_defaults "
                             "= true)")
    return proxy


def diagnose(env: Mapping[str, str]) -> Diagnostic:
    """The startup diagnostic of proxy mode: what the command can reach, or why it fails."""
    try:
        proxy = plan_proxy(env)
    except ProxyError as exc:
        return Diagnostic(Severity.ERROR, "proxy-unavailable", exc.cause, exc.remedy)
    endpoints = ", ".join(str(r.endpoint) for r in proxy.routes)
    names = ", ".join(r.variable for r in proxy.rewrites)
    return Diagnostic(Severity.INFO, "proxy-mode",
                      f"managed proxy mode: the network is reachable only through {endpoints} "
                      f"({names} rewritten to bridges inside the sandbox); no new AF_UNIX "
                      "sockets", "set network_access = true or false to change it")


def _inside_port(wanted: int, taken: set[int]) -> int:
    """The endpoint's own port when an unprivileged sandbox can listen on it, else a spare."""
    if wanted >= 1024 and wanted not in taken:
        return wanted
    port = FIRST_SPARE_PORT
    while port in taken:
        port += 1
    return port


# --- host side ------------------------------------------------------------------------------


def _tcp_connector(endpoint: Endpoint) -> proxy_inside.Connect:
    def connect() -> socket.socket:
        return socket.create_connection((endpoint.host, endpoint.port), timeout=5)

    return connect


class HostBridges:
    """The host half of a launch's bridges: Unix sockets in a private directory, one relay
    thread (daemon). `close()` stops and joins it and removes every file it made."""

    def __init__(self, plan: ProxyPlan) -> None:
        base = runtime_dir()
        _private_dir(base)
        _remove_stale_bridge_dirs(base)
        self.path = os.path.join(base, f"proxy-{os.getpid()}-{os.urandom(6).hex()}")
        os.mkdir(self.path, 0o700)
        self._dir_fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        fcntl.flock(self._dir_fd, fcntl.LOCK_EX)  # in use: not stale
        self._listeners: list[socket.socket] = []
        self._relay: Relay | None = None
        self._thread: threading.Thread | None = None
        try:
            routes = []
            for route in plan.routes:
                listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self._listeners.append(listener)
                listener.bind(os.path.join(self.path, route.socket_name))
                listener.listen(128)
                routes.append((listener, _tcp_connector(route.endpoint)))
            self._relay = Relay(routes)
            self._thread = threading.Thread(target=self._relay.run, daemon=True,
                                            name="sandboxtui-proxy-bridge")
            self._thread.start()
        except OSError:
            self.close()
            raise

    def open_dir(self) -> int:
        """A new descriptor of the bridge directory for the sandbox (inheritable by bwrap)."""
        return os.open(self.path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)

    def close(self) -> None:
        if self._relay is not None and self._thread is not None:
            self._relay.stop()
            self._thread.join()
        for listener in self._listeners:
            listener.close()
        _remove_bridge_dir(self.path)
        os.close(self._dir_fd)

    def __enter__(self) -> HostBridges:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _remove_bridge_dir(path: str) -> None:
    """Unlink the sockets (only sockets) and the directory."""
    with contextlib.suppress(OSError):
        for name in os.listdir(path):
            target = os.path.join(path, name)
            with contextlib.suppress(OSError):
                if stat.S_ISSOCK(os.lstat(target).st_mode):
                    os.unlink(target)
        os.rmdir(path)


def _remove_stale_bridge_dirs(base: str) -> None:
    """Bridge directories of launchers that died: their process is gone (so a directory being
    created, not yet locked, is safe) and their flock is free."""

    def abandoned(name: str) -> bool:
        pid = name.split("-")[1] if name.startswith("proxy-") else ""
        return pid.isdigit() and not _alive(int(pid))

    for path in stale_dirs(base, abandoned):
        _remove_bridge_dir(path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's live process
    return True


@dataclass(frozen=True)
class InsideLaunch:
    fds: InsideFds
    wrapper: list[str]


@contextlib.contextmanager
def inside_launch(plan: ProxyPlan, bridges: HostBridges, bpf: bytes) -> Iterator[InsideLaunch]:
    """The descriptors and argv prefix of the inside program, open while bwrap is spawned
    (bwrap and the sandbox keep their own copies)."""
    with contextlib.ExitStack() as stack:
        def keep(fd: int) -> int:
            stack.callback(os.close, fd)
            return fd

        fds = InsideFds(
            program=keep(data_fd(Path(proxy_inside.__file__).read_bytes(), "sandboxtui-proxy")),
            stage=keep(data_fd(Path(exec_stage.__file__).read_bytes(), "sandboxtui-stage")),
            bpf=keep(data_fd(bpf, "sandboxtui-proxy-seccomp")),
            bridge_dir=keep(bridges.open_dir()))
        yield InsideLaunch(fds, plan.wrapper(fds))
