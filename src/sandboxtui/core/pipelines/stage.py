"""The exec stage (core/exec_stage.py) as pipelines start it: the legacy pipeline always
(Landlock, seccomp, supervision), bubblewrap in front of bwrap when the policy has
resource limits."""

from __future__ import annotations

import os
import sys
from typing import Any


def _stage_argv() -> tuple[str, ...]:
    """The exec stage, run by the interpreter running us in isolated mode (-I): no PYTHON*
    variable, no cwd, no user site. The stage's cwd is the workspace, writable by earlier
    sandboxed commands: an empty or relative PYTHONPATH entry would import (say) a planted
    sitecustomize.py there, unsandboxed. The stage imports from exactly the absolute
    directories this process found `sandboxtui` and `landlock` in."""
    import importlib.util

    import sandboxtui

    roots = [os.path.dirname(os.path.dirname(os.path.abspath(sandboxtui.__file__)))]
    landlock = importlib.util.find_spec("landlock")
    if landlock is not None and landlock.origin is not None:
        roots.append(os.path.dirname(os.path.dirname(os.path.abspath(landlock.origin))))
    boot = (f"import sys; sys.path[:0] = {list(dict.fromkeys(roots))!r}; "
            "from sandboxtui.core.exec_stage import main; sys.exit(main())")
    return (sys.executable, "-I", "-c", boot)


STAGE_ARGV = _stage_argv()  # + SPEC_FD: the stage reads it from sys.argv[1]


def stage_spec(argv: list[str], limits: dict[str, int], **extra: Any) -> dict[str, Any]:
    """What the exec stage applies before it execs `argv`."""
    return {"argv": argv, "limits": limits, **extra}
