"""Shell completion for bash, zsh and fish, generated from the one argparse definition
(`cli.build_parser()`): `sandboxtui --print-completion SHELL`. No option list is kept by hand:
a new subcommand or option completes as soon as it is declared.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass

PROG = "sandboxtui"


@dataclass(frozen=True)
class Option:
    flags: tuple[str, ...]  # "-c", "--config"
    help: str
    takes_value: bool
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Command:
    name: str  # "" for the top level (which is also `ui`: `sandboxtui --cwd DIR`)
    help: str
    options: tuple[Option, ...]
    command_line: bool = False  # takes `-- CMD ARGS`


def _short(text: str | None) -> str:
    """A one-line description any of the three shells can quote: no brackets, quotes,
    backslashes or colons, cut at the first sentence."""
    text = re.split(r"[;.:] ", text or "")[0]
    text = re.sub(r"[\[\]'\"`\\:$]", "", text)
    return " ".join(text.split())[:70]


def _options(parser: argparse.ArgumentParser) -> tuple[Option, ...]:
    return tuple(
        Option(tuple(a.option_strings), _short(a.help), a.nargs != 0,
               tuple(str(c) for c in a.choices or ()))
        for a in parser._actions if a.option_strings)


def commands(parser: argparse.ArgumentParser) -> tuple[Command, ...]:
    """The top level, then each subcommand, with their options, as the parser declares them."""
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {c.dest: c.help for c in sub._choices_actions}
    subs = tuple(
        Command(name, _short(helps.get(name)), _options(p),
                any(a.nargs == argparse.REMAINDER for a in p._actions))
        for name, p in sub.choices.items())
    return (Command("", "", _options(parser)), *subs)


def _value_options(cmds: tuple[Command, ...]) -> dict[str, Option]:
    """Every flag that takes a value; a flag takes one in every command or in none."""
    found: dict[str, Option] = {}
    for opt in (o for c in cmds for o in c.options):
        for flag in opt.flags:
            if found.get(flag, opt).takes_value != opt.takes_value:
                raise ValueError(f"{flag} takes a value in one command and not in another")
            if opt.takes_value:
                found[flag] = opt
    return found


def bash(cmds: tuple[Command, ...]) -> str:
    top, subs = cmds[0], cmds[1:]
    names = " ".join(c.name for c in subs)
    values = _value_options(cmds)
    lines = [
        f"# bash completion for {PROG} (generated: {PROG} --print-completion bash)",
        f"_{PROG}() {{",
        '    local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}"',
        '    local cmd="" word i opts',
        "    for ((i = 1; i < COMP_CWORD; i++)); do",
        '        word="${COMP_WORDS[i]}"',
        '        if [ "$word" = "--" ] && [ -n "$cmd" ]; then',
        "            COMPREPLY=() && return 0  # the sandboxed command: default completion",
        "        fi",
        f'        case " {names} " in *" $word "*) [ -z "$cmd" ] && cmd="$word" ;; esac',
        "    done",
        '    case "$prev" in']
    for flag, opt in sorted(values.items()):
        if opt.choices:
            lines.append(f'        {flag}) COMPREPLY=($(compgen -W "{" ".join(opt.choices)}" '
                         '-- "$cur")); return 0 ;;')
    free = "|".join(sorted(f for f, o in values.items() if not o.choices))
    lines += [f"        {free}) return 0 ;;  # a value: files, the default",
              "    esac", '    case "$cmd" in']
    for c in subs:
        flags = " ".join(f for o in c.options for f in o.flags)
        lines.append(f'        {c.name}) opts="{flags}" ;;')
    everything = " ".join([*(f for o in top.options for f in o.flags), names])
    lines += [f'        *) opts="{everything}" ;;', "    esac",
              '    COMPREPLY=($(compgen -W "$opts" -- "$cur"))', "}",
              f"complete -o default -F _{PROG} {PROG}", ""]
    return "\n".join(lines)


def _zsh_spec(opt: Option) -> str:
    names = "{" + ",".join(opt.flags) + "}" if len(opt.flags) > 1 else opt.flags[0]
    exclusive = f"({' '.join(opt.flags)})" if len(opt.flags) > 1 else ""
    repeat = "*" if opt.flags == ("-c",) else ""
    value = ""
    if opt.takes_value:
        value = f":value:({' '.join(opt.choices)})" if opt.choices else ":value:_default"
    return f"'{repeat}{exclusive}{names}[{opt.help}]{value}'"


def zsh(cmds: tuple[Command, ...]) -> str:
    top, subs = cmds[0], cmds[1:]
    lines = [f"#compdef {PROG}",
             f"# zsh completion for {PROG} (generated: {PROG} --print-completion zsh)",
             f"_{PROG}() {{", '    local curcontext="$curcontext" state line',
             "    local -a commands",
             "    commands=(" + " ".join(f"'{c.name}:{c.help}'" for c in subs) + ")",
             "    _arguments -C \\"]
    lines += [f"        {_zsh_spec(o)} \\" for o in top.options]
    lines += ["        '1: :->command' '*:: :->args'", "    case $state in",
              "        command) _describe command commands ;;",
              "        args)", "            case $line[1] in"]
    for c in subs:
        specs = " ".join(_zsh_spec(o) for o in c.options)
        rest = " '*:: :_normal'" if c.command_line else ""
        lines.append(f"                {c.name}) _arguments {specs}{rest} ;;")
    # an fpath file (#compdef) is the function's body; `source <(...)` registers it
    lines += ["            esac ;;", "    esac", "}",
              f'if [ "$funcstack[1]" = "_{PROG}" ]; then _{PROG} "$@"; '
              f"else compdef _{PROG} {PROG}; fi", ""]
    return "\n".join(lines)


def fish(cmds: tuple[Command, ...]) -> str:
    top, subs = cmds[0], cmds[1:]
    names = " ".join(c.name for c in subs)
    lines = [f"# fish completion for {PROG} (generated: {PROG} --print-completion fish)",
             f"complete -c {PROG} -f"]

    def option(opt: Option, condition: str) -> str:
        parts = [f"complete -c {PROG} -n '{condition}'"]
        for flag in opt.flags:
            parts.append(f"-l {flag[2:]}" if flag.startswith("--") else f"-s {flag[1:]}")
        if opt.takes_value:
            parts.append(f"-x -a '{' '.join(opt.choices)}'" if opt.choices else "-r -F")
        parts.append(f"-d '{opt.help}'")
        return " ".join(parts)

    lines += [option(o, f"not __fish_seen_subcommand_from {names}") for o in top.options]
    lines += [f"complete -c {PROG} -n 'not __fish_seen_subcommand_from {names}' -a {c.name} "
              f"-d '{c.help}'" for c in subs]
    lines += [option(o, f"__fish_seen_subcommand_from {c.name}") for c in subs
              for o in c.options]
    return "\n".join(lines) + "\n"


GENERATORS = {"bash": bash, "zsh": zsh, "fish": fish}


def completion(parser: argparse.ArgumentParser, shell: str) -> str:
    """The completion script for `shell`, from `parser` (the CLI's own)."""
    return GENERATORS[shell](commands(parser))
