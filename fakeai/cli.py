"""The ``fakeai`` command: ``server``, ``models`` and ``config``.

Every settings field is a ``server`` (and ``config``) flag, generated from the
typed ``Settings`` so that the CLI, the environment and config files can
never drift apart.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import typing
from typing import Any

from . import __version__
from .config import CLI_ALIASES, ConfigError, Settings, env_name, load_settings
from .config.settings import masked


def _add_settings_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("settings (each also FAKEAI_<NAME> in the environment, or <name> in a config file)")
    for name, f in Settings.model_fields.items():
        flags = [*CLI_ALIASES.get(name, ()), "--" + name.replace("_", "-")]
        default = f.default_factory() if f.default_factory else f.default
        help_ = f"{f.description} [env {env_name(name)}; default {default!r}]".replace("%", "%%")
        ann = f.annotation
        args = typing.get_args(ann)
        kw: dict[str, Any] = {"dest": name, "default": argparse.SUPPRESS, "help": help_}
        if ann is bool:
            g.add_argument(*flags, action=argparse.BooleanOptionalAction, **kw)
        elif typing.get_origin(ann) is list:
            g.add_argument(*flags, action="append", metavar="PATH", **kw)
        elif typing.get_origin(ann) is typing.Literal:
            g.add_argument(*flags, choices=list(args), **kw)
        else:
            metavar = "MS" if name.endswith("_ms") else name.split("_")[-1].upper()
            g.add_argument(*flags, metavar=metavar, **kw)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fakeai",
        description="fakeai: a simulator of an OpenAI-compatible LLM inference service "
        "(realistic content and timing, no GPU).",
        epilog="Precedence: CLI flag > environment FAKEAI_* > config file (--config or FAKEAI_CONFIG) > default.",
    )
    parser.add_argument("--version", action="version", version=f"fakeai {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    server = sub.add_parser("server", help="start the API server",
                            description="Start the fakeai API server (uvicorn, uvloop, httptools).")
    server.add_argument("--config", metavar="FILE", help="config file (TOML or YAML)")
    _add_settings_flags(server)

    models = sub.add_parser("models", help="list the model catalog",
                            description="List the models in the catalog (plus --models-file extras).")
    models.add_argument("--config", metavar="FILE", help="config file (TOML or YAML)")
    models.add_argument("--json", action="store_true", help="print JSON")
    models.add_argument("--models-file", dest="models_file", action="append", metavar="PATH",
                        default=argparse.SUPPRESS, help="extra catalog file")

    cfg = sub.add_parser("config", help="print the effective settings and their sources",
                         description="Print every setting, its effective value and where it came from.")
    cfg.add_argument("--config", metavar="FILE", help="config file (TOML or YAML)")
    cfg.add_argument("--json", action="store_true", help="print JSON")
    _add_settings_flags(cfg)

    from .tools import cli_bench

    cli_bench.add_parser(sub)
    from .tools import cli_views

    cli_views.add_parser(sub)
    return parser


_NOT_SETTINGS = {"command", "config", "json", "handler"}


def _load(ns: argparse.Namespace):
    cli = {k: v for k, v in vars(ns).items() if k not in _NOT_SETTINGS}
    return load_settings(cli=cli, config_file=ns.config)


def cmd_server(ns: argparse.Namespace) -> int:
    from .multiproc import serve

    s = _load(ns).settings
    app = None
    try:  # a bad catalog file fails here, before serving: the message names file, model and field
        if s.process_count == 1:
            from .app import create_app

            app = create_app(s)
        else:  # each process builds its own app: check the catalog once here
            from .registry import ModelRegistry

            ModelRegistry.load(extra_paths=s.models_file)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    print(f"fakeai {__version__} serving on http://{s.host}:{s.port}"
          + (f" with {s.process_count} processes" if s.process_count > 1 else ""), file=sys.stderr, flush=True)
    serve(s, app)
    return 0


def log_config(s: Settings) -> dict:
    """uvicorn's logging set-up, plus the app's own logger; access lines whenever asked for."""
    import copy

    from uvicorn.config import LOGGING_CONFIG

    cfg = copy.deepcopy(LOGGING_CONFIG)
    level = s.log_level.upper() if s.log_level != "trace" else 5
    cfg["loggers"]["uvicorn"]["level"] = level
    cfg["loggers"]["uvicorn.error"] = {"level": level}
    cfg["loggers"]["uvicorn.access"]["level"] = min(logging.INFO, logging.getLevelName(level)
                                                     if isinstance(level, str) else level)
    cfg["loggers"]["fakeai"] = {"handlers": ["default"], "level": level, "propagate": False}
    return cfg


def cmd_models(ns: argparse.Namespace) -> int:
    from .registry import ModelRegistry

    loaded = _load(ns)
    try:
        reg = ModelRegistry.load(extra_paths=loaded.settings.models_file)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    rows = reg.list()
    if ns.json:
        print(json.dumps([{"id": m.id, "provider": m.provider, "owned_by": m.owned_by,
                           "context_window": m.context_window, "max_output_tokens": m.max_output_tokens,
                           "tokenizer": m.tokenizer, "capabilities": m.capabilities.as_dict()}
                          for m in rows], indent=2))
        return 0
    width = max(len(m.id) for m in rows)
    print(f"{'MODEL':<{width}}  {'PROVIDER':<9}  {'CONTEXT':>8}  {'TOKENIZER':<13}  CAPABILITIES")
    for m in rows:
        caps = ",".join(k for k, v in m.capabilities.as_dict().items() if v)
        print(f"{m.id:<{width}}  {m.provider:<9}  {m.context_window:>8}  {m.tokenizer:<13}  {caps}")
    return 0


def cmd_config(ns: argparse.Namespace) -> int:
    loaded = _load(ns)
    values = masked(loaded.settings.model_dump())
    if ns.json:
        print(json.dumps({k: {"value": v, "source": loaded.sources[k]} for k, v in values.items()}, indent=2))
        return 0
    width = max(map(len, values))
    for k, v in values.items():
        print(f"{k:<{width}}  {json.dumps(v):<24}  {loaded.sources[k]}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    ns = parser.parse_args(argv)
    if ns.command is None:
        parser.print_help()
        return 2
    try:
        handler = getattr(ns, "handler", None)
        if handler is not None:
            return handler(ns)
        return {"server": cmd_server, "models": cmd_models, "config": cmd_config}[ns.command](ns)
    except ConfigError as e:
        print(f"fakeai: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `fakeai models | head`
        sys.stderr.close()
        return 0
