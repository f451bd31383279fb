"""Generic config loading: YAML file -> frozen dataclass, plus dotted ``key=value`` overrides.

Every config in lhama is a (nested) frozen dataclass. This module turns plain data into such a
dataclass, checking every value against the field's type annotation, and rejects unknown keys
with a :class:`ConfigError` that lists the valid ones.

    cfg = load(TrainConfig, "recipes/stage1.yaml", ["optim.lr=2e-4", "~model.lora"])

An override ``a.b=value`` parses ``value`` as YAML (so ``3``, ``1e-3``, ``true``, ``[1, 2]``
work); ``~a.b`` removes the key so the dataclass default applies. A YAML value ``???`` marks a
key the user must set (a recipe that cannot know where your data is): loading fails in one line
naming every such key until an override sets (or ``~`` removes) it.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

import yaml

from lhama.errors import ConfigError

T = TypeVar("T")
REQUIRED = "???"  # a YAML value the user must override (OmegaConf's convention)


def load(cls: type[T], path: str | Path | None = None, overrides: Sequence[str] = ()) -> T:
    """Build ``cls`` from an optional YAML file and dotted overrides.

    Raises:
        ConfigError: missing/unparsable file, unknown key, a value of the wrong type, or a
            ``???`` value left unset.
    """
    data: dict[str, Any] = read_yaml(path) if path is not None else {}
    data = apply_overrides(data, overrides)
    unset = required_keys(data)
    if unset:
        where = Path(path).name if path is not None else "the config"
        raise ConfigError(f"{where} needs {', '.join(unset)}: add " + " ".join(f"{key}=..." for key in unset)
                          + " to the command")
    return from_dict(cls, data)


def required_keys(data: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys of ``data`` whose value is still ``???``, in order."""
    found = []
    for key, value in data.items():
        if isinstance(value, Mapping):
            found += required_keys(value, f"{prefix}{key}.")
        elif value == REQUIRED:
            found.append(f"{prefix}{key}")
    return found


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping from ``path``."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping at the top level, not {type(data).__name__}")
    return data


def apply_overrides(data: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Return a copy of ``data`` with each ``a.b=value`` set and each ``~a.b`` removed."""
    result = _deep_copy(data)
    for item in overrides:
        if item.startswith("~"):
            _delete(result, item[1:])
            continue
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {item!r} must look like key=value or ~key")
        try:
            value = yaml.safe_load(raw) if raw else ""
        except yaml.YAMLError:
            value = raw
        _set(result, key.strip(), value)
    return result


def from_dict(cls: type[T], data: Mapping[str, Any], prefix: str = "") -> T:
    """Build dataclass ``cls`` from ``data``, type-checking every field recursively."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{prefix or 'config'} must be a mapping, got {data!r}")
    convert = getattr(cls, "convert_old_keys", None)  # a class's keys of an earlier format -> today's
    if convert is not None:
        data = convert(data)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        where = f" in {prefix}" if prefix else ""
        raise ConfigError(
            f"unknown config key {prefix}{unknown[0]!s}{where}; valid keys: {', '.join(sorted(fields))}"
        )
    hints = typing.get_type_hints(cls)
    kwargs = {name: _coerce(hints[name], value, f"{prefix}{name}") for name, value in data.items()}
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"{prefix or cls.__name__}: {exc}") from None
    except ValueError as exc:  # __post_init__ validation
        raise ConfigError(str(exc)) from None


def to_dict(obj: Any) -> Any:
    """Turn a (nested) dataclass into plain data that :func:`from_dict` accepts."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def saved_matches(config: Any, saved: Any) -> bool:
    """Whether ``saved`` (a :func:`to_dict` of some earlier ``config``) holds the settings ``config``
    holds now: every saved key is a field with the saved value, and every field the record lacks
    (one added since it was written) holds its default, as loading the record would give. So adding
    a field with a default leaves every record current; a changed value or default does not.
    """
    if not isinstance(saved, Mapping):
        return False
    fields = dataclasses.fields(config)
    for field in fields:
        value = getattr(config, field.name)
        if field.name in saved:
            if saved[field.name] != value and saved[field.name] != to_dict(value):  # a tuple is saved as a list
                return False
        elif field.default_factory is not dataclasses.MISSING:
            if value != field.default_factory():
                return False
        elif value != field.default:  # MISSING when the field has no default: never equal
            return False
    return set(saved) <= {field.name for field in fields}


def _coerce(tp: Any, value: Any, key: str) -> Any:
    """Check ``value`` against type ``tp``; convert where lossless (int -> float, list -> tuple)."""
    if type(value) is tp and tp in (str, int, float, bool):  # already what the field holds: taken as is
        return value
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _coerce(option, value, key)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{key}: invalid value {value!r}")
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{key} must be one of {', '.join(map(repr, args))}, got {value!r}")
        return value
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value if value is not None else {}, prefix=f"{key}.")
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key} must be a list, got {value!r}")
        item_type = args[0] if args else Any
        items = [_coerce(item_type, v, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key} must be a mapping, got {value!r}")
        return dict(value)
    return _coerce_scalar(tp, value, key)


def _coerce_scalar(tp: Any, value: Any, key: str) -> Any:
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str):
        try:
            return float(value)  # YAML reads "1e-3" (no dot) as a string
        except ValueError:
            pass
    if tp is Path and isinstance(value, str):
        return Path(value)
    if tp is int and isinstance(value, bool):
        raise ConfigError(f"{key} must be an integer, got {value!r}")
    if isinstance(tp, type) and not isinstance(value, tp):
        raise ConfigError(f"{key} must be {tp.__name__}, got {value!r}")
    return value


def _deep_copy(data: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, Mapping) else v for k, v in data.items()}


def _set(data: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node = data
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"cannot set {dotted}: {part} is not a mapping")
        node = child
    node[leaf] = value


def _delete(data: dict[str, Any], dotted: str) -> None:
    *parents, leaf = dotted.split(".")
    node: Any = data
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, dict):
        node.pop(leaf, None)
