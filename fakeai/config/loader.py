"""Settings sources and their precedence: CLI flag > env FAKEAI_* > config file > default.

``load_settings`` returns the validated ``Settings`` together with the source of
every value, which ``fakeai config`` prints.
"""

from __future__ import annotations

import os
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .settings import Settings

ENV_PREFIX = "FAKEAI_"
CONFIG_ENV = ENV_PREFIX + "CONFIG"


class ConfigError(ValueError):
    """A bad option value, with the source that gave it."""


@dataclass(frozen=True)
class Loaded:
    settings: Settings
    sources: dict[str, str]  # field -> "default" | "file:PATH" | "env:NAME" | "cli"
    config_file: str | None


def env_name(field: str) -> str:
    return ENV_PREFIX + field.upper()


def _is_list(field: str) -> bool:
    ann = Settings.model_fields[field].annotation
    return typing.get_origin(ann) is list


def _from_text(field: str, raw: str) -> Any:
    """Turn an env/CLI string into what pydantic validates (lax mode coerces the rest)."""
    if _is_list(field):
        return [p.strip() for p in raw.split(",") if p.strip()]
    ann = Settings.model_fields[field].annotation
    if raw.strip().lower() in ("", "none", "null") and type(None) in typing.get_args(ann):
        return None
    return raw


def read_config_file(path: str) -> dict[str, Any]:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror}") from None
    try:
        if p.suffix.lower() in (".yaml", ".yml"):
            import yaml  # only for YAML files: ~10 ms of start-up otherwise

            try:
                data = yaml.safe_load(text) or {}
            except yaml.YAMLError as e:
                raise ConfigError(f"config file {path} is not valid: {e}") from None
        else:
            data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {path} is not valid: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a table of options")
    data = {str(k).replace("-", "_"): v for k, v in data.items()}
    if isinstance(data.get("models_file"), (str, list)):  # relative to the config file
        files = [data["models_file"]] if isinstance(data["models_file"], str) else data["models_file"]
        data["models_file"] = [str(p.parent / f) if isinstance(f, str) else f for f in files]
    unknown = sorted(set(data) - set(Settings.model_fields))
    if unknown:
        raise ConfigError(f"config file {path}: unknown option(s) {', '.join(unknown)}")
    return data


def load_settings(
    cli: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    config_file: str | None = None,
) -> Loaded:
    """Merge the sources. ``cli`` holds only the flags the user actually gave."""
    env = os.environ if env is None else env
    cli = dict(cli or {})
    values: dict[str, Any] = {}
    sources = {name: "default" for name in Settings.model_fields}

    path = config_file or env.get(CONFIG_ENV) or None
    if path:
        for k, v in read_config_file(path).items():
            values[k], sources[k] = v, f"file:{path}"
    for name in Settings.model_fields:
        raw = env.get(env_name(name))
        if raw is not None:
            values[name], sources[name] = _from_text(name, raw), f"env:{env_name(name)}"
    for name, v in cli.items():
        if name not in Settings.model_fields:
            raise ConfigError(f"unknown option {name}")
        values[name] = _from_text(name, v) if isinstance(v, str) else v
        sources[name] = "cli"
    try:
        settings = Settings.model_validate(values)
    except ValidationError as e:
        msgs = []
        for err in e.errors():
            # cross-field checks raise without a location; their message starts with the field
            msg = err["msg"].removeprefix("Value error, ")
            field = str(err["loc"][0]) if err["loc"] else msg.split(" ", 1)[0].rstrip(":")
            if not err["loc"]:
                err["msg"] = msg.removeprefix(field).lstrip(": ")
            where = sources.get(field, "")
            msgs.append(f"{field or 'settings'} ({where}): {err['msg']}")
        raise ConfigError("invalid configuration: " + "; ".join(msgs)) from None
    return Loaded(settings, sources, path)
