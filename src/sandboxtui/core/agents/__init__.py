"""The agents' own sandbox settings as sandboxtui policies: `--codex [CONFIG]` (codex.py) and
`--claude [SETTINGS]` (claude.py). Each reader returns the `Policy` sandboxtui's own config
would yield for the same intent, with provenance (file:line) per value, the keys that are not
sandbox settings (`AgentSource.ignored`) and where the agent and sandboxtui's defaults differ
(`AgentSource.differences`). `resolve_policy` is the one place the CLI and the TUI load a
policy from: sandboxtui's config, or an agent's.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import replace

from sandboxtui.core.config import ConfigError, resolve
from sandboxtui.core.policy import Policy

LEGACY_KEY = "features.use_legacy_landlock"


def resolve_policy(
    *,
    cwd: str,
    config_path: str | os.PathLike[str] | None = None,
    profile: str | None = None,
    sandbox_mode: str | None = None,
    overrides: Iterable[str] = (),
    codex: str | None = None,
    claude: str | None = None,
    strict: bool = False,
    env: Mapping[str, str] | None = None,
) -> Policy:
    """sandboxtui's config, or (`codex`/`claude` not None; "" for the default location) the
    agent's. `profile`, `sandbox_mode` and `overrides` are Codex's own with `codex`."""
    if codex is not None and claude is not None:
        raise ConfigError("--codex and --claude exclude each other")
    if (codex is not None or claude is not None) and config_path is not None:
        raise ConfigError("--config is sandboxtui's own config: it cannot be combined with "
                          "--codex or --claude")
    if codex is not None:
        from sandboxtui.core.agents.codex import read_codex

        return read_codex(codex or None, cwd, profile=profile, sandbox_mode=sandbox_mode,
                          overrides=overrides, strict=strict, env=env)
    if claude is not None:
        legacy = [o for o in overrides if o.partition("=")[0].strip() == LEGACY_KEY]
        if profile is not None or sandbox_mode is not None or len(legacy) != len(list(overrides)):
            raise ConfigError(f"--profile, --sandbox and -c (but -c {LEGACY_KEY}=...) do not "
                              "apply to --claude")
        from sandboxtui.core.agents.claude import read_claude

        policy = read_claude(claude or None, cwd, strict=strict, env=env)
        if legacy:  # the TUI's pipeline switch
            policy = replace(policy, use_legacy_landlock=legacy[-1].partition("=")[2].strip()
                             == "true")
        return policy
    if strict:
        raise ConfigError("--strict applies to --codex or --claude (sandboxtui's own config "
                          "has its defaults already)")
    return resolve(config_path=config_path, profile=profile, sandbox_mode=sandbox_mode,
                   overrides=overrides, env=env)
