"""`sandboxtui patch`: unified diffs applied in the workspace, never to sensitive paths."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from conftest import plan_for

from sandboxtui.cli import main
from sandboxtui.core import patch as patch_mod
from sandboxtui.core.config import resolve
from sandboxtui.core.patch import (
    PatchConflict,
    PatchDenied,
    PatchError,
    parse_diff,
    patch_workspace,
)
from sandboxtui.core.plan import build_plan


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    w = tmp_path / "ws"
    (w / "src").mkdir(parents=True)
    (w / "sub").mkdir()
    (w / "src" / "app.py").write_text("a\nb\nc\nd\ne\nf\ng\nh\n")
    (w / "README.md").write_text("# title\n\ntext\n")
    (w / ".env").write_text("TOKEN=secret\n")
    (w / "sub" / ".env.local").write_text("DB=secret\n")
    (w / "old.txt").write_text("keep me\n")
    (w / ".codex").mkdir()
    (w / ".codex" / "config.toml").write_text("x = 1\n")
    return w


def snapshot(root: Path) -> dict[str, bytes | str]:
    """Every entry under root: file contents, symlink targets, directories."""
    out: dict[str, bytes | str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, root)
            if os.path.islink(p):
                out[rel] = "-> " + os.readlink(p)
            elif os.path.isdir(p):
                out[rel] = "dir"
            else:
                out[rel] = Path(p).read_bytes() + oct(os.stat(p).st_mode).encode()
    return out


MODIFY = """\
diff --git a/src/app.py b/src/app.py
index 1111111..2222222 100644
--- a/src/app.py
+++ b/src/app.py
@@ -2,3 +2,3 @@
 b
-c
+C
 d
@@ -6,3 +6,4 @@
 f
 g
 h
+i
"""

CREATE_DELETE_RENAME = """\
From 1234 Mon Sep 17 00:00:00 2001
Subject: [PATCH] several things

---
diff --git a/docs/new.md b/docs/new.md
new file mode 100644
--- /dev/null
+++ b/docs/new.md
@@ -0,0 +1,2 @@
+hello
+world
diff --git a/old.txt b/old.txt
deleted file mode 100644
--- a/old.txt
+++ /dev/null
@@ -1 +0,0 @@
-keep me
diff --git a/README.md b/NEWREADME.md
similarity index 80%
rename from README.md
rename to NEWREADME.md
--- a/README.md
+++ b/NEWREADME.md
@@ -1,3 +1,3 @@
 # title

-text
+better text
\\ No newline at end of file
--
2.39.0
"""


def test_modify_with_two_hunks(ws: Path) -> None:
    result = patch_workspace(MODIFY, plan_for(ws))
    assert (ws / "src" / "app.py").read_text() == "a\nb\nC\nd\ne\nf\ng\nh\ni\n"
    assert result.summary() == ["wrote src/app.py"]


def test_create_delete_rename(ws: Path) -> None:
    patch_workspace(CREATE_DELETE_RENAME, plan_for(ws))
    assert (ws / "docs" / "new.md").read_text() == "hello\nworld\n"
    assert not (ws / "old.txt").exists()
    assert not (ws / "README.md").exists()
    assert (ws / "NEWREADME.md").read_text() == "# title\n\nbetter text"
    assert not [p for p in os.listdir(ws) if p.startswith(".sandboxtui-")]


def test_root_keeps_the_owner_and_mode_of_a_patched_file(ws: Path) -> None:
    app = ws / "src" / "app.py"
    os.chown(app, 65534, 65534)
    os.chmod(app, 0o640)
    patch_workspace(MODIFY, plan_for(ws))
    st = os.stat(app)
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (65534, 65534, 0o640)


def test_plain_diff_u_and_offset_hunks(ws: Path) -> None:
    (ws / "src" / "app.py").write_text("0\n" * 5 + "a\nb\nc\nd\ne\nf\ng\nh\n")  # shifted by 5
    plain = ("--- src/app.py.orig\t2024-01-01 00:00:00\n+++ src/app.py\t2024-01-01\n"
             "@@ -2,3 +2,3 @@\n b\n-c\n+C\n d\n")
    patch_workspace(plain, plan_for(ws))
    assert (ws / "src" / "app.py").read_text() == "0\n" * 5 + "a\nb\nC\nd\ne\nf\ng\nh\n"


def test_patch_through_a_symlink_writes_the_target(ws: Path) -> None:
    os.symlink("README.md", ws / "readme-link")
    diff = ("--- a/readme-link\n+++ b/readme-link\n@@ -3 +3 @@\n-text\n+linked\n")
    patch_workspace(diff, plan_for(ws))
    assert os.readlink(ws / "readme-link") == "README.md"
    assert (ws / "README.md").read_text() == "# title\n\nlinked\n"


def test_matches_git_apply(ws: Path, tmp_path: Path) -> None:
    """Our applier and git's agree on a real `git diff` (with a no-newline end and a mode)."""
    other = tmp_path / "other"
    subprocess.run(["git", "init", "-q", str(other)], check=True)
    (other / "f.txt").write_text("".join(f"line {i}\n" for i in range(40)))
    subprocess.run(["git", "-C", str(other), "add", "."], check=True)
    before = (other / "f.txt").read_text()
    after = before.replace("line 3\n", "LINE 3\n").replace("line 30\n", "") + "tail"
    (other / "f.txt").write_text(after)
    os.chmod(other / "f.txt", 0o755)
    diff = subprocess.run(["git", "-C", str(other), "diff"], check=True, capture_output=True,
                          text=True).stdout
    (ws / "f.txt").write_text(before)
    os.chmod(ws / "f.txt", 0o644)
    patch_workspace(diff, plan_for(ws))
    assert (ws / "f.txt").read_text() == after
    assert os.stat(ws / "f.txt").st_mode & 0o777 == 0o755


# --- rejection: sensitive paths, whatever the precheck mode -----------------------------------


SENSITIVE = {
    "modify .env": "--- a/.env\n+++ b/.env\n@@ -1 +1 @@\n-TOKEN=secret\n+TOKEN=x\n",
    "nested .env.local": "--- a/sub/.env.local\n+++ b/sub/.env.local\n@@ -1 +1 @@\n-DB=secret\n"
                         "+DB=x\n",
    "create .env.prod": "--- /dev/null\n+++ b/deploy/.env.prod\n@@ -0,0 +1 @@\n+K=V\n",
    "via ../": "--- a/src/../.env\n+++ b/src/../.env\n@@ -1 +1 @@\n-TOKEN=secret\n+TOKEN=x\n",
    "rename source": "diff --git a/.env b/env.txt\nsimilarity index 100%\nrename from .env\n"
                     "rename to env.txt\n",
    "rename target": "diff --git a/old.txt b/.env.bak\nsimilarity index 100%\n"
                     "rename from old.txt\nrename to .env.bak\n",
    "delete": "--- a/.env\n+++ /dev/null\n@@ -1 +0,0 @@\n-TOKEN=secret\n",
}


@pytest.mark.parametrize("mode", ["ask", "block", "off"])
@pytest.mark.parametrize("name", sorted(SENSITIVE))
def test_sensitive_targets_reject_the_whole_patch(ws: Path, name: str, mode: str) -> None:
    diff = MODIFY + SENSITIVE[name]  # a harmless first section: it must not be applied either
    before = snapshot(ws)
    plan = plan_for(ws, config=f'sensitive_path_precheck_mode = "{mode}"\n')
    with pytest.raises(PatchDenied, match="sensitive path") as exc:
        patch_workspace(diff, plan)
    assert exc.value.sensitive
    assert snapshot(ws) == before


def test_symlink_to_sensitive_file_is_rejected(ws: Path) -> None:
    os.symlink(".env", ws / "innocent")
    before = snapshot(ws)
    diff = "--- a/innocent\n+++ b/innocent\n@@ -1 +1 @@\n-TOKEN=secret\n+TOKEN=x\n"
    with pytest.raises(PatchDenied) as exc:
        patch_workspace(diff, plan_for(ws))
    assert exc.value.sensitive
    assert snapshot(ws) == before


def test_hard_link_to_sensitive_file_is_rejected(ws: Path) -> None:
    os.link(ws / ".env", ws / "notes.txt")
    before = snapshot(ws)
    diff = "--- a/notes.txt\n+++ b/notes.txt\n@@ -1 +1 @@\n-TOKEN=guess\n+TOKEN=x\n"
    with pytest.raises(PatchDenied, match="hard link") as exc:
        patch_workspace(diff, plan_for(ws))
    assert exc.value.sensitive
    assert snapshot(ws) == before


@pytest.mark.parametrize("diff", [
    "--- a/../escape.txt\n+++ b/../escape.txt\n@@ -0,0 +1 @@\n+x\n",
    "--- /dev/null\n+++ /tmp/sandboxtui-escape.txt\n@@ -0,0 +1 @@\n+x\n",
    "--- /dev/null\n+++ b/sub/../../escape.txt\n@@ -0,0 +1 @@\n+x\n",
], ids=["dotdot", "absolute", "nested-dotdot"])
def test_paths_outside_the_workspace_are_rejected(ws: Path, diff: str) -> None:
    plan = plan_for(ws)
    before = snapshot(ws.parent)
    with pytest.raises(PatchDenied, match="outside the workspace") as exc:
        patch_workspace(diff, plan)
    assert not exc.value.sensitive
    assert snapshot(ws.parent) == before
    assert not os.path.exists("/tmp/sandboxtui-escape.txt")


def test_symlinked_directory_escaping_the_workspace_is_rejected(ws: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, ws / "out")
    with pytest.raises(PatchDenied, match="through a symlink"):
        patch_workspace("--- /dev/null\n+++ b/out/x.txt\n@@ -0,0 +1 @@\n+x\n", plan_for(ws))
    assert os.listdir(outside) == []


def test_read_only_paths_per_plan_are_rejected(ws: Path) -> None:
    diff = "--- a/.codex/config.toml\n+++ b/.codex/config.toml\n@@ -1 +1 @@\n-x = 1\n+x = 2\n"
    with pytest.raises(PatchDenied, match="not writable in the sandbox"):
        patch_workspace(diff, plan_for(ws))
    assert (ws / ".codex" / "config.toml").read_text() == "x = 1\n"
    with pytest.raises(PatchDenied, match="not writable"):
        patch_workspace(MODIFY, build_plan(resolve(config_path=None, sandbox_mode="read-only",
                                                   env={}), str(ws), {}))


# --- atomicity --------------------------------------------------------------------------------


def test_a_mismatching_hunk_writes_nothing(ws: Path) -> None:
    diff = MODIFY + "--- a/README.md\n+++ b/README.md\n@@ -3 +3 @@\n-not the text\n+x\n"
    before = snapshot(ws)
    with pytest.raises(PatchConflict, match="does not match"):
        patch_workspace(diff, plan_for(ws))
    assert snapshot(ws) == before


def test_creating_an_existing_file_writes_nothing(ws: Path) -> None:
    diff = MODIFY + "--- /dev/null\n+++ b/README.md\n@@ -0,0 +1 @@\n+x\n"
    before = snapshot(ws)
    with pytest.raises(PatchConflict, match="already exists"):
        patch_workspace(diff, plan_for(ws))
    assert snapshot(ws) == before


def test_a_failing_rename_rolls_back_every_file(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The commit phase fails half-way (the disk refuses the last rename): all is restored."""
    before = snapshot(ws)
    real_replace = os.replace
    calls: list[str] = []

    def flaky_replace(src: str, dst: str, **kwargs: int) -> None:
        calls.append(dst)
        if str(dst).endswith("NEWREADME.md"):
            raise OSError(28, "No space left on device")
        real_replace(src, dst, **kwargs)

    monkeypatch.setattr(patch_mod.os, "replace", flaky_replace)
    with pytest.raises(PatchConflict, match="No space left"):
        patch_workspace(MODIFY + CREATE_DELETE_RENAME, plan_for(ws))
    monkeypatch.undo()
    assert any(c.endswith("app.py") for c in calls)  # something was in place, then undone
    assert snapshot(ws) == before


# --- malformed input --------------------------------------------------------------------------


@pytest.mark.parametrize(("diff", "message"), [
    ("", "no file changes found"),
    ("just some text\n", "no file changes found"),
    ("@@ -1 +1 @@\n-a\n+b\n", "hunk outside of a file section"),
    ("--- a/x\n+++ b/x\n@@ -1,2 +1,2 @@\n-a\n+b\n", "hunk ends early"),
    ("--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n+c\n", "unexpected line after a hunk"),
    ("--- a/x\n+++ b/x\n@@ -one +1 @@\n-a\n+b\n", "bad hunk header"),
    ("--- a/x\n+++ b/x\n@@ -1,2 +1 @@\n-a\n?b\n", "unexpected line inside a hunk"),
    ("--- a/x\n+++ b/x\n", "without hunks"),
    ("diff --git a/x b/y\ncopy from x\ncopy to y\n", "copies are not supported"),
    ("diff --git a/x b/x\nGIT binary patch\nliteral 1\n", "binary patches"),
    ("diff --git a/x b/x\n--- a/x\n+++ b/.env\n@@ -1 +1 @@\n-a\n+b\n", "name other files"),
    ("diff --git x y\n", "without a/ and b/ paths"),
    ('--- "a/unterminated\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n', "unterminated quoted path"),
])
def test_malformed_diffs(diff: str, message: str) -> None:
    with pytest.raises(PatchError, match=message):
        parse_diff(diff)


def test_quoted_git_paths(ws: Path) -> None:
    (ws / "sp ace\tx.txt").write_text("a\n")
    diff = ('diff --git "a/sp ace\\tx.txt" "b/sp ace\\tx.txt"\n--- "a/sp ace\\tx.txt"\n'
            '+++ "b/sp ace\\tx.txt"\n@@ -1 +1 @@\n-a\n+b\n')
    patch_workspace(diff, plan_for(ws))
    assert (ws / "sp ace\tx.txt").read_text() == "b\n"


# --- the command ------------------------------------------------------------------------------


def run_cli(ws: Path, diff: str, capsys: pytest.CaptureFixture[str],
            *extra: str) -> tuple[int, str, str]:
    path = ws.parent / "change.diff"
    path.write_text(diff)
    cfg = ws.parent / "config.toml"
    cfg.touch()
    code = main(["patch", str(path), "--cwd", str(ws), "--config", str(cfg), *extra])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_exit_codes(ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = snapshot(ws)
    code, _, err = run_cli(ws, "garbage\n", capsys)
    assert code == 2 and "malformed patch" in err
    code, _, err = run_cli(ws, MODIFY + SENSITIVE["via ../"], capsys, "-c",
                           'sensitive_path_precheck_mode="off"')
    assert code == 3 and "sensitive path" in err and "nothing written" in err
    code, _, err = run_cli(ws, "--- a/../x\n+++ b/../x\n@@ -0,0 +1 @@\n+x\n", capsys)
    assert code == 3 and "outside the workspace" in err
    code, _, err = run_cli(ws, "--- a/README.md\n+++ b/README.md\n@@ -1 +1 @@\n-no\n+x\n",
                           capsys)
    assert code == 1 and "does not apply" in err
    code, _, err = run_cli(ws, "", capsys, "--cwd", str(ws / "missing"))
    assert code == 2
    assert snapshot(ws) == before
    code, out, _ = run_cli(ws, MODIFY, capsys)
    assert code == 0 and out == "wrote src/app.py\n"


def test_cli_unreadable_diff(ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["patch", str(ws / "nope.diff"), "--cwd", str(ws)])
    assert code == 2 and "cannot read" in capsys.readouterr().err
