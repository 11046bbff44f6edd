"""Dataclasses as the config schema: YAML files, `--a.b=c` overrides, strict keys.

Every command declares one dataclass; `load_config` merges the YAML file (`dolma -c file.yaml ...`) with
command-line overrides, coerces values to the declared types and rejects unknown keys, naming the
valid choices.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

import yaml

from dolma_pipeline.errors import ConfigError

T = TypeVar("T")


class _SafeLoader(yaml.SafeLoader):
    """YAML 1.1 with YAML 1.2's floats, as OmegaConf (Dolma's config reader) has them: `1e-09` is a number,
    not the string PyYAML makes of it (JSON writes small floats that way)."""


_SafeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"))


def parse_overrides(argv: list[str]) -> dict[str, Any]:
    """Turn `--a.b=c`, `--a.b c d` (a list) and `--flag` into a nested dict of YAML-parsed values."""
    out: dict[str, Any] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("--") or arg == "--":
            raise ConfigError(f"unexpected argument {arg!r}; options look like --key value or --key=value")
        key, eq, value = arg[2:].partition("=")
        if eq:
            values: list[str] = [value]
        else:
            values = []
            while i + 1 < len(argv) and not (argv[i + 1].startswith("--") and len(argv[i + 1]) > 2):
                i += 1
                values.append(argv[i])
        i += 1
        if not values:
            if key.startswith("no-"):
                parsed: Any = False
                key = key[3:]
            else:
                parsed = True
        elif len(values) == 1:
            parsed = _scalar(values[0])
        else:
            parsed = [_scalar(v) for v in values]
        _set_nested(out, key.split("."), parsed)
    return out


def _scalar(text: str) -> Any:
    try:
        return yaml.load(text, Loader=_SafeLoader)  # noqa: S506 (a SafeLoader subclass: no Python tags)
    except yaml.YAMLError:
        return text


def _set_nested(target: dict, keys: list[str], value: Any) -> None:
    for key in keys[:-1]:
        target = target.setdefault(key, {})
        if not isinstance(target, dict):
            raise ConfigError(f"option {'.'.join(keys)} conflicts with a scalar value given for {key}")
    target[keys[-1]] = value


def deep_merge(base: dict, override: dict) -> dict:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_yaml(path: str) -> dict[str, Any]:
    from dolma_pipeline.io import read_text

    try:
        data = yaml.load(read_text(path), Loader=_SafeLoader)  # noqa: S506 (a SafeLoader subclass: no Python tags)
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"cannot read config {path}: {e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config {path} must be a mapping at the top level")
    return data


def load_config(cls: type[T], config_file: str | None = None, argv: list[str] | None = None,
                extra: dict[str, Any] | None = None) -> T:
    data = load_yaml(config_file) if config_file else {}
    if extra:
        data = deep_merge(data, extra)
    if argv:
        data = deep_merge(data, parse_overrides(argv))
    return from_dict(cls, data)


def from_dict(cls: type[T], data: dict[str, Any], where: str = "") -> T:
    """Build dataclass `cls` from `data`, coercing values; unknown keys are ConfigErrors."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'config'} must be a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = [k for k in data if k not in fields]
    if unknown:
        raise ConfigError(f"unknown key {where}{unknown[0]!s}; valid keys: {', '.join(sorted(fields))}")
    kwargs = {name: _coerce(hints[name], value, f"{where}{name}") for name, value in data.items()}
    try:
        obj = cls(**kwargs)
    except TypeError as e:
        raise ConfigError(f"{where or cls.__name__}: {e}") from None
    processes = getattr(obj, "processes", 1)
    if not where and type(processes) is int and processes < 1:  # the one rule for every command
        raise ConfigError(f"processes: must be at least 1, got {processes}")
    validate = getattr(obj, "validate", None)
    if validate:
        validate()
    return obj


def _accepts_bool(tp: Any) -> bool:
    return tp is bool or tp is Any or (get_origin(tp) in (Union, types.UnionType)
                                      and any(_accepts_bool(a) for a in get_args(tp)))


def _coerce(tp: Any, value: Any, where: str) -> Any:
    origin = get_origin(tp)
    if tp is Any:
        return value
    if value is True and not _accepts_bool(tp):  # `--key` given without a value
        raise ConfigError(f"{where}: needs a value (--{where.replace('[', '.').rstrip(']')} VALUE)")
    if origin in (Union, types.UnionType):
        options = get_args(tp)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(option, value, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{where}: bad value {value!r}")
    if origin is Literal:
        choices = get_args(tp)
        if value not in choices:
            raise ConfigError(f"{where}: {value!r} is not one of {', '.join(map(str, choices))}")
        return value
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        return from_dict(tp, value or {}, f"{where}.")
    if origin is list:
        (item_tp,) = get_args(tp) or (Any,)
        if value is None:
            return []
        if not isinstance(value, (list, tuple)):
            value = [value]
        return [_coerce(item_tp, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        key_tp, val_tp = get_args(tp) or (Any, Any)
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return {k: _coerce(val_tp, v, f"{where}.{k}") for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return int(value)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if isinstance(value, (dict, list)) or value is None:
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value if isinstance(value, str) else str(value)
    return value


def to_dict(obj: Any) -> dict[str, Any]:
    return dataclasses.asdict(obj)


def dump_yaml(obj: Any) -> str:
    from dolma_pipeline.safety import redact

    data = redact(to_dict(obj) if dataclasses.is_dataclass(obj) else obj)  # written beside outputs: no secrets
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def fingerprint(data: Any) -> str:
    """A stable hash of a config fragment (used to tell whether finished work is still valid)."""
    import hashlib
    import json

    blob = json.dumps(data, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
