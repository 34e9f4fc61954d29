"""Command-line flags drawn from the recipes' config dataclasses: one source for keys, help and defaults.

`with_config_flags(settings)` gives a command one flag per config field declared with `flag=True`
(help text from the field, the default of every preset in the help), plus the options every training
command shares: `--preset` (a real choice list), `--config`, `--set key=value` (any config key) and
`--print-config`. The command receives the keys given on the command line as one dict (`None` = not
given), so that preset < --config file < command line holds.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import tomllib
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import typer

from depthcli.config import field_types
from depthcli.errors import DepthcliError
from depthcli.recipe_configs import RecipeSettings, TrainConfig
from depthcli.sizes import format_size

CONFIG_PANEL = "Config keys (also settable in a --config file and with --set key=value)"
SET_HELP = "Any config key as KEY=VALUE, the value read as JSON or TOML: lr=2e-4, scales=[0], net=radepth-small."


@dataclasses.dataclass(frozen=True)
class Choices:
    """A real choice list for one flag: shown in --help, completed by the shell, and a wrong value is
    one DepthcliError line (as every bad input) rather than a usage error."""

    flag: str
    values: tuple[str, ...]
    problem: str = "is not one of"

    def parse(self, value: str) -> str:
        if value not in self.values:
            raise DepthcliError(f"{self.flag} {value!r} {self.problem} {', '.join(self.values)}")
        return value

    def complete(self, incomplete: str) -> list[str]:
        return [value for value in self.values if value.startswith(incomplete)]

    def option(self, default: Any, help_text: str, panel: str | None = None) -> Any:
        """The `typer.Option` of this flag."""
        return typer.Option(
            default,
            self.flag,
            help=help_text,
            parser=self.parse,
            autocompletion=self.complete,
            metavar="[" + "|".join(self.values) + "]",
            rich_help_panel=panel,
        )


@dataclasses.dataclass(frozen=True)
class ConfigFlag:
    """One config field as a command-line flag."""

    key: str
    kind: type  # what Typer parses: int, float, str or bool
    help: str
    choices: tuple[str, ...] | None
    parse: Callable[[str], Any] | None

    @property
    def option(self) -> str:
        name = self.key.replace("_", "-")
        return f"--{name}/--no-{name}" if self.kind is bool else f"--{name}"


def config_flags(settings: Sequence[RecipeSettings]) -> list[ConfigFlag]:
    """The flagged fields of the settings' config classes, each once: the recipes' own keys, then the loop's.

    A key that only some of the recipes have says which in its help; where their help texts differ,
    each is given with its recipe's name.
    """
    loop_keys = [field.name for field in dataclasses.fields(TrainConfig)]
    fields_of = {
        recipe.name: {field.name: field for field in dataclasses.fields(recipe.config_class)} for recipe in settings
    }
    keys = [key for fields in fields_of.values() for key in fields if key not in loop_keys] + loop_keys
    preset_configs = {preset: recipe.build_config(preset) for recipe in settings for preset in recipe.presets}
    flags = []
    for key in dict.fromkeys(keys):
        having = {name: fields[key] for name, fields in fields_of.items() if key in fields}
        first = next(iter(having.values()))
        if not first.metadata.get("flag"):
            continue
        helps = {field.metadata["help"] for field in having.values()}
        if len(helps) == 1:
            help_text = helps.pop()
        else:
            help_text = " / ".join(f"{name}: {field.metadata['help']}" for name, field in having.items())
        if len(having) < len(settings):
            help_text = f"{', '.join(having)} only: {help_text}"
        owner = next(recipe for recipe in settings if recipe.name in having)
        kind, choices = _flag_type(field_types(owner.config_class)[key])
        help_text = f"{help_text} {_default_text(key, preset_configs)}"
        flags.append(ConfigFlag(key, kind, help_text, choices, first.metadata.get("parse")))
    return flags


def check_flags_apply(flags: Mapping[str, Any], chosen: RecipeSettings, others: Sequence[RecipeSettings]) -> None:
    """A key given for another recipe than the chosen one is one error line (unknown keys are
    `build_config`'s to report)."""
    keys = {field.name for field in dataclasses.fields(chosen.config_class)}
    for key, value in flags.items():
        owners = [recipe.name for recipe in others if key in {f.name for f in dataclasses.fields(recipe.config_class)}]
        if value is not None and key not in keys and owners:
            flag = "--" + key.replace("_", "-")
            raise DepthcliError(f"{flag} ({key}) applies to --task {' / '.join(owners)}, not --task {chosen.name}")


def with_config_flags(settings: Sequence[RecipeSettings]) -> Callable[[Callable[..., Any]], Callable[..., None]]:
    """Decorate a command `f(..., *, preset, config_file, print_config, flags)`: Typer sees f's own options,
    the shared ones and one option per config flag; `f` receives `flags`, the config keys given on the
    command line (their own flags and every `--set key=value`)."""
    flags = config_flags(settings)
    presets = tuple(name for recipe in settings for name in recipe.presets)
    defaults = {recipe.default_preset for recipe in settings} - {None}
    preset_help = "Recipe preset (its values are the defaults below)" + (
        f" (default: {defaults.pop()})" if len(defaults) == 1 else "; a new run needs one"
    )
    preset = Choices("--preset", presets, "is an unknown preset; choose one of").option(None, preset_help)
    config_file = typer.Option(None, "--config", help="TOML, JSON or YAML file of config keys (a flat table).")
    print_config = typer.Option(False, "--print-config", help="Print the resolved config (JSON) and exit.")
    shared = [
        _parameter("preset", str, preset),
        _parameter("config_file", Path, config_file),
        _parameter("set_values", list[str] | None, typer.Option(None, "--set", help=SET_HELP)),
        _parameter("print_config", bool, print_config),
    ]
    generated = [
        _parameter(
            flag.key,
            flag.kind,
            Choices(flag.option, flag.choices).option(None, flag.help, CONFIG_PANEL)
            if flag.choices
            else typer.Option(None, flag.option, help=flag.help, rich_help_panel=CONFIG_PANEL),
        )
        for flag in flags
    ]

    def decorate(command: Callable[..., Any]) -> Callable[..., None]:
        replaced = {parameter.name for parameter in shared} | {"flags"}
        own = [p for p in inspect.signature(command, eval_str=True).parameters.values() if p.name not in replaced]

        @functools.wraps(command, assigned=("__module__", "__name__", "__qualname__", "__doc__"), updated=())
        def run(**values: Any) -> None:
            given = {}
            for flag in flags:
                value = values.pop(flag.key)
                given[flag.key] = flag.parse(value) if flag.parse is not None and value is not None else value
            for key, value in parse_set_values(values.pop("set_values") or []).items():
                if given.get(key) is not None:
                    raise DepthcliError(f"config key {key!r} is given twice (--set and its own flag); give it once")
                given[key] = value
            command(**values, flags=given)

        run.__signature__ = inspect.Signature(own + shared + generated)
        run.__annotations__ = {}
        return run

    return decorate


def parse_set_values(items: Sequence[str]) -> dict[str, Any]:
    """`--set KEY=VALUE` items -> {key: value}; VALUE is read as JSON, then TOML, else kept as text."""
    values: dict[str, Any] = {}
    for item in items:
        key, separator, text = item.partition("=")
        if not separator or not key.strip():
            raise DepthcliError(f"--set {item!r} is not KEY=VALUE; write e.g. --set lr=2e-4 or --set scales=[0]")
        values[key.strip()] = parse_value(text.strip())
    return values


def parse_value(text: str) -> Any:
    """`2e-4` -> 0.0002, `[0, 1]` -> [0, 1], `true` -> True, `null` -> None, `radepth-small` -> the text."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        return text


def resolve_command_config(
    recipe_name: str,
    out: Path | None,
    *,
    preset: str | None,
    resume: bool,
    config_file: Path | None,
    print_config: bool,
    flags: Mapping[str, Any],
) -> tuple[Any, Any]:
    """The recipe and resolved run config a training command runs; with `--print-config`, the config is
    printed as JSON (a run's config.json, readable back with --config) and the command exits here."""
    if out is None and (resume or not print_config):
        raise DepthcliError("--out is required: the run directory to write (or, with --resume, to continue)")
    from depthcli.config import config_to_dict
    from depthcli.engine.recipes import get_recipe
    from depthcli.engine.runner import resolve_run_config

    recipe = get_recipe(recipe_name)
    config = resolve_run_config(recipe, out, preset=preset, resume=resume, config_file=config_file, flags=flags)
    if print_config:
        typer.echo(json.dumps(config_to_dict(config), indent=2, sort_keys=True))
        raise typer.Exit()
    return recipe, config


def render_value(value: Any, none_text: str | None) -> str:
    """How --help writes a config value: sizes as WxH, booleans on/off, unset values by their meaning."""
    if value is None or value == "":
        return none_text or "required"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return format_size(value)
    return str(value)


# ------------------------------------------------------------------------------------------ helpers
def _default_text(key: str, preset_configs: Mapping[str, Any]) -> str:
    """`(default: 12)`, or per preset where they differ: `(default: 12 (monodepth2, radepth), 8 (nyu-resnet50))`."""
    by_value: dict[str, list[str]] = {}
    for preset, config in preset_configs.items():
        field = {field.name: field for field in dataclasses.fields(config)}.get(key)
        if field is not None:
            by_value.setdefault(render_value(getattr(config, key), field.metadata.get("none")), []).append(preset)
    if len(by_value) == 1:
        return f"(default: {next(iter(by_value))})"
    return "(default: " + ", ".join(f"{value} ({', '.join(names)})" for value, names in by_value.items()) + ")"


def _flag_type(annotation: Any) -> tuple[type, tuple[str, ...] | None]:
    """Typer's type for a field annotation (`int | None` -> int), and the choices of a Literal."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        annotation = next(arg for arg in typing.get_args(annotation) if arg is not type(None))
    if typing.get_origin(annotation) is typing.Literal:
        return str, tuple(typing.get_args(annotation))
    if annotation in (int, float, str, bool):
        return annotation, None
    return str, None  # sizes and other parsed values arrive as text


def _parameter(name: str, annotation: Any, option: Any) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=annotation)
