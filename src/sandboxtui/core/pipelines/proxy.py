"""Managed proxy mode, a layer on bubblewrap (`network_access = "proxy"`): the launcher starts
host bridges to the configured proxies, bwrap runs the inside program in front of the command,
and that program stacks the proxy filter once its bridge listens. bwrap itself loads only the
host-safety rules, for every process of the sandbox (its own init and the bridge included)."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from sandboxtui.core.pipelines.bubblewrap import Bubblewrap, BwrapSandbox
from sandboxtui.core.seccomp import HOST_FILTER, SeccompFilter, compile_bpf, render_table

if TYPE_CHECKING:
    from sandboxtui.core.launch import LaunchSpec
    from sandboxtui.core.proxy import ProxyPlan


class Proxied(Bubblewrap):
    def __init__(self, bwrap: str, seccomp: SeccompFilter, proxy: ProxyPlan) -> None:
        super().__init__(bwrap, seccomp)
        self.proxy = proxy

    @property
    def outer_filter(self) -> SeccompFilter:
        return HOST_FILTER

    def sandbox_command(self, spec: LaunchSpec, wrapper: list[str] | None = None) -> list[str]:
        """The command behind the inside program."""
        if wrapper is None:
            from sandboxtui.core.proxy import DRY_RUN_FDS

            wrapper = self.proxy.wrapper(DRY_RUN_FDS)
        return [*wrapper, *spec.command]

    def describe(self, spec: LaunchSpec) -> list[str]:
        return [*super().describe(spec), "", *self.proxy.describe(),
                "  (the filter above is applied by the inside program once its bridge "
                "listens; bwrap loads this one for every process of the sandbox, its own init "
                "and the bridge included:)", "", render_table(self.outer_filter)]

    def wrap(self, spec: LaunchSpec, sandbox: BwrapSandbox, until_spawned: contextlib.ExitStack
             ) -> tuple[list[str], tuple[int, ...]]:
        """Start the host bridges (they live until the sandbox is closed); the command behind
        the inside program, and the descriptors that program needs."""
        from sandboxtui.core.proxy import HostBridges, inside_launch

        bridges = sandbox.cleanup.enter_context(HostBridges(self.proxy))
        inside = until_spawned.enter_context(
            inside_launch(self.proxy, bridges, compile_bpf(self.seccomp)))
        return self.sandbox_command(spec, inside.wrapper), inside.fds.all()
