"""Shell completion generated from the one argparse definition (`sandboxtui --print-completion
SHELL`): every subcommand and option is in each script, and the shells complete with them."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sandboxtui.cli import build_parser

SHELLS = ("bash", "zsh", "fish")


def script(shell: str) -> str:
    return subprocess.run([sys.executable, "-m", "sandboxtui", "--print-completion", shell],
                          capture_output=True, text=True, check=True).stdout


def declared() -> dict[str, list[str]]:
    """Each subcommand's option flags ("" the top level), read from the parser itself."""
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    out = {"": [f for a in parser._actions for f in a.option_strings]}
    for name, p in sub.choices.items():
        out[name] = [f for a in p._actions for f in a.option_strings]
    return out


def need(shell: str) -> None:
    if shutil.which(shell) is None:
        pytest.skip(f"{shell} is not installed (as root, ./dev.sh test installs it)")


@pytest.mark.parametrize("shell", SHELLS)
def test_every_subcommand_and_option_is_in_the_script(shell: str) -> None:
    text = script(shell)
    for command, flags in declared().items():
        assert command in text
        for flag in flags:
            word = flag.lstrip("-") if shell == "fish" else flag  # fish: -l NAME, -s C
            assert word in text, (shell, command, flag)


def bash_complete(*words: str) -> list[str]:
    """What bash's completion function offers for the command line `words` (the last one
    being completed), with the script loaded as a user would: source <(...)."""
    line = " ".join(f"'{w}'" for w in ("sandboxtui", *words))
    program = (f"source <({sys.executable} -m sandboxtui --print-completion bash); "
               f"COMP_WORDS=({line}); COMP_CWORD={len(words)}; _sandboxtui; "
               'echo "${COMPREPLY[@]}"')
    done = subprocess.run(["bash", "-c", program], capture_output=True, text=True, check=True)
    return done.stdout.split()


def test_bash_completes_subcommands_options_and_choices() -> None:
    options = declared()
    assert bash_complete("") == [*options[""], *[c for c in options if c]]
    assert bash_complete("ve") == ["verify"]
    for command in (c for c in options if c):
        assert bash_complete(command, "-") == options[command], command
    assert bash_complete("run", "--cwd", "/tmp", "--d") == ["--dry-run"]
    assert bash_complete("verify", "--pipeline", "") == ["legacy", "bwrap"]
    assert bash_complete("--print-completion", "") == list(SHELLS)
    assert bash_complete("run", "--", "sandboxtui", "--") == []  # the command's own words


def test_zsh_loads_and_registers_it(tmp_path: Path) -> None:
    need("zsh")
    # compinit replaces its dump file: a scratch one (never /dev/null)
    program = (f"autoload -U compinit && compinit -u -d {tmp_path}/zcompdump && "
               f"source <({sys.executable} -m sandboxtui --print-completion zsh) && "
               "print -r -- ${_comps[sandboxtui]}")
    done = subprocess.run(["zsh", "-f", "-c", program], capture_output=True, text=True)
    assert done.stdout.strip() == "_sandboxtui", done.stderr


def test_fish_completes_with_it() -> None:
    need("fish")

    def fish_complete(line: str) -> list[str]:
        program = (f"{sys.executable} -m sandboxtui --print-completion fish | source; "
                   f"complete -C '{line}'")
        done = subprocess.run(["fish", "--no-config", "-c", program], capture_output=True,
                              text=True, check=True)
        return [row.split("\t")[0] for row in done.stdout.splitlines()]

    assert fish_complete("sandboxtui ver") == ["verify"]
    assert fish_complete("sandboxtui verify --pipeline ") == ["bwrap", "legacy"]
    assert "--dry-run" in fish_complete("sandboxtui run --")


def test_the_top_level_options_take_no_subcommands_option() -> None:
    """`--print-completion` and `--print-schema` at the top must not make `demo --print` (or
    any subcommand's option) an ambiguous abbreviation of theirs."""
    args = build_parser().parse_args(["demo", "--print"])
    assert args.command == "demo" and args.print is True
