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
import math
import tomllib
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from depthcli.atomic import atomic_write_text
from depthcli.errors import DepthcliError
from depthcli.paths import check_input_file
from depthcli.sizes import check_size

ConfigT = TypeVar("ConfigT")
COMMAND_LINE = "command-line flags"  # the source name of the values given as flags
# config.json's list of the commands that ran the run (depthcli.provenance records); not a config key, so
# reading a run's config.json back with --config skips it.
PROVENANCE_KEY = "provenance"


@dataclasses.dataclass(frozen=True)
class Rule:
    """What a config value must be beyond its type (every float, alone or in a list, must be finite).

    Bounds apply to the value or to each item of a list: `low`/`high` (inclusive unless `low_open` /
    `high_open`). `ordered`: a pair must be (low, high) with low <= high. `below`: another key whose
    value this one must stay under (min_depth < max_depth). `size`: a (width, height) a depth net
    accepts (`depthcli.sizes.check_size`). `None` values (unset optional keys) are not checked.
    """

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    ordered: bool = False
    below: str | None = None
    size: bool = False

    def problem(self, value: Any) -> str | None:
        """What is wrong with `value` ("must be ..."), or None when it follows the rule."""
        items = value if isinstance(value, tuple) else (value,)
        numbers = [item for item in items if isinstance(item, (int, float)) and not isinstance(item, bool)]
        inside = all(self._within(item) for item in numbers)
        in_order = not self.ordered or len(numbers) != 2 or numbers[0] <= numbers[1]
        return None if inside and in_order else f"must be {self.text(value)}"

    def _within(self, number: float) -> bool:
        if isinstance(number, float) and not math.isfinite(number):
            return False
        if self.low is not None and (number <= self.low if self.low_open else number < self.low):
            return False
        return self.high is None or (number < self.high if self.high_open else number <= self.high)

    def text(self, value: Any) -> str:
        """The rule in words, e.g. "a finite number > 0", "two integers >= 0, the first <= the second"."""
        many = isinstance(value, tuple)
        sample = value[0] if many and value else value
        whole = isinstance(sample, int) and not isinstance(sample, bool)
        if many:
            noun = ("two " if self.ordered else "") + ("integers" if whole else "finite numbers")
        else:
            noun = "an integer" if whole else "a finite number"
        low, high = _number(self.low), _number(self.high)
        if self.low is not None and self.high is not None:
            bounds = f" in {'(' if self.low_open else '['}{low}, {high}{')' if self.high_open else ']'}"
        elif self.low is not None:
            bounds = f" {'>' if self.low_open else '>='} {low}"
        elif self.high is not None:
            bounds = f" {'<' if self.high_open else '<='} {high}"
        else:
            bounds = ""
        return noun + bounds + (", the first <= the second" if self.ordered else "")


def _number(value: float | None) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}" if value is not None else ""


FINITE = Rule()  # the rule of a field declared without one: numbers must be finite


def setting(
    default: Any,
    help: str,
    *,
    flag: bool = False,
    none: str | None = None,
    parse: Callable[[str], Any] | None = None,
    rule: Rule = FINITE,
    architecture: bool = False,
    path: bool = False,
) -> Any:
    """A config field with its help text and its rule (one source for the dataclass, `--help`, the docs
    and the checks every resolved config passes).

    `flag=True` gives the field a command-line flag of its own (every field can also be set with
    `--set key=value`); `none` says what a `None` default means; `parse` turns the flag's text into
    the value (e.g. `parse_size` for `640x192`); `rule` is what the value must be (`Rule`);
    `architecture=True` marks keys that shape the networks' parameters, which a resumed run cannot change;
    `path=True` marks a file or folder, stored absolute (`absolute_paths`) so that a run resumes from any
    working directory.
    """
    metadata = {"help": help, "flag": flag, "none": none, "parse": parse, "rule": rule}
    metadata |= {"architecture": architecture, "path": path}
    return dataclasses.field(default=default, metadata=metadata)


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a TOML / JSON / YAML config file into a dict; a missing or malformed file is a DepthcliError."""
    path = check_input_file(path, "config file", "give an existing .toml, .json or .yaml file")
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
    *,
    preset_source: str = "preset",
) -> ConfigT:
    """Dataclass `config_class` from its defaults, then `preset`, then `config_file`, then `overrides`.

    Each layer may only name fields of the dataclass; values are checked (and lists turned into
    tuples) against the field types, then every value against its field's `Rule`, so a typo or an
    impossible number in a file or flag fails loudly and names the key and its source
    (`preset_source` names the first layer, e.g. the checkpoint a resumed run's config comes from).
    """
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    layers = [
        (preset_source, preset or {}),
        (str(config_file), load_config_file(config_file) if config_file is not None else {}),
        (COMMAND_LINE, overrides or {}),
    ]
    for source, layer in layers:
        checked = _checked_layer(config_class, layer, source)
        values.update(checked)
        sources.update(dict.fromkeys(checked, source))
    check_rules(config_class, values, sources)
    return config_class(**values)


def absolute_paths(config: ConfigT) -> ConfigT:
    """`config` with every path field (`setting(..., path=True)`) made absolute against the working directory.

    A run stores its config (config.json, checkpoints); relative paths in it would only mean something
    in the directory the run was started from, and `--resume` elsewhere would not find its data.
    """
    changes = {name: str(Path(value).expanduser().resolve()) for name, value in _set_paths(config).items()}
    return dataclasses.replace(config, **changes)


def _set_paths(config: Any) -> dict[str, str]:
    """The path fields (`setting(..., path=True)`) that hold a path, by name."""
    return {
        field.name: value
        for field in dataclasses.fields(config)
        if field.metadata.get("path") and isinstance(value := getattr(config, field.name), str) and value
    }


def config_paths(config: Any) -> list[tuple[str, str]]:
    """(flag, path) of every path field that is set (`setting(..., path=True)`): the files a run reads."""
    return [(f"--{name.replace('_', '-')}", value) for name, value in _set_paths(config).items()]


def config_to_dict(config: Any) -> dict[str, Any]:
    """The config as plain JSON/TOML-able data (tuples become lists), for run dirs and checkpoints."""
    return {field.name: _plain(getattr(config, field.name)) for field in dataclasses.fields(config)}


def config_from_dict(config_class: type[ConfigT], data: Mapping[str, Any], source: str) -> ConfigT:
    """Rebuild a config saved by `config_to_dict` (e.g. from a checkpoint); unknown keys, wrong types and
    values that break a rule are one line naming `source` and the key."""
    values = _checked_layer(config_class, data, source)
    check_rules(config_class, values, dict.fromkeys(values, source))
    return config_class(**values)


def check_rules(config_class: type, values: Mapping[str, Any], sources: Mapping[str, str]) -> None:
    """Every field's value (given in `values`, else its default) against its `Rule`; `sources` names
    where each given value came from. Raises a DepthcliError naming the first key that breaks one."""
    fields = {field.name: field for field in dataclasses.fields(config_class)}
    resolved = {name: values.get(name, field.default) for name, field in fields.items()}
    for name, field in fields.items():
        rule, value = field.metadata.get("rule", FINITE), resolved[name]
        if value is None:
            continue
        where = _where(name, field, sources.get(name, "defaults"))
        problem = rule.problem(value)
        if problem is not None:
            raise DepthcliError(f"{where} {problem}, got {_shown(value)}")
        if rule.size:
            check_size(value[0], value[1], where)
    for name, field in fields.items():  # keys that must stay below others, once each value is sound
        above = field.metadata.get("rule", FINITE).below
        value, other = resolved[name], resolved.get(above) if above else None
        if value is not None and other is not None and not value < other:
            raise DepthcliError(
                f"{_where(name, field, sources.get(name, 'defaults'))} ({_shown(value)}) must be below {above} "
                f"({_shown(other)}, from {sources.get(above, 'defaults')})"
            )


def architecture_keys(config_class: type) -> list[str]:
    """The keys that shape the networks' parameters (declared with `architecture=True`)."""
    return [field.name for field in dataclasses.fields(config_class) if field.metadata.get("architecture")]


def save_config(config: Any, path: str | Path, provenance: Sequence[Mapping[str, Any]] = ()) -> Path:
    """Write the resolved config as JSON (readable back with `--config`), atomically; `provenance`
    records, when given, go under PROVENANCE_KEY."""
    path = Path(path)
    data = config_to_dict(config) | ({PROVENANCE_KEY: [dict(record) for record in provenance]} if provenance else {})
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")
    return path


def _where(name: str, field: dataclasses.Field, source: str) -> str:
    """Where a value came from, e.g. "command-line flags: key 'lr' (--lr)" or "run.toml: key 'lr'"."""
    flag = f" (--{name.replace('_', '-')})" if source == COMMAND_LINE and field.metadata.get("flag") else ""
    return f"{source}: key {name!r}{flag}"


def _shown(value: Any) -> str:
    """A value as the user wrote it: lists as lists (configs hold tuples), everything else as repr."""
    return repr(list(value)) if isinstance(value, tuple) else repr(value)


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
