#!/usr/bin/env bash
# One entry point for people and CI:
#   ./dev.sh demo   set everything up and open the TUI on the built-in demo workspace
#   ./dev.sh test   set everything up and run the whole test suite
set -euo pipefail
cd "$(dirname "$0")"
# System packages (as root, on a fresh Debian/Ubuntu): bwrap, libseccomp, the tracer, the
# tools the workload and end-to-end tests run, the shells the completion tests load, and what
# `python3 -m venv` needs.
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    need=()
    for pkg in bubblewrap libseccomp2 strace python3-venv tmux git util-linux ripgrep curl \
               make gcc gnupg zsh fish; do
        dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
    done
    if [ ${#need[@]} -gt 0 ]; then
        echo "dev.sh: installing system packages: ${need[*]}" >&2
        DEBIAN_FRONTEND=noninteractive apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}"
    fi
fi
if [ ! -x .venv/bin/python ]; then
    # Prefer the system interpreter: the unprivileged enforcement tests run the same venv as
    # `nobody`, who cannot reach an interpreter installed under a private home directory.
    if [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import sys, venv; assert sys.version_info >= (3, 11)' 2>/dev/null; then
        /usr/bin/python3 -m venv .venv
    else
        python3 -m venv .venv
    fi
fi
if [ ! -f .venv/.installed ] || [ pyproject.toml -nt .venv/.installed ]; then
    echo "dev.sh: installing sandboxtui and its dependencies into .venv (first run: about" \
         "half a minute)..." >&2
    .venv/bin/pip install --quiet --upgrade pip
    .venv/bin/pip install --quiet --progress-bar on -e '.[test]'
    touch .venv/.installed
    echo "dev.sh: installed." >&2
fi
case "${1:-}" in
    demo) shift; exec .venv/bin/sandboxtui demo "$@" ;;
    test)
        shift
        .venv/bin/ruff check src tests bench
        exec .venv/bin/python -m pytest "$@" ;;
    *) echo "usage: ./dev.sh demo | ./dev.sh test [pytest args]" >&2; exit 2 ;;
esac
