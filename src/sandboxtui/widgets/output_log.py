"""The run output view: follows the end of the output until the user scrolls up, and says so.

While it follows, new lines scroll into view; once the user scrolls up, new lines no longer
pull the view away from what they read, and the bottom border says "not following — End to
follow" until they press End (or scroll back to the end)."""

from __future__ import annotations

from textual.binding import Binding
from textual.widgets import Log

NOT_FOLLOWING = "not following — End to follow"


class OutputLog(Log):
    """A `Log` whose auto-scroll is on exactly while the view is at the end."""

    BINDINGS = [Binding("end", "follow", "Follow the end", id="output.follow", show=False)]

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        self._following(round(new_value) >= self.max_scroll_y)

    def action_follow(self) -> None:
        self._following(True)
        self.scroll_end(animate=False, immediate=True, x_axis=False)

    def _following(self, on: bool) -> None:
        self.auto_scroll = on
        self.border_subtitle = "" if on else NOT_FOLLOWING
