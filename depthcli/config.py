"""One dataclass config per job, resolved as preset < config file < command-line flags.

The resolved config is a plain dict (`config_to_dict`) saved in the run directory and inside every
checkpoint, so a checkpoint alone rebuilds its model. Config files are flat tables whose keys are the
dataclass fields: TOML (`tomllib`), JSON or YAML. Fields declared with `setting` carry their help text,
from which the command line draws its flags (`depthcli.cli.config_flags`).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import tomllib
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from depthcli.atomic import atomic_write_text
from depthcli.errors import DepthcliError

ConfigT = TypeVar("ConfigT")
# config.json's list of the commands that ran the run (depthcli.provenance records); not a config key, so
# reading a run's config.json back with --config skips it.
PROVENANCE_KEY = "provenance"


def setting(
    default: Any,
    help: str,
    *,
    flag: bool = False,
    none: str | None = None,
    parse: Callable[[str], Any] | None = None,
    path: bool = False,
) -> Any:
    """A config field with its help text (one source for the dataclass, `--help` and the docs).

    `flag=True` gives the field a command-line flag of its own (every field can also be set with
    `--set key=value`); `none` says what a `None` default means; `parse` turns the flag's text into
    the value (e.g. `parse_size` for `640x192`); `path=True` marks a file or folder, stored absolute
    (`absolute_paths`) so that a run resumes from any working directory.
    """
    metadata = {"help": help, "flag": flag, "none": none, "parse": parse, "path": path}
    return dataclasses.field(default=default, metadata=metadata)


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a TOML / JSON / YAML config file into a dict; a missing or malformed file is a DepthcliError."""
    path = Path(path)
    if not path.is_file():
        raise DepthcliError(f"config file {path} does not exist; give an existing .toml, .json or .yaml file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".toml":
            with open(path, "rb") as handle:
                data = tomllib.load(handle)
        elif suffix == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
        elif suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        else:
            raise DepthcliError(f"config file {path}: unknown extension {suffix!r}; use .toml, .json or .yaml")
    except DepthcliError:
        raise
    except Exception as exc:  # parser errors of three libraries, all user-caused
        raise DepthcliError(f"config file {path} cannot be parsed: {exc}".replace("\n", " ")) from exc
    if not isinstance(data, dict):
        raise DepthcliError(f"config file {path} must hold a table of key = value pairs, not {type(data).__name__}")
    data.pop(PROVENANCE_KEY, None)
    return data


def build_config(
    config_class: type[ConfigT],
    preset: Mapping[str, Any] | None = None,
    config_file: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> ConfigT:
    """Dataclass `config_class` from its defaults, then `preset`, then `config_file`, then `overrides`.

    Each layer may only name fields of the dataclass; values are checked (and lists turned into
    tuples) against the field types, so a typo in a file or flag fails loudly and names its source.
    """
    values: dict[str, Any] = {}
    layers = [
        ("preset", preset or {}),
        (str(config_file), load_config_file(config_file) if config_file is not None else {}),
        ("command-line flags", overrides or {}),
    ]
    for source, layer in layers:
        values.update(_checked_layer(config_class, layer, source))
    return config_class(**values)


def absolute_paths(config: ConfigT) -> ConfigT:
    """`config` with every path field (`setting(..., path=True)`) made absolute against the working directory.

    A run stores its config (config.json, checkpoints); relative paths in it would only mean something
    in the directory the run was started from, and `--resume` elsewhere would not find its data.
    """
    changes = {
        field.name: str(Path(value).expanduser().resolve())
        for field in dataclasses.fields(config)
        if field.metadata.get("path") and isinstance(value := getattr(config, field.name), str) and value
    }
    return dataclasses.replace(config, **changes)


def config_to_dict(config: Any) -> dict[str, Any]:
    """The config as plain JSON/TOML-able data (tuples become lists), for run dirs and checkpoints."""
    return {field.name: _plain(getattr(config, field.name)) for field in dataclasses.fields(config)}


def config_from_dict(config_class: type[ConfigT], data: Mapping[str, Any], source: str) -> ConfigT:
    """Rebuild a config saved by `config_to_dict` (e.g. from a checkpoint); unknown keys name `source`."""
    return config_class(**_checked_layer(config_class, data, source))


def save_config(config: Any, path: str | Path, provenance: Sequence[Mapping[str, Any]] = ()) -> Path:
    """Write the resolved config as JSON (readable back with `--config`), atomically; `provenance`
    records, when given, go under PROVENANCE_KEY."""
    path = Path(path)
    data = config_to_dict(config) | ({PROVENANCE_KEY: [dict(record) for record in provenance]} if provenance else {})
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")
    return path


def _plain(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return [_plain(item) for item in value]
    if isinstance(value, Path):
        return str(value)
    return value


@functools.cache
def field_types(config_class: type) -> dict[str, Any]:
    """The resolved type annotation of every field of a config dataclass (resolved once per class)."""
    return typing.get_type_hints(config_class)


def _checked_layer(config_class: type, layer: Mapping[str, Any], source: str) -> dict[str, Any]:
    fields = {field.name: field for field in dataclasses.fields(config_class)}
    hints = field_types(config_class)
    checked = {}
    for key, value in layer.items():
        if key not in fields:
            raise DepthcliError(f"{source}: unknown config key {key!r}; known keys: {', '.join(sorted(fields))}")
        checked[key] = _coerce(value, hints[key], f"{source}: key {key!r}")
    return checked


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    """Check `value` against a (simple) type annotation, converting lists to tuples and ints to floats."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(annotation)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(value, option, where)
            except DepthcliError as exc:
                errors.append(exc)
        raise errors[0]
    if origin is tuple:
        args = typing.get_args(annotation)
        if not isinstance(value, (list, tuple)):
            raise DepthcliError(f"{where} must be a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(item, args[0], where) for item in value)
        if len(args) != len(value):
            raise DepthcliError(f"{where} must be a list of {len(args)} values, got {value!r}")
        return tuple(_coerce(item, arg, where) for item, arg in zip(value, args, strict=True))
    if origin is typing.Literal:
        allowed = typing.get_args(annotation)
        if value not in allowed:
            raise DepthcliError(f"{where} must be one of {', '.join(map(repr, allowed))}, got {value!r}")
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise DepthcliError(f"{where} must be a number, got {value!r}")
        return float(value)
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise DepthcliError(f"{where} must be an integer, got {value!r}")
        return value
    if annotation is bool:
        if not isinstance(value, bool):
            raise DepthcliError(f"{where} must be true or false, got {value!r}")
        return value
    if annotation is str:
        if not isinstance(value, str):
            raise DepthcliError(f"{where} must be a string, got {value!r}")
        return value
    return value
