"""`sandboxtui run --codex`: a Codex config is enforced with Codex's semantics (`.env`
readable, `.aws` protected, a nested repository's `.git` writable), and `--strict` adds
sandboxtui's defaults on top: as root and as nobody, on both bwraps."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from conftest import Runner, chown_tree, git

CODEX_CONFIG = """\
model = "gpt-5-codex"
approval_policy = "never"
sandbox_mode = "workspace-write"

[tui]
notifications = true
"""

PROBE = """\
grep -q API_TOKEN .env 2>/dev/null && echo env-readable
touch x 2>/dev/null && echo workspace-writable
mkdir .aws 2>/dev/null && echo aws-created
touch .git/x 2>/dev/null && echo git-writable
touch nested/.git/x 2>/dev/null && echo nested-git-writable
exit 0
"""


def run_codex(runner: Runner, ws: Path, config: Path, *extra: str) -> set[str]:
    argv = [*runner.prefix(), "run", "--codex", str(config), "--cwd", str(ws),
            *runner.bwrap_options(), *extra, "--", "sh", "probe.sh"]
    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    return set(out.stdout.split())


def test_codex_semantics_and_strict(runner: Runner, workspace: Path) -> None:
    config = workspace.parent / "codex.toml"
    config.write_text(CODEX_CONFIG)
    config.chmod(0o644)
    (workspace / "probe.sh").write_text(PROBE)
    (workspace / "nested").mkdir()
    git(workspace / "nested", "init", "-q")
    chown_tree(workspace, runner.user)

    seen = run_codex(runner, workspace, config)
    assert seen == {"env-readable", "workspace-writable", "nested-git-writable"}
    assert not (workspace / ".aws").exists()

    strict = run_codex(runner, workspace, config, "--strict")
    assert strict == {"workspace-writable"}
