"""A directory moved by another process while the sensitive-path scan walks the workspace.

The scan lists one directory at a time, so a directory holding `.env` that is moved out of one
not yet listed into one already listed is seen in neither: the secret would be left unmasked,
with no error. The interleaving is made exact here by moving the directory right after the
scan's first listing, as a second process (another sandbox's command, a build) could.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import plan_for

from sandboxtui.core.plan import Access


@pytest.fixture
def move_after_first_listing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    ws = tmp_path / "ws"
    for side in ("a", "z"):
        (ws / side).mkdir(parents=True)
    (ws / "a" / "pkg").mkdir()
    (ws / "a" / "pkg" / ".env").write_text("SECRET=1\n")
    real_scandir = os.scandir
    moved: list[str] = []

    def scandir(path: str) -> object:
        listing = real_scandir(path)
        name = os.path.basename(str(path))
        if not moved and name in ("a", "z"):
            # `path` is now being listed; move pkg into it from the other side, unlisted yet
            other = "z" if name == "a" else "a"
            src, dst = ws / other / "pkg", Path(path) / "pkg"
            if src.exists():
                entries = list(listing)
                src.rename(dst)
                moved.append(str(dst))
                return _Listed(entries)
        return listing

    monkeypatch.setattr(os, "scandir", scandir)
    yield ws
    assert moved, "the race was not staged: the scan never listed a or z"


class _Listed(list):  # type: ignore[type-arg]
    """A finished listing that scandir's context-manager protocol can hand back."""

    def __enter__(self) -> _Listed:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def test_a_secret_moved_between_listings_is_masked_or_the_launch_refused(
        move_after_first_listing: Path) -> None:
    ws = move_after_first_listing
    plan = plan_for(ws)
    env_now = next(ws.glob("*/pkg/.env"))
    refused = [d for d in plan.diagnostics if d.code == "scan-changing"]
    assert refused or plan.explain(str(env_now)).access is Access.NONE, (
        f"{env_now} moved during the scan is readable inside and nothing said so")
