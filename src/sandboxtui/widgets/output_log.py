"""The run output view: follows the end of the output until the user scrolls up, and says so;
marks the lines that name a path the sandbox refused.

While it follows, new lines scroll into view; once the user scrolls up, new lines no longer
pull the view away from what they read, and the bottom border says "not following — End to
follow" until they press End (or scroll back to the end).

A line of the command's output that reads like a refusal ("Read-only file system",
"Permission denied", "Operation not permitted") and names a path the plan restricts
(`core.trace.denial_hint`, the untraced run's hint, asked line by line) is shown in red,
bold and underlined, and hovering it shows that hint: the path's access and deciding rule with
its provenance, and where to see every refusal.
The lines stay plain text: a mark is a style over them, never markup parsed from them."""

from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.strip import Strip
from textual.widgets import Log

from sandboxtui.core.terminal import inert

NOT_FOLLOWING = "not following — End to follow"
MARKED = Style(color="red", bold=True, underline=True)  # NO_COLOR keeps bold and underline


class OutputLog(Log):
    """A `Log` whose auto-scroll is on exactly while the view is at the end, with marks."""

    BINDINGS = [Binding("end", "follow", "Follow the end", id="output.follow", show=False)]

    def __init__(self, *, max_lines: int, id: str | None = None) -> None:
        super().__init__(max_lines=max_lines, auto_scroll=True, id=id)
        self.marks: dict[str, str] = {}  # a marked line's text -> what its hover says

    def mark(self, line: str, said: str) -> None:
        """Mark `line` (written before or after); hovering it shows `said`."""
        if len(self.marks) >= (self.max_lines or 0):
            self.marks.clear()  # bounded like the lines; the newest are marked again
        self.marks[line] = inert(said)
        self._render_line_cache.clear()

    def clear(self) -> OutputLog:
        self.marks.clear()
        super().clear()
        return self

    def _render_line_strip(self, y: int, rich_style: Style) -> Strip:
        if self._lines[y] not in self.marks:
            return super()._render_line_strip(y, rich_style)
        return super()._render_line_strip(y, rich_style + MARKED)

    def on_mouse_move(self, event: events.MouseMove) -> None:
        """Hovering a marked line shows its rule."""
        offset = event.get_content_offset(self)
        y = None if offset is None else self.scroll_offset.y + offset.y
        said = self.marks.get(self._lines[y]) if y is not None and y < len(self._lines) else None
        self.tooltip = Text(said) if said else None

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        self._following(round(new_value) >= self.max_scroll_y)

    def action_follow(self) -> None:
        self._following(True)
        self.scroll_end(animate=False, immediate=True, x_axis=False)

    def _following(self, on: bool) -> None:
        self.auto_scroll = on
        self.border_subtitle = "" if on else NOT_FOLLOWING
