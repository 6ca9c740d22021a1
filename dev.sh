#!/usr/bin/env bash
# One entry point for people and CI:
#   ./dev.sh demo   set everything up and open the TUI on the built-in demo workspace
#   ./dev.sh test   set everything up and run the whole test suite
set -euo pipefail
cd "$(dirname "$0")"
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
    .venv/bin/pip install --quiet --upgrade pip
    .venv/bin/pip install --quiet -e '.[test]'
    touch .venv/.installed
fi
case "${1:-}" in
    demo) shift; exec .venv/bin/sandboxtui demo "$@" ;;
    test)
        shift
        .venv/bin/ruff check src tests bench
        exec .venv/bin/python -m pytest "$@" ;;
    *) echo "usage: ./dev.sh demo | ./dev.sh test [pytest args]" >&2; exit 2 ;;
esac
