"""The allowed side: everyday developer workloads run inside the default sandbox.

Each workload is a real command run by `sandboxtui run` in workspace-write mode with the network
off, as root and as `nobody`, and must succeed. Beside them, the denied-side twins that must
still fail in the very same setup: a host listener on loopback, a host Unix socket, the host's
own caches, `.env`. A sandbox that breaks ordinary tools gets switched off; one that lets these
twins through is no sandbox. Fixtures are built offline inside the test.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import CANARY, Runner, chown_tree, make_workspace

USERS = ["root", "nobody"]
TIMEOUT = 40


@dataclass(frozen=True)
class Workload:
    name: str
    script: str  # run by `bash -euc` in the workspace
    needs: tuple[str, ...] = ()  # executables that must be installed


PY_ASYNCIO = r'''
import asyncio, concurrent.futures
async def main():
    loop = asyncio.get_running_loop()
    a = await loop.run_in_executor(None, sum, [1, 2])
    b = await asyncio.to_thread(lambda: 4)
    fut = loop.create_future()
    loop.call_soon_threadsafe(fut.set_result, 5)
    c = await asyncio.wait_for(fut, 5)
    proc = await asyncio.create_subprocess_exec("echo", "sub", stdout=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    assert (a, b, c, out) == (3, 4, 5, b"sub\n"), (a, b, c, out)
asyncio.run(asyncio.wait_for(main(), 10))
print("asyncio ok")
'''

PY_SOCKETPAIR = r'''
import socket
a, b = socket.socketpair()
a.send(b"ping"); assert b.recv(4) == b"ping"
a.shutdown(socket.SHUT_WR); assert b.recv(1) == b""
a.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE); a.getsockname()
print("socketpair ok")
'''

PY_MULTIPROCESSING = r'''
import concurrent.futures, multiprocessing as mp
def sq(x): return x * x
if __name__ == "__main__":
    with mp.get_context("fork").Pool(2) as p:
        assert p.map(sq, range(5)) == [0, 1, 4, 9, 16]
    with concurrent.futures.ProcessPoolExecutor(2) as ex:
        assert list(ex.map(sq, range(3))) == [0, 1, 4]
    print("mp ok")
'''

PY_FORKSERVER = r'''
import multiprocessing as mp
def sq(x): return x * x
if __name__ == "__main__":
    with mp.get_context("forkserver").Pool(2) as p:
        assert p.map(sq, range(4)) == [0, 1, 4, 9]
    with mp.Manager() as m:
        d = m.dict(); d["a"] = 1; assert dict(d) == {"a": 1}
    print("forkserver ok")
'''

PY_UNIX_SERVER = r'''
import os, socket, threading
path = os.path.join(os.getcwd(), "own.sock")
srv = socket.socket(socket.AF_UNIX); srv.bind(path); srv.listen(1)
def serve():
    c, _ = srv.accept(); c.sendall(c.recv(5)); c.close()
threading.Thread(target=serve, daemon=True).start()
cl = socket.socket(socket.AF_UNIX); cl.connect(path); cl.sendall(b"hello")
assert cl.recv(5) == b"hello"
os.unlink(path)
print("unix ok")
'''

NODE_SPAWN = r'''
const cp = require("child_process");
if (cp.execSync("echo hi").toString().trim() !== "hi") throw new Error("execSync");
const r = cp.spawnSync("cat", [], { input: "piped" });
if (r.stdout.toString() !== "piped") throw new Error("spawnSync input: " + r.error);
console.log("node spawn ok");
'''

NODE_HTTP = r'''
const http = require("http");
const srv = http.createServer((q, s) => s.end("pong"));
srv.listen(0, "127.0.0.1", () => {
  http.get({ host: "127.0.0.1", port: srv.address().port }, (res) => {
    let body = ""; res.on("data", (d) => (body += d));
    res.on("end", () => {
      if (body !== "pong") process.exit(1);
      console.log("node http ok"); srv.close();
    });
  });
});
'''

HTTP_SERVER = r'''
python3 -m http.server 0 --bind 127.0.0.1 > server.log 2>&1 &
pid=$!
for _ in $(seq 100); do
    port=$(grep -o 'port [0-9]*' server.log | grep -o '[0-9]*' || true)
    [ -n "$port" ] && break; sleep 0.1
done
curl -sf "http://127.0.0.1:$port/README.md" | grep -q hello
kill $pid
echo "http.server ok"
'''

C_PROJECT = r'''
mkdir -p cproj && cd cproj
printf '#include <stdio.h>\nint main(void){puts("built");return 0;}\n' > main.c
printf 'app: main.c\n\tcc -O1 -o app main.c\n' > Makefile
make -s && ./app
'''

GIT_NEW_REPO = r'''
git init -q newrepo && cd newrepo
git -c user.name=t -c user.email=t@x.invalid commit -q --allow-empty -m one
echo x > f && git add f && git -c user.name=t -c user.email=t@x.invalid commit -q -m two
git log --oneline | wc -l | grep -q 2
echo "git ok"
'''

NPM_INSTALL = r'''
mkdir -p lib app
printf '{"name":"wl-lib","version":"1.0.0","main":"index.js"}' > lib/package.json
echo 'module.exports = () => "from lib";' > lib/index.js
(cd lib && npm pack --silent >/dev/null)
cd app && printf '{"name":"wl-app","version":"1.0.0","scripts":{"test":"node t.js"}}' > package.json
echo 'if (require("wl-lib")() !== "from lib") process.exit(1);' > t.js
npm install --silent --no-audit --no-fund ../lib/wl-lib-1.0.0.tgz
npm test --silent
'''

GPG_KEY = r'''
export GNUPGHOME="$PWD/gnupg"; mkdir -m 700 "$GNUPGHOME"
gpg --batch --quiet --passphrase '' --quick-gen-key wl@example.invalid ed25519 sign never
echo signed | gpg --batch --quiet --clearsign >/dev/null
gpgconf --kill gpg-agent
'''

# tmux runs a pane's command through $SHELL, else the user's login shell: nobody's is nologin,
# so without SHELL (as in CI) the pane would die at once for reasons outside the sandbox.
TMUX_SERVER = r'''
export SHELL=/bin/sh
tmux -S "$PWD/t.sock" new-session -d "sleep 30"
tmux -S "$PWD/t.sock" list-sessions | grep -q windows
tmux -S "$PWD/t.sock" kill-server
'''

WORKLOADS = [
    Workload("shell-tools", "grep -rq hello . && find . -name README.md | grep -q README "
             "&& sed -i s/hello/hi/ README.md && tar czf /tmp/$$.tgz README.md && rm /tmp/$$.tgz"),
    Workload("git-read", "git status --short >/dev/null && git log --oneline >/dev/null "
             "&& git diff --stat >/dev/null", ("git",)),
    Workload("git-new-repo", GIT_NEW_REPO, ("git",)),
    Workload("python-asyncio", f"python3 -c '{PY_ASYNCIO}'"),
    Workload("python-socketpair", f"python3 -c '{PY_SOCKETPAIR}'"),
    Workload("python-multiprocessing", f"cat > mp.py <<'X'\n{PY_MULTIPROCESSING}\nX\n"
             "python3 mp.py"),
    Workload("python-forkserver", f"cat > fs.py <<'X'\n{PY_FORKSERVER}\nX\npython3 fs.py"),
    Workload("python-unix-server", f"python3 -c '{PY_UNIX_SERVER}'"),
    Workload("python-venv", "python3 -m venv --without-pip v && v/bin/python -c 'print(1)'"),
    Workload("python-http-server", HTTP_SERVER, ("curl",)),
    Workload("c-make", C_PROJECT, ("cc", "make")),
    Workload("node-spawn", f"node -e '{NODE_SPAWN}'", ("node",)),
    Workload("node-http", f"node -e '{NODE_HTTP}'", ("node",)),
    Workload("ripgrep", "rg -q hello", ("rg",)),
    Workload("npm-install-local", NPM_INSTALL, ("npm",)),
    Workload("gpg-agent", GPG_KEY, ("gpg", "gpg-agent")),
    Workload("tmux-server", TMUX_SERVER, ("tmux",)),
    Workload("sqlite", "python3 -c 'import sqlite3; c = sqlite3.connect(\"d.db\"); "
             "c.execute(\"create table t(x)\"); c.commit()'"),
]


@pytest.fixture(params=USERS)
def wl_runner(request: pytest.FixtureRequest, shared_dir: Path) -> Runner:
    return Runner(request.param, "system", shared_dir / "config.toml")


@pytest.fixture
def ws(wl_runner: Runner, shared_dir: Path) -> Iterator[Path]:
    """A workspace, and the user's own home (a real user has one, outside the writable roots:
    the tools' caches must not need it to be writable)."""
    base = Path(os.path.realpath(shared_dir)) / f"wl-{os.urandom(4).hex()}"
    base.mkdir()
    base.chmod(0o755)
    workspace = make_workspace(base)
    home = Path(tempfile.mkdtemp(prefix="sandboxtui-home-", dir="/var/tmp"))
    (base / "home").symlink_to(home)
    chown_tree(base, wl_runner.user)
    chown_tree(home, wl_runner.user)
    yield workspace
    shutil.rmtree(base, ignore_errors=True)
    shutil.rmtree(home, ignore_errors=True)


def run_in(runner: Runner, ws: Path, command: list[str]) -> subprocess.CompletedProcess[str]:
    """`sandboxtui run` with HOME the user's home; on timeout the whole process group goes
    (the launcher below runuser, and with it the sandbox), not only runuser."""
    prefix = runner.prefix()
    home = os.path.realpath(ws.parent / "home")
    if "env" in prefix:
        prefix.insert(prefix.index("env") + 1, f"HOME={home}")
        env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
    else:
        env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"} | {"HOME": home}
    argv = [*prefix, "run", "--config", str(runner.config), "--cwd", str(ws), "--", *command]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        err += f"\n(killed after {TIMEOUT} s)"
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


@pytest.mark.parametrize("workload", WORKLOADS, ids=lambda w: w.name)
def test_workload_runs_inside(workload: Workload, wl_runner: Runner, ws: Path) -> None:
    missing = [n for n in workload.needs if shutil.which(n) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed")
    r = run_in(wl_runner, ws, ["bash", "-euc", workload.script])
    assert r.returncode == 0, f"{workload.name}: exit {r.returncode}\n{r.stdout}\n{r.stderr}"


# --- the denied side, in the same setup ---------------------------------------------------------


@pytest.fixture
def host_tcp() -> Iterator[int]:
    """A host listener on loopback that answers 'host' to anyone who connects."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    srv.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                continue
            conn.sendall(b"host")
            conn.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield srv.getsockname()[1]
    stop.set()
    t.join(2)
    srv.close()


def test_host_loopback_listener_stays_unreachable(wl_runner: Runner, ws: Path,
                                                  host_tcp: int) -> None:
    script = ("import socket\n"
              "try:\n    s = socket.socket(); s.settimeout(3)\n"
              f"    s.connect(('127.0.0.1', {host_tcp})); print('REACHED', s.recv(4))\n"
              "except OSError as e:\n    print('refused', e.errno)\n")
    r = run_in(wl_runner, ws, ["python3", "-c", script])
    assert "REACHED" not in r.stdout and "refused" in r.stdout, r.stdout + r.stderr


def test_host_unix_socket_stays_unreachable(wl_runner: Runner, ws: Path,
                                            shared_dir: Path) -> None:
    path = str(shared_dir / f"host-{os.urandom(3).hex()}.sock")
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(path)
    os.chmod(path, 0o777)
    srv.listen(1)
    try:
        script = ("import socket\n"
                  "try:\n    s = socket.socket(socket.AF_UNIX)\n"
                  f"    s.connect({path!r}); print('REACHED')\n"
                  "except OSError as e:\n    print('refused', e.errno)\n")
        r = run_in(wl_runner, ws, ["python3", "-c", script])
        # the gate answers EACCES (without it, socket() itself fails with EPERM)
        assert "REACHED" not in r.stdout and "refused 13" in r.stdout, r.stdout + r.stderr
    finally:
        srv.close()
        os.unlink(path)


def test_env_content_stays_hidden(wl_runner: Runner, ws: Path) -> None:
    r = run_in(wl_runner, ws, ["sh", "-c", "cat .env sub/.env.local; rg -uu sandboxtui-canary . "
                           "2>/dev/null; grep -r sandboxtui-canary . 2>/dev/null; true"])
    assert CANARY not in r.stdout + r.stderr


def test_writes_outside_the_roots_fail(wl_runner: Runner, ws: Path) -> None:
    """/tmp is a writable root: the victim lives in /var/tmp, owned by the runner's user."""
    outside = Path(tempfile.mkdtemp(prefix="sandboxtui-wl-", dir="/var/tmp"))
    try:
        victim = outside / "outside.txt"
        victim.write_text("host\n")
        chown_tree(outside, wl_runner.user)
        r = run_in(wl_runner, ws, ["sh", "-c", f"echo pwned >> {victim}"])
        assert r.returncode != 0
        assert victim.read_text() == "host\n"
    finally:
        shutil.rmtree(outside)


def test_the_hosts_own_caches_stay_read_only(wl_runner: Runner, ws: Path) -> None:
    """npm and friends write to the workspace's own cache directory inside; the user's real
    ~/.npm and ~/.cache (which host tools read) stay read-only, so nothing can poison them."""
    home = Path(os.path.realpath(ws.parent / "home"))
    script = ('for d in "$HOME/.npm" "$HOME/.cache/pip"; do mkdir -p "$d" 2>/dev/null '
              '&& echo "WROTE $d"; done; echo "cache=$npm_config_cache"; touch '
              '"$npm_config_cache-probe" && echo CACHE-WRITABLE; true')
    r = run_in(wl_runner, ws, ["sh", "-c", script])
    assert r.returncode == 0, r.stderr
    assert "WROTE" not in r.stdout and "CACHE-WRITABLE" in r.stdout, r.stdout + r.stderr
    assert not (home / ".npm").exists()
    cache = r.stdout.split("cache=")[1].split()[0]
    assert cache.startswith(str(home / ".cache" / "sandboxtui" / "workspaces")), cache
