"""The effective mount tree: the plan's mount roots, lazily expandable into the real filesystem.

Top-level nodes are the plan's mount roots (`/`, `/dev`, `/proc`, writable and readable roots,
filesystem entries outside them) and the workspace, in plan order, so what you see is what
bwrap mounts. A
directory is listed with `os.scandir` only when expanded; rule paths that do not exist on the
host (a missing `.agents` whose creation is blocked) are merged in. Every label is computed
from `MountPlan.rule_for` / `explain`, the same code that builds the sandbox.
"""

from __future__ import annotations

import os
import stat
from collections import defaultdict
from dataclasses import dataclass
from enum import StrEnum

from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from sandboxtui.core.paths import is_beneath, is_within
from sandboxtui.core.plan import MountPlan, Rule, RuleKind
from sandboxtui.core.policy import Access
from sandboxtui.core.terminal import inert
from sandboxtui.model import Workspace
from sandboxtui.widgets.plan_view import PlanView


class Category(StrEnum):
    RW = "rw"
    RO = "ro"
    DENIED = "denied"
    MASKED = "masked-missing"
    TMPFS = "tmpfs"
    PROC = "proc"
    DEV = "dev"
    UNSANDBOXED = "unsandboxed"


# (badge text, style): the word carries the meaning so NO_COLOR loses nothing.
BADGES: dict[Category, tuple[str, str]] = {
    Category.RW: ("rw", "bold green"),
    Category.RO: ("ro", "italic cyan"),
    Category.DENIED: ("denied", "bold reverse #ff8a8a"),
    Category.MASKED: ("masked-missing", "bold underline magenta"),
    Category.TMPFS: ("tmpfs (not mounted)", "dim yellow"),
    Category.PROC: ("proc", "blue"),
    Category.DEV: ("dev", "blue"),
    Category.UNSANDBOXED: ("UNSANDBOXED rw", "bold underline reverse #ff8a8a"),
}

# Verify marks (from `VerifyReport.path_status()`): a word as well as a colour, as above.
MARKS: dict[str, tuple[str, str]] = {
    "verified": ("✓ verified", "bold green"),
    "expected": ("~ expected (unenforced)", "bold yellow"),
    "mismatch": ("✗ MISMATCH", "bold white on red"),
}

_ROOT_KINDS = (RuleKind.BASE, RuleKind.DEVICE, RuleKind.PROC, RuleKind.WRITABLE,
               RuleKind.READABLE, RuleKind.UNSANDBOXED)


def classify(plan: MountPlan, path: str, rule: Rule) -> Category:
    """The display category of `path` given the rule that decides it."""
    if plan.unsandboxed:
        return Category.UNSANDBOXED
    if rule.kind is RuleKind.PROC:
        return Category.PROC
    if rule.kind is RuleKind.DEVICE:
        return Category.DEV
    if rule.missing and rule.path == path:
        return Category.MASKED
    if rule.access is Access.NONE:
        return Category.TMPFS if rule.kind is RuleKind.BASE else Category.DENIED
    return Category.RW if rule.access is Access.RW else Category.RO


def short_reason(rule: Rule) -> str:
    """The rule in a few words for a tree label (the details pane has the whole reason)."""
    if rule.kind is RuleKind.PROTECTED:
        return "protected" + (": creation blocked" if rule.missing else "")
    if rule.kind is RuleKind.ENTRY:
        return f"[permissions] entry = {rule.access.value}"
    return rule.reason


@dataclass(frozen=True)
class FsNode:
    """A tree node: a host path (resolved, except for a symlink's own name)."""

    path: str
    is_dir: bool
    link: str | None = None  # the symlink's target text, when the entry is a symlink
    exists: bool = True
    top: bool = False  # a mount root shown at the top level


def mount_roots(plan: MountPlan) -> list[str]:
    """The paths shown as top-level nodes: the plan's mount roots and the workspace."""
    roots = [r for r in plan.rules if r.kind in _ROOT_KINDS]
    containers = [r.path for r in roots if r.access is not Access.NONE and r.path != "/"]
    paths = {r.path for r in roots} | {plan.cwd}
    paths |= {r.path for r in plan.rules if r.kind is RuleKind.ENTRY
              and not any(is_beneath(r.path, c) for c in containers)}
    return sorted(paths, key=lambda p: tuple(c for c in p.split("/") if c))


def _entry(path: str) -> FsNode:
    try:
        st = os.lstat(path)
    except OSError:
        return FsNode(path, False, exists=False)
    if stat.S_ISLNK(st.st_mode):
        try:
            target = os.readlink(path)
        except OSError:
            target = "?"
        return FsNode(path, False, link=target)
    return FsNode(path, stat.S_ISDIR(st.st_mode))


class MountTree(Tree[FsNode], PlanView):
    """The effective mount tree; emits `PathHighlighted` for the details pane."""

    BINDINGS = [
        # in the help screen: the footer keeps 80 columns for the keys to find and verify
        Binding("right", "expand_node", "Expand", key_display="→", id="tree.expand",
                show=False),
        Binding("left", "collapse_node", "Collapse", key_display="←", id="tree.collapse",
                show=False),
    ]

    class PathHighlighted(Message):
        def __init__(self, path: str) -> None:
            super().__init__()
            self.path = path

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("mounts", id=id)
        self.show_root = False
        self.guide_depth = 3
        self.auto_expand = False
        self._loaded: set[int] = set()
        self._inner: dict[str, int] = {}
        self._missing_children: dict[str, list[Rule]] = {}
        self.marks: dict[str, str] = {}  # path -> verify status, for the plan shown

    # --- plan -> nodes -----------------------------------------------------------------------

    def watch_workspace(self, old: Workspace, new: Workspace) -> None:
        if new.plan is not old.plan:
            self.marks = {}  # the probes answered for the previous plan
        self.reload()

    def reload(self) -> None:
        """Rebuild from the plan and the filesystem, keeping what was expanded and the cursor
        (at first: the workspace, expanded)."""
        if not self.root.children:
            cwd = self.workspace.plan.cwd
            self._rebuild(expanded={cwd}, cursor=cwd)
            return
        expanded = {n.data.path for n in self._walk() if n.is_expanded and n.data}
        cursor = self.cursor_node.data.path if self.cursor_node and self.cursor_node.data else None
        self._rebuild(expanded=expanded, cursor=cursor)

    def _index(self) -> None:
        """Per-plan lookups: how many rules lie inside each directory, and missing rule paths."""
        inner: dict[str, int] = defaultdict(int)
        missing: dict[str, list[Rule]] = defaultdict(list)
        for rule in self.workspace.plan.rules:
            if rule.kind is RuleKind.BASE:
                continue
            p = rule.path
            while p != "/":
                p = os.path.dirname(p)
                inner[p] += 1
            if not os.path.lexists(rule.path):
                missing[os.path.dirname(rule.path)].append(rule)
        self._inner, self._missing_children = dict(inner), dict(missing)

    def _rebuild(self, expanded: set[str], cursor: str | None) -> None:
        self._index()
        self.clear()
        self._loaded.clear()
        target: TreeNode[FsNode] | None = None
        plan = self.workspace.plan
        for path in mount_roots(plan):
            entry = _entry(path)
            is_dir = entry.is_dir or not entry.exists and plan.rule_for(path).is_dir
            data = FsNode(path, is_dir, entry.link, entry.exists, top=True)
            node = self.root.add(self._label(data), data, allow_expand=data.is_dir)
            found = self._restore(node, expanded, cursor)
            target = target or found
        if target is not None:
            self.call_after_refresh(self.move_cursor, target)

    def _restore(self, node: TreeNode[FsNode], expanded: set[str],
                 cursor: str | None) -> TreeNode[FsNode] | None:
        """Re-expand what was expanded before a re-plan; returns the node to put the cursor on."""
        data = node.data
        assert data is not None
        found = node if data.path == cursor else None
        if data.is_dir and data.path in expanded:
            self._load(node)
            node.expand()
            for child in node.children:
                found = self._restore(child, expanded, cursor) or found
        return found

    def _load(self, node: TreeNode[FsNode]) -> None:
        """List a directory from the real filesystem, merged with missing rule paths."""
        if node.id in self._loaded or node.data is None:
            return
        self._loaded.add(node.id)
        path = node.data.path
        try:
            with os.scandir(path) as it:
                names = {e.name for e in it}
        except OSError as exc:
            node.add_leaf(Text(f"(cannot list: {exc.strerror})", style="dim italic"))
            return
        names |= {os.path.basename(r.path) for r in self._missing_children.get(path, [])}
        entries = [_entry(os.path.join(path, n)) for n in names]
        entries.sort(key=lambda e: (not e.is_dir, os.path.basename(e.path)))
        for entry in entries:
            if not entry.exists:
                rule = self.workspace.plan.rule_for(entry.path)
                entry = FsNode(entry.path, rule.is_dir and rule.path == entry.path, exists=False)
            node.add(self._label(entry), entry, allow_expand=entry.is_dir and entry.exists)

    def on_tree_node_expanded(self, event: Tree.NodeExpanded[FsNode]) -> None:
        event.stop()
        self._load(event.node)

    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted[FsNode]) -> None:
        event.stop()
        if event.node.data is not None:
            self.post_message(self.PathHighlighted(event.node.data.path))

    def on_tree_node_selected(self, event: Tree.NodeSelected[FsNode]) -> None:
        event.stop()
        if event.node.allow_expand:
            event.node.toggle()

    # --- labels ------------------------------------------------------------------------------

    def category(self, data: FsNode) -> tuple[Category, Rule]:
        """From `explain()` of the node's path, as the details pane and verify: a node beneath
        a symlinked directory (sub-link/.env.local) is what its resolved path is."""
        plan = self.workspace.plan
        ex = plan.explain(data.path)
        return classify(plan, ex.resolved, ex.rule), ex.rule

    def _label(self, data: FsNode) -> Text:
        category, rule = self.category(data)
        badge, style = BADGES[category]
        name = data.path if data.top else os.path.basename(data.path)
        if data.is_dir and name != "/":
            name += "/"
        text = Text.assemble((inert(name), style if category is not Category.RO else ""), " ",
                             (f"[{badge}]", style))
        if data.link is not None:
            text.append(inert(f" -> {data.link}"), style="italic")
        if not data.exists:
            text.append(" (missing on host)", style="dim")
        if data.top:
            text.append(inert(f"  {rule.reason}"), style="dim")
        elif rule.path in (data.path, os.path.realpath(data.path)) \
                and rule.kind is not RuleKind.BASE:
            text.append(inert(f"  {short_reason(rule)}"), style="dim")
        mark = self.marks.get(data.path)
        if mark is not None:
            word, mark_style = MARKS[mark]
            text.append(f"  {word}", style=mark_style)
        inside = self._inner.get(data.path, 0)
        if inside:
            text.append(f"  * {inside} rule{'s' if inside > 1 else ''} inside", style="dim italic")
        return text

    def set_marks(self, marks: dict[str, str]) -> None:
        """Show verify results on the nodes (they replace earlier marks of the same paths)."""
        self.marks = {**self.marks, **marks}
        for node in self._walk():
            if node.data is not None and node.data.path in marks:
                node.set_label(self._label(node.data))

    # --- navigation --------------------------------------------------------------------------

    def _walk(self) -> list[TreeNode[FsNode]]:
        out: list[TreeNode[FsNode]] = []
        stack = list(reversed(self.root.children))
        while stack:
            node = stack.pop()
            out.append(node)
            stack.extend(reversed(node.children))
        return out

    def reveal(self, path: str) -> bool:
        """Expand down to `path` and put the cursor on it; False when it is not in the tree."""
        tops = [n for n in self.root.children if n.data and is_within(path, n.data.path)]
        if not tops:
            return False
        node = max(tops, key=lambda n: len(n.data.path) if n.data else 0)
        while node.data is not None and node.data.path != path:
            self._load(node)
            node.expand()
            nxt = next((c for c in node.children if c.data and is_within(path, c.data.path)),
                       None)
            if nxt is None:
                break
            node = nxt
        self.call_after_refresh(self.move_cursor, node)
        return node.data is not None and node.data.path == path

    def action_expand_node(self) -> None:
        node = self.cursor_node
        if node is not None and node.allow_expand:
            node.expand()

    def action_collapse_node(self) -> None:
        node = self.cursor_node
        if node is None:
            return
        if node.is_expanded:
            node.collapse()
        elif node.parent is not None and node.parent is not self.root:
            self.move_cursor(node.parent)
