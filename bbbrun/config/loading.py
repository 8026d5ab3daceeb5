"""Reading configs: YAML files, `key=value` overrides, and writing a config back as YAML."""

from __future__ import annotations

import dataclasses
from enum import Enum
from pathlib import Path
from typing import Any

import yaml

from bbbrun.config.safe_yaml import YamlRefused, load_yaml
from bbbrun.config.schema import Config
from bbbrun.config.validate import config_from_dict, section_type, unknown_key_message
from bbbrun.errors import ConfigError
from bbbrun.files import read_bounded

MAX_TEXT_BYTES = 4 * 2**20  # a config or sweep file


def load_config(path: Path, overrides: list[str] | None = None) -> Config:
    """Read a YAML config, apply `key=value` overrides, validate everything."""
    raw = read_yaml_mapping(path)
    for item in overrides or []:
        key, value = parse_override(item)
        set_dotted(raw, key, value)
    return config_from_dict(raw)


def read_yaml_mapping(path: Path) -> dict[str, Any]:
    raw = parse_yaml(read_text_file(path, "config"), path)
    if not isinstance(raw, dict):
        kind = "empty" if raw is None else f"a {type(raw).__name__}"
        raise ConfigError(f"{path}: a config must be a YAML mapping of keys, got {kind}")
    return raw


def parse_yaml(text: str, path: Path) -> Any:
    """The YAML text of `path` as plain data; syntax errors and hostile text as one ConfigError line."""
    try:
        return load_yaml(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or "invalid YAML"
        kind = "refused" if isinstance(err, (YamlRefused, yaml.constructor.ConstructorError)) else "YAML syntax error"
        raise ConfigError(f"{path}: {kind}{where}: {problem}") from None


def read_text_file(path: Path, what: str) -> str:
    """A small UTF-8 text file (a byte-order mark is skipped); special, huge, binary or other files refused."""
    data = read_bounded(path, what, MAX_TEXT_BYTES, ConfigError)
    if b"\x00" in data:
        raise ConfigError(f"{path} is a binary file; expected a YAML {what} file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not UTF-8 text; expected a YAML {what} file") from None


def parse_override(item: str) -> tuple[str, Any]:
    """`a.b=value` -> ("a.b", value parsed as YAML)."""
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep:
        raise ConfigError(f"override {item!r} has no '=': write key=value, e.g. train.epochs=100")
    if not key:
        raise ConfigError(f"override {item!r} has no key: write key=value, e.g. train.epochs=100")
    try:
        value = load_yaml(text) if text.strip() else None
    except (YamlRefused, yaml.constructor.ConstructorError) as err:
        raise ConfigError(f"override {key!r}: {err.problem}") from None
    except yaml.YAMLError:
        value = text
    return key, value


def set_dotted(raw: dict[str, Any], key: str, value: Any) -> None:
    """Set `a.b.c` in a nested dict, checking every part names a real field."""
    parts = key.split(".")
    node: dict[str, Any] = raw
    cls: type = Config
    for depth, part in enumerate(parts):
        fields = {f.name: f for f in dataclasses.fields(cls)}
        if part not in fields:
            prefix = ".".join(parts[:depth])
            raise ConfigError(unknown_key_message(prefix, part, list(fields), source="override"))
        if depth == len(parts) - 1:
            node[part] = value
            return
        sub = section_type(cls, part)
        if sub is None:
            raise ConfigError(f"override {key!r}: {'.'.join(parts[: depth + 1])} is not a section")
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node, cls = child, sub


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """The config as plain YAML-safe values (enums as strings, tuples as lists)."""

    def plain(value: Any) -> Any:
        if isinstance(value, Enum):
            return value.value
        if isinstance(value, tuple):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(dataclasses.asdict(cfg))


def dump_config(cfg: Config) -> str:
    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False)
