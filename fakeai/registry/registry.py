"""The model registry: loads ``catalog.toml`` and answers "which model is this id?".

Catalog file shape (TOML, or YAML with the same structure)::

    [defaults]            # template for models not in the catalog; also the
    owned_by = "fakeai"   # fallback latency/pricing of catalog entries
    ...                   # (same keys as a model, minus id/aliases/parent)

    [[models]]
    id = "gpt-4o"
    provider = "openai"
    owned_by = "system"
    created = 1715367049          # unix seconds, or a TOML/YAML date
    context_window = 128000
    max_output_tokens = 16384
    tokenizer = "o200k_base"
    tokenizer_exact = true
    capabilities = ["chat", "tools"]      # or a table of booleans
    latency = { prefill_ms_per_token = 0.1, prefill_overhead_ms = 30, itl_ms = 12 }
    pricing = { input = 2.5, cached_input = 1.25, output = 10 }
    aliases = ["gpt-4o-2024-08-06"]       # optional
    embedding_dimensions = 1536           # optional (required for embedding models)
    parent = "..."                        # optional

Merge rules:

* ``latency`` and ``pricing`` tables are merged field by field over the parent's
  (when ``parent`` names an already-loaded model) or else over ``[defaults]``.
* With a known ``parent``, every other omitted key (except ``id``/``aliases``)
  is inherited from it; this is how extra catalogs declare fine-tunes tersely.
* Files are applied in order: the packaged catalog, then each extra file. A
  file's ``[defaults]`` is merged over the previous ones; its models are added,
  or replace an earlier model with the same id (keeping its list position).

Every error is a :class:`ValueError` naming the file, the model and the field.
"""

from __future__ import annotations

import datetime as _dt
import threading
import tomllib
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import MISSING, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any

from .models import Capabilities, FieldError, LatencyProfile, ModelDef, Pricing

__all__ = ["ModelRegistry", "DEFAULT_CHAT_MODEL", "MAX_SYNTHESIZED"]

DEFAULT_CHAT_MODEL = "gpt-4o-mini"
#: Upper bound on cached synthesized definitions (``ft:`` and allow-any ids).
MAX_SYNTHESIZED = 1024

_PACKAGED_CATALOG = "catalog.toml"
_TOP_LEVEL_KEYS = frozenset({"defaults", "models"})
_TYPES: dict[str, type] = {"str": str, "int": int, "float": float, "bool": bool}
# ModelDef keys read as plain scalars, with their type.
_SCALARS: dict[str, type] = {
    "id": str,
    "owned_by": str,
    "provider": str,
    "tokenizer": str,
    "parent": str,
    "context_window": int,
    "max_output_tokens": int,
    "embedding_dimensions": int,
    "tokenizer_exact": bool,
}
_MODEL_KEYS = tuple(f.name for f in fields(ModelDef))  # declaration order: stable errors
_OPTIONAL = frozenset(f.name for f in fields(ModelDef) if f.default is not MISSING)
_NOT_INHERITED = frozenset({"id", "aliases", "parent"})


# --------------------------------------------------------------------------- parsing


def _coerce(value: Any, typ: type, field: str) -> Any:
    """Check ``value`` against ``typ`` (ints are accepted as floats, bools never as numbers)."""
    if typ is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif typ is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif isinstance(value, typ):
        return value
    raise FieldError(field, f"expected {typ.__name__}, got {type(value).__name__} {value!r}")


def _timestamp(value: Any, field: str = "created") -> int:
    """Unix seconds from an int, a date (midnight UTC) or a datetime (naive = UTC)."""
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=_dt.timezone.utc)
        return int(value.timestamp())
    if isinstance(value, _dt.date):
        return int(_dt.datetime(value.year, value.month, value.day, tzinfo=_dt.timezone.utc).timestamp())
    return _coerce(value, int, field)


def _table(cls: type, raw: Any, base: Any, prefix: str) -> Any:
    """Build dataclass ``cls`` from mapping ``raw``, merged over instance ``base`` (may be None)."""
    if not isinstance(raw, dict):
        raise FieldError(prefix, f"expected a table, got {type(raw).__name__}")
    spec = {f.name: f for f in fields(cls)}
    values = {} if base is None else {name: getattr(base, name) for name in spec}
    for key, value in raw.items():
        if key not in spec:
            raise FieldError(f"{prefix}.{key}", f"unknown key (expected one of {sorted(spec)})")
        values[key] = _coerce(value, _TYPES[spec[key].type], f"{prefix}.{key}")
    for name, f in spec.items():
        if name not in values and f.default is MISSING:
            raise FieldError(f"{prefix}.{name}", "missing required field")
    try:
        return cls(**values)
    except FieldError as e:
        raise FieldError(f"{prefix}.{e.field}", e.msg) from None


def _capabilities(raw: Any) -> Capabilities:
    if isinstance(raw, list):
        for name in raw:
            _coerce(name, str, "capabilities")
        return Capabilities.of(*raw)
    return _table(Capabilities, raw, None, "capabilities")


def _aliases(raw: Any) -> tuple[str, ...]:
    if not isinstance(raw, list):
        raise FieldError("aliases", f"expected a list of strings, got {type(raw).__name__}")
    return tuple(_coerce(a, str, "aliases") for a in raw)


def _parse_model(raw: dict, defaults: ModelDef | None, lookup: Callable[[str], ModelDef | None]) -> ModelDef:
    """Turn one ``[[models]]`` mapping into a ModelDef (raises FieldError)."""
    for key in raw:
        if key not in _MODEL_KEYS:
            raise FieldError(key, f"unknown key (expected one of {sorted(_MODEL_KEYS)})")
    parent_name = _coerce(raw["parent"], str, "parent") if "parent" in raw else None
    parent = lookup(parent_name) if parent_name else None
    base = parent or defaults  # what latency/pricing merge over
    values: dict[str, Any] = {}
    for name in _MODEL_KEYS:
        if name in raw:
            value = raw[name]
            if name in _SCALARS:
                values[name] = _coerce(value, _SCALARS[name], name)
            elif name == "created":
                values[name] = _timestamp(value)
            elif name == "capabilities":
                values[name] = _capabilities(value)
            elif name == "aliases":
                values[name] = _aliases(value)
            else:  # latency / pricing
                cls = LatencyProfile if name == "latency" else Pricing
                values[name] = _table(cls, value, getattr(base, name, None), name)
        elif parent is not None and name not in _NOT_INHERITED:
            values[name] = getattr(parent, name)
        elif name in ("latency", "pricing") and defaults is not None:
            values[name] = getattr(defaults, name)
        elif name not in _OPTIONAL:
            raise FieldError(name, "missing required field")
    return ModelDef(**values)


def _read_document(source: str | Path | None) -> tuple[str, dict]:
    """Load one catalog file; ``None`` means the packaged catalog. Returns (label, mapping)."""
    if source is None:
        label, suffix = f"fakeai/registry/{_PACKAGED_CATALOG}", ".toml"
    else:
        label, suffix = str(source), Path(source).suffix.lower()
    if suffix not in (".toml", ".yaml", ".yml"):
        raise ValueError(f"{label}: unsupported catalog format {suffix!r} (use .toml, .yaml or .yml)")
    try:
        if source is None:
            text = resources.files(__package__).joinpath(_PACKAGED_CATALOG).read_text(encoding="utf-8")
        else:
            text = Path(source).read_text(encoding="utf-8")
        if suffix == ".toml":
            doc = tomllib.loads(text)
        else:
            import yaml

            try:
                doc = yaml.safe_load(text) or {}
            except yaml.YAMLError as e:
                raise ValueError(str(e)) from e
    except (OSError, ValueError) as e:  # TOMLDecodeError is a ValueError
        raise ValueError(f"{label}: cannot read catalog: {e}") from e
    if not isinstance(doc, dict):
        raise ValueError(f"{label}: a catalog must be a mapping with 'defaults' and/or 'models'")
    unknown = set(doc) - _TOP_LEVEL_KEYS
    if unknown:
        raise ValueError(f"{label}: unknown top-level key(s) {sorted(unknown)}; expected {sorted(_TOP_LEVEL_KEYS)}")
    return label, doc


def _merge_defaults(into: dict, raw: Any, label: str) -> None:
    """Merge a ``[defaults]`` table into ``into`` (latency/pricing merged one level deep)."""
    if not isinstance(raw, dict):
        raise ValueError(f"{label}: [defaults] must be a table")
    for key, value in raw.items():
        if key in ("latency", "pricing") and isinstance(value, dict) and isinstance(into.get(key), dict):
            into[key] = {**into[key], **value}
        else:
            into[key] = value


# --------------------------------------------------------------------------- registry


class ModelRegistry:
    """All known models, with alias lookup and on-demand synthesized definitions.

    Reads (:meth:`get`, :meth:`resolve` hits) are lock-free dictionary lookups;
    mutations and the synthesized-entry cache are guarded by a lock.
    """

    def __init__(self, defaults: ModelDef, models: Iterable[ModelDef] = ()) -> None:
        self._defaults = defaults
        self._models: dict[str, ModelDef] = {}
        self._aliases: dict[str, str] = {}
        self._synth: OrderedDict[str, ModelDef] = OrderedDict()
        self._dynamic: set[str] = set()  # ids registered at run time (fine-tunes)
        self._retired: set[str] = set()  # deleted fine-tunes: no longer derived from their base
        self._lock = threading.RLock()
        self.version = 0  # bumped on every add/remove: caches of the listing key on it
        for model in models:
            self.add(model)

    # ---- construction

    @classmethod
    def load(cls, path: str | Path | None = None, extra_paths: Iterable[str | Path] = ()) -> ModelRegistry:
        """Load ``path`` (default: the packaged ``catalog.toml``), then each of ``extra_paths``."""
        raw_defaults: dict[str, Any] = {}
        registry: ModelRegistry | None = None
        for source in [path, *extra_paths]:
            label, doc = _read_document(source)
            if "defaults" in doc:
                _merge_defaults(raw_defaults, doc["defaults"], label)
            if not raw_defaults:
                raise ValueError(f"{label}: the first catalog must have a [defaults] table")
            defaults = cls._parse_defaults(raw_defaults, label)
            if registry is None:
                registry = cls(defaults)
            else:
                registry._defaults = defaults
            registry._load_models(doc.get("models", []), label)
        assert registry is not None
        return registry

    @staticmethod
    def _parse_defaults(raw: dict, label: str) -> ModelDef:
        bad = _NOT_INHERITED & set(raw)
        if bad:
            raise ValueError(f"{label}: [defaults]: field {sorted(bad)[0]!r}: not allowed in defaults")
        try:
            return _parse_model({**raw, "id": "default"}, None, lambda _: None)
        except FieldError as e:
            raise ValueError(f"{label}: [defaults]: field {e.field!r}: {e.msg}") from None

    def _load_models(self, entries: Any, label: str) -> None:
        if not isinstance(entries, list):
            raise ValueError(f"{label}: 'models' must be an array of tables")
        seen: set[str] = set()
        for index, raw in enumerate(entries):
            name = f"#{index}"
            try:
                if not isinstance(raw, dict):
                    raise FieldError("models", f"entry must be a table, got {type(raw).__name__}")
                if isinstance(raw.get("id"), str) and raw["id"]:
                    name = repr(raw["id"])
                model = _parse_model(raw, self._defaults, self.get)
                if model.id in seen:
                    raise FieldError("id", "duplicate id in this catalog")
                seen.add(model.id)
                self.add(model)
            except FieldError as e:
                raise ValueError(f"{label}: model {name}: field {e.field!r}: {e.msg}") from None

    # ---- lookup

    def get(self, model_id: str) -> ModelDef | None:
        """Exact id match, then alias match; None if unknown."""
        model = self._models.get(model_id)
        if model is None:
            target = self._aliases.get(model_id)
            if target is not None:
                model = self._models.get(target)
        return model

    def resolve(self, model_id: str, allow_any: bool = False) -> ModelDef | None:
        """Resolve a request's ``model``.

        Order: exact id or alias; a fine-tune id ``ft:BASE:org:suffix:id`` whose
        BASE is known (derived from BASE, ``parent`` = BASE's id, ``owned_by`` =
        "user"); with ``allow_any``, a definition built from ``[defaults]``;
        otherwise None. Synthesized definitions are cached (at most
        :data:`MAX_SYNTHESIZED`, least recently used evicted), so repeated calls
        return the same object.
        """
        model = self.get(model_id)
        if model is not None or not model_id:
            return model
        cached = self._synth.get(model_id)
        # Default-profile entries are only visible to allow_any callers; ft: entries to all.
        if cached is not None and (allow_any or cached.parent is not None):
            with self._lock:
                if model_id in self._synth:
                    self._synth.move_to_end(model_id)
            return cached
        model = self._derive_fine_tune(model_id)
        if model is None:
            if not allow_any:
                return None
            model = replace(self._defaults, id=model_id)
        with self._lock:
            existing = self._synth.get(model_id)
            if existing is not None and (allow_any or existing.parent is not None):
                return existing
            self._synth[model_id] = model
            while len(self._synth) > MAX_SYNTHESIZED:
                self._synth.popitem(last=False)
        return model

    def _derive_fine_tune(self, model_id: str) -> ModelDef | None:
        if not model_id.startswith("ft:") or model_id in self._retired:
            return None
        base_id = model_id.split(":", 2)[1]
        base = self.get(base_id) if base_id else None
        if base is None:
            return None
        return replace(base, id=model_id, parent=base.id, owned_by="user", aliases=())

    def list(self) -> list[ModelDef]:
        """Catalog models (not synthesized ones), in catalog order."""
        return [*self._models.values()]

    def default_chat_model(self) -> str:
        """Id used when a caller needs "some chat model"."""
        return DEFAULT_CHAT_MODEL

    @property
    def defaults(self) -> ModelDef:
        """Template for models not in the catalog (its ``id`` is "default")."""
        return self._defaults

    @property
    def default_latency(self) -> LatencyProfile:
        return self._defaults.latency

    @property
    def default_pricing(self) -> Pricing:
        return self._defaults.pricing

    def __contains__(self, model_id: object) -> bool:
        return isinstance(model_id, str) and self.get(model_id) is not None

    def __iter__(self) -> Iterator[ModelDef]:
        return iter(self.list())

    def __len__(self) -> int:
        return len(self._models)

    # ---- mutation

    def add(self, model: ModelDef) -> None:
        """Add ``model``, or replace the model with the same id (keeping its position).

        Raises ValueError if its id is another model's alias or one of its aliases
        is already taken by another model.
        """
        with self._lock:
            owner = self._aliases.get(model.id)
            if owner is not None and owner != model.id:
                raise FieldError("id", f"{model.id!r} is already an alias of {owner!r}")
            for alias in model.aliases:
                other = alias if alias in self._models else self._aliases.get(alias, model.id)
                if other != model.id:
                    raise FieldError("aliases", f"alias {alias!r} is already used by model {other!r}")
            old = self._models.get(model.id)
            if old is not None:
                for alias in old.aliases:
                    self._aliases.pop(alias, None)
            self._models[model.id] = model
            for alias in model.aliases:
                self._aliases[alias] = model.id
            self._synth.clear()  # synthesized entries may shadow or derive from this id
            self.version += 1

    def remove(self, model_id: str) -> bool:
        """Remove a model by exact id; returns whether it existed."""
        with self._lock:
            model = self._models.pop(model_id, None)
            if model is None:
                return False
            for alias in model.aliases:
                self._aliases.pop(alias, None)
            self._synth.clear()
            self.version += 1
            return True

    # ---- models created at run time

    def register(self, model: ModelDef) -> None:
        """Add a model created while serving (a fine-tune): listed, resolvable, deletable."""
        with self._lock:
            self._retired.discard(model.id)
            self.add(model)
            self._dynamic.add(model.id)

    def unregister(self, model_id: str) -> bool:
        """Delete a model added by :meth:`register`; its id then no longer resolves, not
        even as an ``ft:`` id derived from its base. False for catalog or unknown ids."""
        with self._lock:
            if model_id not in self._dynamic:
                return False
            self._dynamic.discard(model_id)
            self.remove(model_id)
            self.retire(model_id)
            return True

    def retire(self, model_id: str) -> None:
        """Make an ``ft:`` id unresolvable (a fine-tune deleted before this process started)."""
        with self._lock:
            self._retired.add(model_id)
            self._synth.pop(model_id, None)

    def is_dynamic(self, model_id: str) -> bool:
        return model_id in self._dynamic
