"""Launch overhead: median wall time of `/bin/true`, bare and under the sandbox.

    .venv/bin/python bench/launch.py [--runs N]
    .venv/bin/python bench/launch.py --peers [--codex PATH] [--runs N]

Four ways, over a small git workspace with a `.env` (workspace-write, network off):
  bare      subprocess.run(["/bin/true"])
  bwrap     the launcher's exact bwrap argv (options inline, seccomp and status fds), run directly
  launcher  core.launch prepare + start + wait, in this process (plan built once)
  legacy    the same through the legacy Landlock pipeline (the exec stage restricts, then execs)
  proxy     the launcher in managed proxy mode (host bridge, inside program, its filter)
  cli       `sandboxtui run -- /bin/true` as a fresh process (Python start-up included)
  (python   `python -c pass` and `python -c "import sandboxtui.cli"`, for scale)

Targets: launcher within 1.3x of bwrap; cli at most 60 ms median (aim: 30 ms).

Fresh processes run with bytecode caching on, as an installed tool does: a
PYTHONDONTWRITEBYTECODE=1 environment would recompile every module on every start (about +30 ms
here). The caches go to a temporary PYTHONPYCACHEPREFIX, not into the source tree.

--peers: `sandboxtui run -- /bin/true` (a fresh process, defaults, bytecode cached) beside raw
bwrap with the launcher's argv and Codex's `codex sandbox -c sandbox_mode="workspace-write" --
/bin/true`, in paired, interleaved runs: medians, both ratios (targets: at most 0.5x Codex and
5x raw bwrap), Codex's version, and the peak RSS of each process; the CPU time of each (less
disturbed than wall time on a busy machine); for where the time goes, the interpreter alone
(`python -c pass`) and with the modules a launch imports. Codex is the native
binary of `--codex PATH` (the binary, or an npm prefix holding @openai/codex), else of
`npm install --prefix SCRATCH @openai/codex` (about 424 MB); without it only the raw-bwrap ratio
is printed, and why.

Proxy throughput: the system python3 sends 128 MiB to a byte-counting sink on host loopback,
once directly and once from inside a proxy-mode sandbox (inside bridge -> Unix socket -> host
bridge -> sink); the median rate of each (over --copies) and their ratio.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from sandboxtui.core.bwrap import data_fd, display_argv, launch_files
from sandboxtui.core.config import resolve
from sandboxtui.core.launch import LaunchSpec, prepare, start
from sandboxtui.core.pipelines.bubblewrap import Bubblewrap
from sandboxtui.core.plan import MountPlan, build_plan
from sandboxtui.core.seccomp import compile_bpf

TRUE = "/bin/true"
PYTHON3 = "/usr/bin/python3"
COPY_BYTES = 128 * 2**20
# Sends argv[3] bytes to argv[1]:argv[2], waits for the sink's count; prints the seconds taken.
SENDER = """
import socket, sys, time
host, port, total = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
chunk = bytes(256 * 1024)
t = time.perf_counter()
with socket.create_connection((host, port)) as s:
    left = total
    while left > 0:
        s.sendall(chunk[:left])
        left -= len(chunk)
    s.shutdown(socket.SHUT_WR)
    assert int(s.recv(64)) == total
print(time.perf_counter() - t)
"""


def medians_ms(fns: dict[str, Callable[[], object]], runs: int) -> dict[str, float]:
    """Median per method; samples are interleaved so background load hits all alike."""
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for i in range(runs + 3):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            if i >= 3:  # warm-up: caches, bytecode, page cache
                samples[name].append(time.perf_counter() - t)
    return {name: statistics.median(s) * 1000 for name, s in samples.items()}


def raw_bwrap(spec: LaunchSpec) -> None:
    """The same bwrap invocation the launcher makes, minus the launcher."""
    bwrap = spec.enforcer
    assert isinstance(bwrap, Bubblewrap)
    seccomp = data_fd(compile_bpf(bwrap.outer_filter), "bench-seccomp")
    status_r, status_w = os.pipe2(os.O_CLOEXEC)
    block_r, block_w = os.pipe2(os.O_CLOEXEC)
    os.close(block_w)  # at EOF: bwrap goes on at once (the launcher checks the mounts first)
    try:
        with launch_files(spec.plan, seccomp_fd=seccomp, status_fd=status_w) as files:
            options = bwrap.options(spec, replace(files, block_fd=block_r))
            argv = display_argv(bwrap.bwrap, options, spec.command)
            subprocess.run(argv, pass_fds=(seccomp, status_w, block_r), check=True)
    finally:
        for fd in (seccomp, status_r, status_w, block_r):
            os.close(fd)


def workspace() -> Path:
    ws = Path(tempfile.mkdtemp(prefix="sandboxtui-bench-"))
    subprocess.run(["git", "init", "-q", str(ws)], check=True)
    (ws / ".env").write_text("TOKEN=bench\n")
    (ws / "src").mkdir()
    (ws / "src" / "main.py").write_text("print('hi')\n")
    return ws


def cached_env(prefix: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, "PYTHONPYCACHEPREFIX": str(prefix)}


def byte_sink() -> socket.socket:
    """A loopback listener that counts each connection's bytes and answers with the count."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        buf = bytearray(1 << 20)
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return  # closed
            with conn:
                total = 0
                while n := conn.recv_into(buf):
                    total += n
                conn.sendall(str(total).encode())

    threading.Thread(target=serve, daemon=True).start()
    return listener


def proxy_throughput(plan: MountPlan, env: dict[str, str], port: int, copies: int
                     ) -> tuple[float, float]:
    """Median bytes/s of COPY_BYTES sent directly to the sink, and through the bridges."""
    sender = [PYTHON3, "-c", SENDER, "127.0.0.1", str(port), str(COPY_BYTES)]
    direct, bridged = [], []
    for _ in range(copies):
        out = subprocess.run(sender, check=True, capture_output=True, text=True).stdout
        direct.append(COPY_BYTES / float(out))
        running = start(prepare(plan, sender, env=env), capture=True)
        out = b"".join(e.data for e in running.events() if e.stream == "stdout").decode()
        if running.wait().exit_code != 0:
            raise RuntimeError("the sender failed inside the proxy-mode sandbox")
        bridged.append(COPY_BYTES / float(out))
    return statistics.median(direct), statistics.median(bridged)


def cli_command(ws: Path, config: Path) -> list[str]:
    script = Path(sys.executable).with_name("sandboxtui")
    prefix = [str(script)] if script.exists() else [sys.executable, "-m", "sandboxtui"]
    return [*prefix, "run", "--config", str(config), "--cwd", str(ws), "--", TRUE]


LAUNCH_IMPORTS = ("import sandboxtui.cli, sandboxtui.core.run, sandboxtui.core.launch, "
                  "sandboxtui.core.pipelines.bubblewrap, sandboxtui.core.unix_gate")
CODEX_NATIVE = ("node_modules/@openai/codex-linux-x64/vendor/x86_64-unknown-linux-musl/bin/"
                "codex")


def codex_binary(given: str | None, scratch: Path) -> tuple[str | None, str]:
    """Codex's native binary (`--codex`: the binary or an npm prefix; else installed into
    `scratch` with npm), or None and why not."""
    if given is not None:
        path = Path(given)
        found = path / CODEX_NATIVE if path.is_dir() else path
        if found.is_file() and os.access(found, os.X_OK):
            return str(found), ""
        return None, f"--codex {given}: no Codex binary there (looked for {found})"
    npm = shutil.which("npm")
    if npm is None:
        return None, "npm is not installed, and no --codex PATH was given"
    print(f"installing Codex: npm install --prefix {scratch} @openai/codex", file=sys.stderr)
    done = subprocess.run([npm, "install", "--silent", "--prefix", str(scratch),
                           "@openai/codex"], capture_output=True, text=True)
    native = scratch / CODEX_NATIVE
    if done.returncode != 0 or not native.is_file():
        why = (done.stderr.strip().splitlines() or ["no native binary for this machine"])[-1]
        return None, f"npm install @openai/codex failed: {why}"
    return str(native), ""


def spawn(argv: list[str], env: dict[str, str], cwd: Path) -> Callable[[], os.struct_rusage]:
    """A run of `argv` that returns its resource usage (and fails loudly)."""
    def once() -> os.struct_rusage:
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        assert proc.stderr is not None
        err = proc.stderr.read()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise RuntimeError(f"{argv[0]} exited {proc.returncode}: {err.decode()[-300:]}")
        return usage
    return once


def peers(runs: int, codex_path: str | None) -> int:
    """sandboxtui run, raw bwrap and Codex side by side."""
    ws = workspace()
    scratch = Path(tempfile.mkdtemp(prefix="sandboxtui-bench-peers-"))
    try:
        (scratch / "config").mkdir()  # no config file: sandboxtui's defaults, as Codex's
        env = {**cached_env(scratch / "pycache"), "XDG_CONFIG_HOME": str(scratch / "config")}
        policy = resolve(env={"XDG_CONFIG_HOME": env["XDG_CONFIG_HOME"]})  # defaults, as the CLI
        spec = prepare(build_plan(policy, str(ws)), [TRUE])
        if not isinstance(spec.enforcer, Bubblewrap):
            print("the benchmark needs the bubblewrap pipeline", file=sys.stderr)
            return 1
        script = Path(sys.executable).with_name("sandboxtui")
        prefix = [str(script)] if script.exists() else [sys.executable, "-m", "sandboxtui"]
        codex, why = codex_binary(codex_path, scratch / "codex")
        fns: dict[str, Callable[[], object]] = {
            "sandboxtui": spawn([*prefix, "run", "--", TRUE], env, ws),
            "bwrap": lambda: raw_bwrap(spec),
            # where sandboxtui's time goes: the interpreter alone, and with a launch's imports
            "python": spawn([sys.executable, "-c", "pass"], env, ws),
            "imports": spawn([sys.executable, "-c", LAUNCH_IMPORTS], env, ws),
        }
        if codex is not None:
            fns["codex"] = spawn([codex, "sandbox", "-c", 'sandbox_mode="workspace-write"', "--",
                                  TRUE], env, ws)
        usage: dict[str, list[os.struct_rusage]] = {n: [] for n in fns if n != "bwrap"}
        for name, samples in usage.items():
            fns[name] = lambda measure=fns[name], samples=samples: samples.append(measure())
        results = medians_ms(fns, runs)
        version = (subprocess.run([codex, "--version"], capture_output=True, text=True).stdout
                   .strip() if codex is not None else "")
    finally:
        shutil.rmtree(ws, ignore_errors=True)
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"{runs} paired runs, median wall time of {TRUE} in a git workspace with a .env "
          f"(bwrap: {spec.enforcer.program}; {sys.executable})")
    cpu = {n: statistics.median(u.ru_utime + u.ru_stime for u in s[3:]) * 1000
           for n, s in usage.items()}  # user + system, with waited-for children (bwrap)
    for name, ms in results.items():
        print(f"  {name:<11} {ms:7.1f} ms" + (f"   cpu {cpu[name]:6.1f} ms" if name in cpu
                                               else ""))
    ratio = results["sandboxtui"] / results["bwrap"]
    print(f"sandboxtui / raw bwrap = {ratio:.2f}x (target <= 5x): "
          f"{'met' if ratio <= 5 else 'MISSED'}")
    if "codex" not in results:
        print(f"no Codex ratio: {why}")
        return 0
    ratio = results["sandboxtui"] / results["codex"]
    print(f"sandboxtui / Codex     = {ratio:.2f}x (target <= 0.5x): "
          f"{'met' if ratio <= 0.5 else 'MISSED'}  ({version})")
    ours, theirs = (statistics.median(u.ru_maxrss for u in usage[n]) / 1024
                    for n in ("sandboxtui", "codex"))
    print(f"peak RSS (median)      = sandboxtui {ours:.1f} MiB, Codex {theirs:.1f} MiB: "
          f"{'under' if ours < theirs else 'NOT under'} Codex's")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--copies", type=int, default=3, help="proxy throughput samples")
    parser.add_argument("--peers", action="store_true",
                        help="sandboxtui run beside raw bwrap and Codex (only that)")
    parser.add_argument("--codex", metavar="PATH",
                        help="Codex's binary or npm prefix (default: npm install it)")
    args = parser.parse_args()
    if args.peers:
        return peers(args.runs, args.codex)
    sink = byte_sink()
    sink_port = sink.getsockname()[1]
    proxy_env = {**os.environ, "HTTP_PROXY": f"http://127.0.0.1:{sink_port}"}
    ws = workspace()
    config = ws.parent / f"{ws.name}.toml"
    config.write_text('sensitive_path_precheck_mode = "off"\n')
    try:
        plan = build_plan(resolve(config_path=config), str(ws))
        legacy = build_plan(resolve(config_path=config,
                                    overrides=["features.use_legacy_landlock=true"]), str(ws))
        proxied = build_plan(resolve(config_path=config, overrides=[
            'sandbox_workspace_write.network_access="proxy"']), str(ws))
        spec = prepare(plan, [TRUE])
        if not isinstance(spec.enforcer, Bubblewrap):
            print("the benchmark needs the bubblewrap pipeline", file=sys.stderr)
            return 1
        cli = cli_command(ws, config)
        env = cached_env(ws.parent / f"{ws.name}-pycache")

        def fresh(argv: list[str]) -> Callable[[], object]:
            return lambda: subprocess.run(argv, env=env, check=True, stderr=subprocess.DEVNULL)

        results = medians_ms({
            "bare": lambda: subprocess.run([TRUE], check=True),
            "bwrap": lambda: raw_bwrap(spec),
            "launcher": lambda: start(prepare(plan, [TRUE])).wait(),
            "legacy": lambda: start(prepare(legacy, [TRUE])).wait(),
            "proxy": lambda: start(prepare(proxied, [TRUE], env=proxy_env)).wait(),
            "cli": fresh(cli),
            "python": fresh([sys.executable, "-c", "pass"]),
            "cli-import": fresh([sys.executable, "-c", "import sandboxtui.cli"]),
        }, args.runs)
        direct_bps, bridged_bps = proxy_throughput(proxied, proxy_env, sink_port, args.copies)
    finally:
        sink.close()
        shutil.rmtree(ws, ignore_errors=True)
        shutil.rmtree(ws.parent / f"{ws.name}-pycache", ignore_errors=True)
        config.unlink(missing_ok=True)
    print(f"bwrap: {spec.enforcer.program}; {args.runs} runs each, median wall time of {TRUE}")
    for name, ms in results.items():
        print(f"  {name:<10} {ms:7.2f} ms")
    ratio = results["launcher"] / results["bwrap"]
    print(f"launcher / bwrap = {ratio:.2f}x (target <= 1.3x): "
          f"{'met' if ratio <= 1.3 else 'MISSED'}")
    print(f"bwrap / bare     = {results['bwrap'] / results['bare']:.2f}x")
    print(f"legacy / bwrap   = {results['legacy'] / results['bwrap']:.2f}x, legacy / bare = "
          f"{results['legacy'] / results['bare']:.2f}x (Landlock through the Python exec stage)")
    print(f"proxy / launcher = {results['proxy'] / results['launcher']:.2f}x (bridges, "
          "inside program, filter)")
    print(f"proxy throughput = {bridged_bps / 1e6:.0f} MB/s through the bridges vs "
          f"{direct_bps / 1e6:.0f} MB/s direct loopback: ratio {bridged_bps / direct_bps:.2f} "
          f"({COPY_BYTES >> 20} MiB, median of {args.copies})")
    print(f"cli / bwrap      = {results['cli'] / results['bwrap']:.2f}x")
    print(f"cli median       = {results['cli']:.1f} ms (target <= 60 ms, aim 30 ms): "
          f"{'met' if results['cli'] <= 60 else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
