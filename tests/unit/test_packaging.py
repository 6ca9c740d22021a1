"""The package as users install it (`pipx install .`, `uv tool install .`, `pip install .`): a
wheel built from the checkout holds the console script, `python -m sandboxtui` and the config
schema, and works from a fresh virtual environment."""

from __future__ import annotations

import subprocess
import sys
import venv
import zipfile
from pathlib import Path

from sandboxtui.core.config_schema import SCHEMA_FILE, schema_text

CHECKOUT = Path(__file__).parents[2]


def test_a_fresh_venv_installs_the_checkout_and_runs_it(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w",
                    str(wheels), str(CHECKOUT)], check=True, capture_output=True)
    (wheel,) = wheels.glob("sandboxtui-*.whl")
    with zipfile.ZipFile(wheel) as whl:
        names = whl.namelist()
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        assert "sandboxtui = sandboxtui.cli:entry" in whl.read(entry_points).decode()
    assert f"sandboxtui/{SCHEMA_FILE}" in names and "sandboxtui/__main__.py" in names

    env = tmp_path / "venv"
    venv.create(env, with_pip=True)
    # without its dependencies: what runs here needs none (the version, the generated files)
    subprocess.run([env / "bin" / "pip", "install", "--quiet", "--no-deps", str(wheel)],
                   check=True, capture_output=True)
    version = subprocess.run([env / "bin" / "sandboxtui", "--version"], capture_output=True,
                             text=True, check=True)
    assert version.stdout.startswith("sandboxtui ")
    for argv in ([env / "bin" / "sandboxtui"], [env / "bin" / "python", "-m", "sandboxtui"]):
        schema = subprocess.run([*argv, "--print-schema"], capture_output=True, text=True,
                                check=True, cwd=tmp_path)
        assert schema.stdout == schema_text()
    completion = subprocess.run([env / "bin" / "sandboxtui", "--print-completion", "bash"],
                                capture_output=True, text=True, check=True)
    assert "complete -o default -F _sandboxtui sandboxtui" in completion.stdout
