"""Typed settings: CLI flag > env FAKEAI_* > config file > default."""

from .loader import ConfigError, Loaded, env_name, load_settings
from .settings import CLI_ALIASES, Settings

__all__ = ["CLI_ALIASES", "ConfigError", "Loaded", "Settings", "env_name", "load_settings"]
