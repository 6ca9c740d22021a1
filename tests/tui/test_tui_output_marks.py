"""Output lines that name a refused path are marked (issue 14 item 4): a line of the command's
output reading "Read-only file system", "Permission denied" or "Operation not permitted" with
a path the plan restricts is shown marked, and hovering it shows the path's access and deciding
rule with provenance, and where to see every refusal (`core.trace.denial_hint`, the untraced
run's hint, asked line by line). Lines that name
no such path, and sandboxtui's own lines, stay unmarked; the command's bytes stay inert (no
escape sequence reaches the terminal, no Rich markup is parsed, in the line or in its hover).
The mark is there whether the run is traced or not, at 160x50 and at 80x24."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from rich.text import Text
from tui_support import SIZE, demo_at, make_app, real_caps, run_in_panel

from sandboxtui.widgets.output_log import OutputLog
from sandboxtui.widgets.run_panel import MARK_ADVICE, TRACE_ADVICE, RunPanel

pytestmark = pytest.mark.anyio
NO_PRECHECK = ('sensitive_path_precheck_mode="off"',)  # the command names .env on purpose
ETC_RULE = "is ro in this sandbox: read access: full (read-only bind of /) [default]"


async def _run(app, pilot, command: str) -> OutputLog:  # type: ignore[no-untyped-def]
    await run_in_panel(app, pilot, command)
    return app.query_one(OutputLog)


async def _hover(pilot, log: OutputLog, line: str) -> Text | None:  # type: ignore[no-untyped-def]
    """Hover the first output line equal to `line`; the tooltip it shows."""
    index = list(log.lines).index(line)
    log.scroll_to(y=index, animate=False, immediate=True)
    await pilot.pause()
    row = index - log.scroll_offset.y
    await pilot.hover(log, offset=(log.gutter.left + 2, log.gutter.top + row))
    await pilot.pause()
    assert log.tooltip is None or isinstance(log.tooltip, Text)  # never a markup string
    return log.tooltip


@pytest.mark.parametrize("size", [SIZE, (80, 24)], ids=["160x50", "80x24"])
@pytest.mark.parametrize("traced", [True, False], ids=["traced", "untraced"])
async def test_lines_naming_a_refused_path_are_marked(tmp_path: Path, size: tuple[int, int],
                                                      traced: bool) -> None:
    ws, config = demo_at(tmp_path / "demo")
    real = os.path.realpath(ws)
    app = make_app(ws, config, tmp_path, caps=real_caps(), overrides=NO_PRECHECK)
    async with app.run_test(size=size) as pilot:
        await pilot.press("6")
        if not traced:
            await pilot.press("ctrl+r")
        assert app.query_one(RunPanel).tracing is traced
        log = await _run(app, pilot, "sh -c 'echo x > /etc/sbx-mark; echo fine; "
                                     "echo Permission denied: nowhere; cat .env; exit 1'")
        lines = list(log.lines)
        etc = next(line for line in lines if "/etc/sbx-mark" in line
                   and "Read-only file system" in line and not line.startswith("sandboxtui"))
        env = next(line for line in lines if ".env: Permission denied" in line)
        advice = MARK_ADVICE if traced else TRACE_ADVICE
        assert log.marks[etc] == f"/etc/sbx-mark {ETC_RULE}; {advice}"
        assert log.marks[env].startswith(f"{real}/.env is none in this sandbox: ")
        assert "sensitive" in log.marks[env]
        # a refusal-looking line naming no restricted path, plain output, sandboxtui's own
        # lines (the untraced hint names the path too): not marked
        assert set(log.marks) == {etc, env}, log.marks
        assert any(line.startswith("sandboxtui: /etc/sbx-mark") for line in lines) is not traced

        said = await _hover(pilot, log, etc)
        assert said is not None and said.plain == f"/etc/sbx-mark {ETC_RULE}; {advice}"
        assert await _hover(pilot, log, "fine") is None
        said = await _hover(pilot, log, env)
        assert said is not None and "sensitive" in said.plain
        marked = log.render_line(list(log.lines).index(env) - log.scroll_offset.y)
        plain = log.render_line(list(log.lines).index("fine") - log.scroll_offset.y
                                ) if "fine" in log.lines[log.scroll_offset.y:] else None
        assert any(seg.style and seg.style.underline for seg in marked if seg.text.strip())
        assert plain is None or not any(seg.style and seg.style.underline for seg in plain)


async def test_a_hostile_marked_line_stays_inert(tmp_path: Path) -> None:
    """A refusal line carrying terminal escapes and Rich markup beside a refused path, and a
    real refusal of a path made of escapes and markup: each is shown as the characters it
    holds, marked, and its hover too."""
    ws, config = demo_at(tmp_path / "demo")
    app = make_app(ws, config, tmp_path, caps=real_caps())
    async with app.run_test(size=SIZE) as pilot:
        command = (r"""sh -c 'printf "[bold red]boom[/] \033]0;pwned\007 cannot create """
                   r"""/etc/sbx-hostile: Read-only file system\n" >&2; """
                   r"""f=$(printf "/etc/[red]y[blink=x]\033[2J"); echo x > "$f"'""")
        log = await _run(app, pilot, command)
        output = [line for line in log.lines if not line.startswith(("$ ", "sandboxtui: "))]
        (hostile,) = [line for line in output if "boom" in line]
        (real,) = [line for line in output if "[blink=" in line]
        assert "[bold red]boom[/] \\x1b]0;pwned\\x07 cannot create" in hostile
        assert "/etc/[red]y[blink=x]\\x1b[2J: Read-only file system" in real
        assert log.marks[hostile] == f"/etc/sbx-hostile {ETC_RULE}; {MARK_ADVICE}"
        assert log.marks[real] == f"/etc/[red]y[blink=x]\\x1b[2J {ETC_RULE}; {MARK_ADVICE}"
        for line in (hostile, real):
            assert "\x1b" not in line and "\x07" not in line
            row = log.render_line(list(log.lines).index(line) - log.scroll_offset.y)
            shown = row.text.rstrip()  # shown as it is (cut at the view's width): no markup
            assert len(shown) > 40 and line.startswith(shown)
        said = await _hover(pilot, log, real)
        assert said is not None and not said.spans
        assert said.plain == log.marks[real]
