"""The JSON Schema of sandboxtui's config file, generated from the config declaration.

Every key comes from `policy.SETTINGS`: its TOML shape from the type of the field that carries
it and the values its `show` gives (so `network_access` is `true`, `false` or `"proxy"`, and
`read_access.mode` `"full"` or `"restricted"`), its description and default from the same
declaration. Editors that read `#:schema` lines (Taplo, Even Better TOML) validate a config with
it; the package ships the result as `config.schema.json` (tests keep the two equal).
"""

from __future__ import annotations

import json
import types
import typing
from enum import Enum
from typing import Any

from sandboxtui.core.policy import SETTINGS, Policy, Setting

SCHEMA_FILE = "config.schema.json"  # beside the package's __init__.py
ACCESS_WORDS = ["read", "write", "none"]  # the values of a [permissions.NAME.filesystem] entry


def _field_type(s: Setting) -> Any:
    """The declared type of the field that carries `s` (`int | None`, `tuple[str, ...]`)."""
    owner: Any = Policy
    for name in s.attr[:-1]:
        owner = typing.get_type_hints(owner)[name]
    return typing.get_type_hints(owner)[s.attr[-1]]


def _value_schema(s: Setting) -> dict[str, Any]:
    kind = _field_type(s)
    if isinstance(kind, types.UnionType):  # `X | None`: None is "not set", never written
        kind = next(k for k in typing.get_args(kind) if k is not type(None))
    if kind is bool or isinstance(kind, type) and issubclass(kind, Enum):
        values = [s.show(v) for v in ((False, True) if kind is bool else kind)]
        if all(isinstance(v, bool) for v in values):
            return {"type": "boolean"}
        return {"enum": values}
    if kind is str:
        return {"type": "string"}
    if kind is int:
        return {"type": "integer", "minimum": 0}  # limits: the only integers, never negative
    if typing.get_origin(kind) is tuple and typing.get_args(kind) == (str, ...):
        return {"type": "array", "items": {"type": "string", "minLength": 1}}
    raise TypeError(f"{s.name}: no JSON Schema for a field of type {kind}")


def _table(properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "additionalProperties": False}


def config_schema() -> dict[str, Any]:
    """The schema: every declared key, `[permissions.NAME.filesystem]` and `[profiles.NAME]`
    (any key but `profiles`, as the config layer reads them)."""
    defaults = Policy()
    layer: dict[str, Any] = {}
    for s in SETTINGS:
        tables = layer
        for part in s.key[:-1]:
            tables = tables.setdefault(part, _table({}))["properties"]
        value = {"description": s.doc, **_value_schema(s)}
        if (default := s.value_in(defaults)) is not None:
            value["default"] = default
        tables[s.key[-1]] = value
    filesystem = {"type": "object", "additionalProperties": {"enum": ACCESS_WORDS},
                  "description": 'PATH = "read" | "write" | "none": an absolute or ~ path, a '
                                 "special path (:root, :minimal, :workspace_roots, :tmpdir, "
                                 ":slash_tmp) or a glob (deny only)"}
    layer["permissions"] = {"type": "object",
                            "additionalProperties": _table({"filesystem": filesystem})}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "sandboxtui config.toml",
        "description": "sandboxtui's own config file ($XDG_CONFIG_HOME/sandboxtui/config.toml)",
        **_table({**layer, "profiles": {
            "type": "object", "additionalProperties": {"$ref": "#/$defs/layer"},
            "description": "[profiles.NAME]: any of the keys above, applied with --profile "
                           "NAME"}}),
        "$defs": {"layer": _table(layer)},
    }


def schema_text() -> str:
    """The schema as the package ships it (`config.schema.json`) and `--print-schema` prints."""
    return json.dumps(config_schema(), indent=2) + "\n"
