"""The TUI's model: one immutable snapshot of (options, policy, plan, capabilities).

The TUI never describes the policy itself: a `Workspace` holds the `MountPlan` built by the core
from the resolved config, and the panels render from it. Re-planning (live reload, profile or
pipeline switch) makes a new `Workspace`; the app holds it in a reactive the panels are bound
to. No Textual here: the CLI and the benchmarks build workspaces too.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from sandboxtui.core.agents import LEGACY_KEY, resolve_policy
from sandboxtui.core.agents.codex import codex_profiles, default_config
from sandboxtui.core.config import (
    ConfigError,
    default_config_path,
    settings_table,
    toml_text,
)
from sandboxtui.core.diagnostics import Capabilities
from sandboxtui.core.diagnostics_model import Diagnostic, Severity
from sandboxtui.core.pipeline import PipelineChoice, startup_diagnostics
from sandboxtui.core.plan import MountPlan, Rule, build_plan


@dataclass(frozen=True)
class Options:
    """What the user asked for on the command line (and through the switchers)."""

    cwd: str
    config_path: str | os.PathLike[str] | None = None
    profile: str | None = None
    sandbox_mode: str | None = None
    overrides: tuple[str, ...] = ()
    mount_proc: bool = True
    demo: bool = False  # opened by `sandboxtui demo`: the run panel offers canned scenarios
    codex: str | None = None  # --codex [CONFIG] ("": the default location)
    claude: str | None = None  # --claude [SETTINGS]
    strict: bool = False  # with an agent's config: sandboxtui's stricter defaults on top

    @property
    def config_file(self) -> Path:
        """The config file that is (or would be) read: watched for live reload."""
        if self.codex is not None:
            return Path(self.codex or default_config(os.environ))
        if self.claude is not None:
            return Path(self.claude or Path(self.cwd, ".claude", "settings.json"))
        return Path(self.config_path or default_config_path(os.environ))

    def with_legacy(self, on: bool) -> Options:
        """The same options with the pipeline override set (a `-c` the user can see)."""
        kept = tuple(o for o in self.overrides if o.split("=", 1)[0].strip() != LEGACY_KEY)
        return replace(self, overrides=(*kept, f"{LEGACY_KEY}={'true' if on else 'false'}"))


@dataclass(frozen=True)
class Workspace:
    """What the panels render: the options, the plan made from them, and this machine."""

    options: Options
    plan: MountPlan
    caps: Capabilities
    choice: PipelineChoice  # which pipeline enforces the plan here, or why none can
    diagnostics: tuple[Diagnostic, ...]
    profiles: tuple[str, ...]
    config_error: str | None = None  # the config does not load: the plan shown is not its own

    @property
    def pipeline(self) -> str:
        return self.choice.pipeline.value if self.choice.pipeline else "REFUSED"

    @property
    def can_launch(self) -> bool:
        return self.config_error is None and not self.choice.refused


def config_profiles(path: Path) -> tuple[str, ...]:
    """Profile names defined in the config file (for the switcher)."""
    try:
        with path.open("rb") as fh:
            tree = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError):
        return ()
    profiles = tree.get("profiles", {})
    return tuple(sorted(profiles)) if isinstance(profiles, dict) else ()


def load_workspace(
    options: Options, caps: Capabilities, env: Mapping[str, str] | None = None,
    reuse: MountPlan | None = None,
) -> Workspace:
    """Resolve the config and build the plan (reusing `reuse`'s scan of the directories
    unchanged since); a `ConfigError` propagates (exit 2 at start)."""
    policy = resolve_policy(cwd=options.cwd, config_path=options.config_path,
                            profile=options.profile, sandbox_mode=options.sandbox_mode,
                            overrides=options.overrides, codex=options.codex,
                            claude=options.claude, strict=options.strict, env=env)
    plan = build_plan(policy, options.cwd, env, mount_proc=options.mount_proc, reuse=reuse)
    choice, diagnostics = startup_diagnostics(plan, caps, env)
    return Workspace(options, plan, caps, choice, diagnostics,
                     codex_profiles(options.config_file) if options.codex is not None else
                     () if options.claude is not None else config_profiles(options.config_file))


def reload_workspace(
    current: Workspace, options: Options, env: Mapping[str, str] | None = None
) -> Workspace:
    """Re-plan, reusing the current plan's scan; on a config error keep the last good plan,
    flag it and refuse launches."""
    try:
        return load_workspace(options, current.caps, env, current.plan)
    except ConfigError as exc:
        return _flagged(current, exc)


def open_workspace(options: Options, caps: Capabilities,
                   env: Mapping[str, str] | None = None) -> Workspace:
    """The workspace the TUI opens on. A config that does not load is an error state, not a
    refusal to start: the views show sandboxtui's defaults for this directory, flagged, and
    launches are refused until the config loads (the live reload reads it again)."""
    try:
        return load_workspace(options, caps, env)
    except ConfigError as exc:
        defaults = Options(cwd=options.cwd, config_path=os.devnull,
                           mount_proc=options.mount_proc, demo=options.demo)
        return _flagged(replace(load_workspace(defaults, caps, env), options=options), exc)


def _flagged(shown: Workspace, exc: ConfigError) -> Workspace:
    """`shown`, flagged with the config error: every view says it is stale."""
    error = Diagnostic(Severity.ERROR, "config-error", f"config error: {exc}",
                       "fix the config; launches are refused until it loads again")
    kept = tuple(d for d in shown.diagnostics if d.code != "config-error")
    return replace(shown, diagnostics=(error, *kept), config_error=str(exc))


def _rule_key(rule: Rule) -> tuple[str, str]:
    return rule.access.value, rule.kind.value


def describe_changes(old: Workspace, new: Workspace) -> list[str]:
    """Human lines for what a re-plan changed, for the reload notification."""
    if new.config_error and new.config_error != old.config_error:
        return [f"config error: {new.config_error}"]
    lines: list[str] = []
    if old.config_error and not new.config_error:
        lines.append("config loads again")
    op, np = old.plan.policy, new.plan.policy
    # every setting that changed, by its config key (network off -> on included)
    before_settings = {k: v for k, v, _ in settings_table(op)}
    for key, value, _ in settings_table(np):
        if key not in before_settings or before_settings[key] != value:
            was = toml_text(before_settings[key]) if key in before_settings else "(not set)"
            lines.append(f"{key}: {was} -> {toml_text(value)}")
    if op.use_legacy_landlock != np.use_legacy_landlock or old.pipeline != new.pipeline:
        lines.append(f"pipeline: {old.pipeline} -> {new.pipeline} ({new.choice.reason})")
    before = {r.path: r for r in old.plan.rules}
    after = {r.path: r for r in new.plan.rules}
    for path in sorted(after.keys() - before.keys()):
        lines.append(f"+ {after[path].access.value:<4} {path} ({after[path].reason})")
    for path in sorted(before.keys() - after.keys()):
        lines.append(f"- {before[path].access.value:<4} {path} ({before[path].reason})")
    for path in sorted(before.keys() & after.keys()):
        if _rule_key(before[path]) != _rule_key(after[path]):
            lines.append(f"~ {path}: {before[path].access.value} -> {after[path].access.value}")
    return lines

