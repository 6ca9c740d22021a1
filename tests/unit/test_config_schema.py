"""The JSON Schema of the config file (core/config_schema.py): generated from the declarations,
shipped in the package, accepting the example configs and refusing what the loader refuses."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from sandboxtui.core.config import ConfigError, resolve
from sandboxtui.core.config_schema import SCHEMA_FILE, config_schema, schema_text
from sandboxtui.core.policy import SETTINGS, Policy
from sandboxtui.demo import create_demo

EXAMPLE = Path(__file__).parents[2] / "docs" / "config.example.toml"


def validator() -> jsonschema.Draft202012Validator:
    schema = config_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def errors(document: dict[str, Any]) -> list[str]:
    return [e.message for e in validator().iter_errors(document)]


def test_the_package_ships_the_generated_schema_and_prints_it() -> None:
    shipped = files("sandboxtui").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    assert shipped == schema_text(), "regenerate: sandboxtui --print-schema > " \
        "src/sandboxtui/config.schema.json"
    printed = subprocess.run([sys.executable, "-m", "sandboxtui", "--print-schema"],
                             capture_output=True, text=True, check=True).stdout
    assert printed == shipped


def test_the_example_configs_are_valid(tmp_path: Path) -> None:
    _, demo = create_demo(str(tmp_path))
    for path in (EXAMPLE, demo):
        text = path.read_text()
        assert errors(tomllib.loads(text)) == [], path
        resolve(config_path=path)  # and the loader takes it too
    assert EXAMPLE.read_text().startswith("#:schema ../src/sandboxtui/config.schema.json\n")


def test_every_declared_key_is_in_the_schema_with_its_default() -> None:
    document: dict[str, Any] = {}
    for s in SETTINGS:
        table = document
        for part in s.key[:-1]:
            table = table.setdefault(part, {})
        value = s.value_in(Policy())
        if value is not None:
            table[s.key[-1]] = value
    assert errors(document) == []
    assert errors({"profiles": {"p": document}}) == []


@pytest.mark.parametrize(("toml", "rejected"), [
    ("[sandbox_workspace_write]\nnetwork_acess = true\n", "network_acess"),  # a typo
    ("sandbox_mod = 'read-only'\n", "sandbox_mod"),
    ("[profiles.p]\nsensitive_path = []\n", "sensitive_path"),  # a typo in a profile
    ("sandbox_mode = 'read-write'\n", "read-write"),
    ("[sandbox_workspace_write]\nnetwork_access = 'yes'\n", "yes"),
    ("[limits]\nopen_files = -1\n", "-1"),
    ("[read_access]\nmode = 'partial'\n", "partial"),
    ("[permissions.p.filesystem]\n'/x' = 'rw'\n", "rw"),
    ("[permissions.p.files]\n'/x' = 'read'\n", "files"),
])
def test_what_the_loader_refuses_the_schema_refuses(tmp_path: Path, toml: str,
                                                    rejected: str) -> None:
    found = errors(tomllib.loads(toml))
    assert found and any(rejected in e for e in found), found
    config = tmp_path / "config.toml"
    config.write_text(toml)
    with pytest.raises(ConfigError):
        resolve(config_path=config, profile="p" if "profiles" in toml else None)


def test_the_schema_is_json_an_editor_can_fetch() -> None:
    schema = json.loads(schema_text())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["additionalProperties"] is False
    network = schema["properties"]["sandbox_workspace_write"]["properties"]["network_access"]
    assert network["enum"] == [False, True, "proxy"] and network["default"] is False
