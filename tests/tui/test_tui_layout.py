"""80x24 is a first-class size (issue 15 items 11, 12): each panel's footer holds the keys that
matter there and nothing is cut off, the header keeps the mode and the network, the run output
gets the room; without colour, the access categories stay distinct."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.style import Style
from textual.widgets import Footer, Log
from textual.widgets._footer import FooterKey
from textual.widgets._header import HeaderTitle
from tui_support import demo_at, make_app

from sandboxtui.widgets.carveouts import _STYLE as CARVEOUT_STYLES
from sandboxtui.widgets.mount_tree import BADGES, Category

pytestmark = pytest.mark.anyio
SMALL = (80, 24)

# panel key -> the footer's entries there (the command palette's comes on top)
FOOTERS = {
    "1": ["Panels", "Find", "Verify", "Verify all", "Help", "Quit"],
    "2": ["Panels", "Find", "Help", "Quit"],
    "3": ["Raw filter", "Panels", "Find", "Help", "Quit"],
    "7": ["Review request", "Reload audit", "Panels", "Find", "Help", "Quit"],
    "8": ["Panels", "Find", "Verify all", "Help", "Quit"],
    "6": ["History", "Kill/leave", "Terminal", "argv", "Trace", "Help"],  # typing: no "/"
}


async def test_each_footer_holds_its_panels_keys_within_80_columns(tmp_path: Path) -> None:
    ws, config = demo_at(tmp_path / "demo")
    app = make_app(ws, config, tmp_path)
    async with app.run_test(size=SMALL) as pilot:
        for key, wanted in FOOTERS.items():
            await pilot.press(key)
            await pilot.pause(0.2)
            footer = app.screen.query_one(Footer)
            keys = [k for k in footer.query(FooterKey) if k.display]
            palette = [k for k in keys if k.description == "palette"]
            shown = [k.description for k in keys if k not in palette]
            assert shown == wanted, key
            right = max(k.region.right for k in keys if k not in palette)
            assert palette and right <= palette[0].region.x <= SMALL[0], (key, right)
            assert all(k.region.width > len(k.description) for k in keys), key


async def test_the_header_keeps_the_mode_and_the_network_at_80_columns(tmp_path: Path) -> None:
    ws, config = demo_at(tmp_path / "demo")
    app = make_app(ws, config, tmp_path)
    async with app.run_test(size=SMALL) as pilot:
        await pilot.pause()
        title = app.query_one(HeaderTitle)
        painted = "".join(seg.text for seg in title.render_line(0))
        assert "workspace-write · network off" in painted


async def test_the_demo_run_output_gets_the_room_at_80x24(tmp_path: Path) -> None:
    ws, config = demo_at(tmp_path / "demo")
    app = make_app(ws, config, tmp_path, demo=True)
    async with app.run_test(size=SMALL) as pilot:
        await pilot.press("6")
        await pilot.pause(0.2)
        assert app.screen.has_class("-short") and app.screen.has_class("-narrow")
        assert app.query_one("#run-output", Log).content_region.height >= 6


def _attributes(style: str) -> tuple[bool, ...]:
    """What is left of a style without colour."""
    parsed = Style.parse(style)
    return bool(parsed.bold), bool(parsed.italic), bool(parsed.reverse), bool(parsed.underline)


def test_denied_masked_and_read_only_stay_distinct_without_colour() -> None:
    kinds = [Category.RW, Category.RO, Category.DENIED, Category.MASKED]
    assert len({_attributes(BADGES[k][1]) for k in kinds}) == len(kinds)
    assert _attributes(BADGES[Category.DENIED][1])[2]  # reverse: a block, not grey on grey
    groups = ["writable", "protected ro", "denied", "unenforced"]
    assert len({_attributes(CARVEOUT_STYLES[g]) for g in groups}) == len(groups)
