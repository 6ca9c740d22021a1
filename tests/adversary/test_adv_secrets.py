"""Secret scrubbing (issue 11, item 8): variables that look like secrets, by name or by value,
never reach the command; ordinary variables still do. A table of names and values (what must
be scrubbed, what must be kept), and real launches that print the sandbox's environment."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import Runner, chown_tree

from sandboxtui.core.launch import scrub_env

PLAIN = "x"
SCRUBBED = [
    ("STRIPE_SK", "sk_live_" + "a1B2c3D4e5F6g7H8"),  # found by the attack review
    ("PAYMENT_CONFIG", "rk_test_" + "a1B2c3D4e5F6g7H8"),
    # names
    ("DB_PW", PLAIN), ("PW", PLAIN), ("SMTP_PW_FILE", PLAIN), ("MY_JWT", PLAIN),
    ("JWT_SIGNING", PLAIN), ("SEGMENT_WRITEKEY", PLAIN), ("RUDDER_WRITE_KEY", PLAIN),
    ("SLACK_WEBHOOK_URL", PLAIN), ("BEARER", PLAIN), ("GITHUB_TOKEN", PLAIN),
    ("DB_PASSWORD", PLAIN), ("STRIPE_API_KEY", PLAIN), ("SESSION_COOKIE", PLAIN),
    # values: a token as the URL's whole userinfo, user:password
    ("REPO", "https://ghp_abc123@github.com/org/repo.git"),
    ("GIT_REMOTE", "https://x-oauth-basic@example.com/r"),
    ("DATABASE_URL", "postgres://user:pw@db:5432/app"),
    ("REDIS", "redis://:hunter2@cache:6379/0"),
    # values: the URL is the secret
    ("NOTIFY", "https://hooks.slack.com/services/T000/B000/XXXXXXXX"),
    ("ALERTS", "https://discord.com/api/webhooks/123/abc-def"),
    ("ALERTS_OLD", "https://discordapp.com/api/webhooks/123/abc"),
    ("TEAMS", "https://outlook.office.com/webhook/abc@def/IncomingWebhook/x/y"),
    ("TEAMS_NEW", "https://contoso.webhook.office.com/webhookb2/abc"),
    ("ZAP", "https://hooks.zapier.com/hooks/catch/1/abc/"),
    ("BOT", "https://api.telegram.org/bot123456:ABC-DEF/sendMessage"),
    ("BLOB", "https://acct.blob.core.windows.net/c/f?sv=2022&sig=abcd%3D"),
    ("S3_URL", "https://b.s3.amazonaws.com/k?X-Amz-Credential=a&X-Amz-Signature=f00"),
    ("MAPS", "https://maps.example.com/api?q=x&api_key=abc"),
    # values: well-known token formats under innocent names
    ("OPTS", "--header=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.sig"),
    ("GH", "ghp_" + "a1B2" * 9),
    ("SLACK", "xoxb-1234567890-abcdefghij"),
    ("AWSID", "AKIAIOSFODNN7EXAMPLE"),
]
KEPT = [
    ("PWD", "/work"), ("OLDPWD", "/"), ("GIT_AUTHOR_NAME", "A U Thor"),
    ("GIT_AUTHOR_EMAIL", "a@example.com"), ("PATH", "/usr/bin:/bin"), ("KEYBOARD", "us"),
    ("KEYMAP", "us"), ("HOME", "/root"), ("TOKENIZERS_PARALLELISM", "false"),
    ("LANG", "C.UTF-8"), ("TERM", "xterm-256color"), ("AUTHOR", "me"),
    ("DOCS", "http://example.com/path/to/page"), ("INDEX", "https://pypi.org/simple"),
    ("NPM_REGISTRY", "https://registry.npmjs.org/@scope/pkg"),
    ("SEARCH", "https://example.com/find?monkey=1&page=2"),
    ("HTTP_PROXY", "http://proxy.internal:3128"), ("ORIGIN", "ssh://git@github.com/o/r.git"),
    ("SCP_REMOTE", "git@github.com:o/r.git"), ("LS_COLORS", "di=01;34:ln=01;36"),
    ("DBUS_SESSION_BUS_ADDRESS", "unix:path=/run/user/0/bus"),
    ("SHA", "ghp_short"),
]


@pytest.mark.parametrize(("name", "value"), SCRUBBED, ids=[n for n, _ in SCRUBBED])
def test_scrubbed(name: str, value: str) -> None:
    kept, dropped = scrub_env({name: value}, ())
    assert dropped == (name,) and kept == {}
    # ... unless the user names it
    assert scrub_env({name: value}, (name,)) == ({name: value}, ())


@pytest.mark.parametrize(("name", "value"), KEPT, ids=[n for n, _ in KEPT])
def test_kept(name: str, value: str) -> None:
    assert scrub_env({name: value}, ()) == ({name: value}, ())


LAUNCHED = {
    "DB_PW": "canary-pw-1", "DEPLOY_JWT": "canary-jwt-2", "SEGMENT_WRITEKEY": "canary-wk-3",
    "REPO_URL": "https://canarytoken4@github.com/o/r.git",
    "NOTIFY": "https://hooks.slack.com/services/T0/B0/canary5",
    "ALERTS": "https://discord.com/api/webhooks/1/canary6",
    "TEAMS": "https://outlook.office.com/webhook/canary7",
}


@pytest.mark.parametrize("pipeline", ["bwrap", "legacy"])
def test_secrets_are_not_visible_inside(runner: Runner, workspace: Path, pipeline: str,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The launcher has them in its environment; `env` inside the sandbox shows none of them,
    while ordinary variables (and the look-alikes above) arrive."""
    if pipeline == "legacy" and runner.bwrap == "vendored":
        pytest.skip("the legacy pipeline runs no bwrap: one variant per user is enough")
    if pipeline == "legacy" and runner.user == "root":
        pytest.skip("a root launcher never runs on legacy Landlock (it stays on bubblewrap)")
    chown_tree(workspace, runner.user)
    for name, value in {**LAUNCHED, "KEYBOARD": "kept-kb",
                        "DOCS_URL": "http://example.com/kept/path"}.items():
        monkeypatch.setenv(name, value)
    runner = Runner(runner.user, runner.bwrap, runner.config, pipeline=pipeline)
    run = runner.run(workspace, ["env"])
    assert run.returncode == 0, run.stderr
    inside = dict(line.split("=", 1) for line in run.stdout.splitlines() if "=" in line)
    leaked = {n: inside[n] for n in LAUNCHED if n in inside}
    assert leaked == {}
    assert not any(v in run.stdout for v in LAUNCHED.values())
    assert inside.get("KEYBOARD") == "kept-kb"
    assert inside.get("DOCS_URL") == "http://example.com/kept/path"
